/**
 * The npm package as a user gets it: `npm pack` (with its prepack, which
 * builds the prebuilt addons), then the tarball installed with
 * --ignore-scripts into a fresh prefix, as npm 12 and pnpm 10 install
 * dependencies. The installed tcpproxy must relay through the native thread
 * and accept a configuration that needs the addon, with no compiler run at
 * install time.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, backend, descendants, freePort } from './fixtures/harness.js'

// Only what a user's shell would have: no tap hooks (NODE_OPTIONS) or coverage
// in the installed program, no npm_* variables of the `npm test` around us.
const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/root', LANG: 'C' }
const run = (cmd: string, args: string[], cwd: string) => spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 90000 })

/** What a fresh clone has: the checkout without its build outputs, and with its installed node_modules. */
const skipped = new Set(['.git', 'node_modules', '.tap', 'dist', 'prebuilds', 'build', '.build', '.results', 'coverage'])

t.test('npm pack, install with --ignore-scripts: the prebuilt addon relays and forwards', { skip: process.platform === 'linux' ? false : 'prebuilds are made on Linux' }, async t => {
  // 0755: as root the daemon's workers run as nobody and must reach the installed files.
  const dir = mkdtempSync(join(tmpdir(), 'tcpproxy-package-'))
  chmodSync(dir, 0o755)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const src = join(dir, 'src')
  cpSync(ROOT, src, { recursive: true, filter: from => !skipped.has(from.slice(from.lastIndexOf('/') + 1)) })
  symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'))

  let started = Date.now()
  const pack = run('npm', ['pack', '--json', '--pack-destination', dir], src)
  t.equal(pack.status, 0, `npm pack exits 0${pack.status === 0 ? '' : `:\n${pack.stderr}`}`)
  const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as Array<{ filename: string; size: number; files: Array<{ path: string }> }>
  const files = info!.files.map(f => f.path)
  t.comment(`npm pack: ${Date.now() - started} ms, ${info!.filename} ${info!.size} bytes, ${files.length} files`)
  for (const need of ['bin/tcpproxy', 'dist/main.js', 'dist/worker-main.js', 'man/tcpproxy.1', 'etc/tcpproxy.conf', 'scripts/install.mjs',
    'lib/native/binding.gyp', 'lib/native/addon.c', 'lib/native/relay_thread.c', 'lib/native/napi_util.h',
    `prebuilds/linux-${process.arch}/tcpproxy_native.node`]) {
    t.ok(files.includes(need), `the package has ${need}`)
  }
  // The other targets where their compilers are installed (.ci/run installs them).
  const others = [['aarch64-linux-gnu-gcc', 'linux-arm64'], ...(process.arch === 'x64' ? [['musl-gcc', 'linux-x64-musl']] : [])] as const
  for (const [cc, target] of others) {
    if (run('sh', ['-c', `command -v ${cc}`], dir).status !== 0) continue
    t.ok(files.includes(`prebuilds/${target}/tcpproxy_native.node`), `the package has the ${target} prebuild (${cc} is installed)`)
  }
  t.same(files.filter(f => /^(test|bench|\.ci)\/|\.ts$|\.map$|^lib\/native\/build\//.test(f)), [], 'no tests, sources of dist/ or build outputs')
  t.same(readdirSync(src).filter(f => f === 'prebuilds'), [], 'postpack leaves no binaries in the checkout')

  started = Date.now()
  const prefix = join(dir, 'prefix')
  const install = run('npm', ['install', '-g', '--prefix', prefix, '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', join(dir, info!.filename)], dir)
  t.equal(install.status, 0, `npm install --ignore-scripts exits 0${install.status === 0 ? '' : `:\n${install.stderr}`}`)
  t.comment(`npm install -g --ignore-scripts: ${Date.now() - started} ms`)
  const bin = join(prefix, 'bin/tcpproxy')
  const pkg = join(prefix, 'lib/node_modules/tcpproxy')

  const version = run(bin, ['--version'], dir)
  t.equal(version.status, 0)
  t.equal(
    version.stdout.split('\n').slice(1).join('\n'),
    `native addon: prebuilt, ${pkg}/prebuilds/linux-${process.arch}/tcpproxy_native.node\n` +
      'relay thread: available\n' +
      'transparent proxying: available (binding needs CAP_NET_ADMIN)\n',
    '--version names the prebuilt binary it loaded',
  )

  const conf = join(dir, 'forward.conf')
  writeFileSync(conf, 'port 8080\n    interface *\n        redirect-mode forward\n        server 127.0.0.1:8000\n')
  const check = run(bin, ['--check', '-c', conf], dir)
  t.equal(check.stderr, '', 'a configuration that needs the addon is accepted')
  t.equal(check.stdout, '*:8080 -> 127.0.0.1:8000 (timeout 60, redirect-mode forward)\n')
  t.equal(check.status, 0)

  // The installed tcpproxy relays, and through its native thread.
  const up = await backend(s => s.pipe(s))
  t.teardown(() => up.close())
  const port = await freePort()
  const proxy = spawn(bin, ['-d', '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  proxy.stderr.on('data', (d: Buffer) => (log += d.toString()))
  t.teardown(() => void proxy.kill('SIGKILL'))
  for (let i = 0; i < 100 && !/ ready$/m.test(log) && proxy.exitCode === null; i++) await new Promise(r => setTimeout(r, 100))
  t.match(log, / ready$/m, 'it starts')
  const c = connect({ port, host: '127.0.0.1' })
  t.teardown(() => c.destroy())
  await once(c, 'connect')
  c.write('through the relay thread\n')
  const [echo] = (await once(c, 'data')) as [Buffer]
  t.equal(echo.toString(), 'through the relay thread\n', 'the bytes come back')
  // As root the worker relays, not the supervisor: look at the whole process tree.
  const threads = [proxy.pid as number, ...descendants(proxy.pid as number).map(d => d.pid)].flatMap(pid =>
    readdirSync(`/proc/${pid}/task`).map(tid => readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()),
  )
  t.ok(threads.includes('tcpproxy-relay'), `a tcpproxy-relay thread runs (threads: ${[...new Set(threads)].join(', ')})`)
  c.end()
  await once(c, 'close')
  proxy.kill('SIGTERM')
  await once(proxy, 'exit')
  t.match(log, /disconnect: .*received= 25, send= 25/, 'the disconnect line counts the bytes')

  // npm rebuild is honest: the install script finds the prebuilt binary and says so.
  const rebuild = run('npm', ['rebuild', '-g', '--prefix', prefix, 'tcpproxy', '--foreground-scripts'], dir)
  t.equal(rebuild.status, 0)
  t.match(rebuild.stdout + rebuild.stderr, `tcpproxy: using the prebuilt native addon ${pkg}/prebuilds/linux-${process.arch}/tcpproxy_native.node; nothing to build`)
})
