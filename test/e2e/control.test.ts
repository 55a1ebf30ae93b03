/**
 * End to end: the control socket of bin/tcpproxy and `tcpproxy ctl` (#16):
 * one process, a root supervisor and --workers 2; socat speaks it too.
 */
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, lstatSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { BIN, backend, children, exchange, freePort, startProxy, tcpproxy } from '../fixtures/harness.js'
import { socketDir } from '../fixtures/control.js'

const root = process.getuid?.() === 0
const socat = spawnSync('socat', ['-V']).status === 0
const ctl = (path: string, ...words: string[]) => spawnSync(process.execPath, [BIN, 'ctl', '--control', path, ...words], { encoding: 'utf8', timeout: 15000 })

/** An upstream that holds every connection open, and a client connected through `port`. */
async function liveSession(t: Test, port: number) {
  const up = await backend(s => s.on('error', () => {}).resume())
  t.teardown(() => up.close())
  const c = connect({ port, host: '127.0.0.1' }).on('error', () => {})
  t.teardown(() => c.destroy())
  await new Promise(r => c.on('connect', r))
  return { up, c, closed: new Promise(r => c.on('close', r)) }
}

t.test('one process: show sessions lists the live session, kill ends it, show stats answers, the socket goes at exit', async t => {
  const dir = socketDir(t)
  const path = join(dir, 'ctl')
  const up = await backend(s => s.on('error', () => {}).resume())
  t.teardown(() => up.close())
  // Root told to stay root is one process; so is anyone else.
  const p = await startProxy(port => ['--foreground', ...(root ? ['-u', 'root'] : []), '--control', path, '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.teardown(p.stop)
  const st = lstatSync(path)
  t.ok(st.isSocket())
  t.equal(st.mode & 0o777, 0o600)
  const c = connect({ port: p.port, host: '127.0.0.1' }).on('error', () => {})
  const closed = new Promise(r => c.on('close', r))
  await p.waitFor(/connect: client= 127\.0\.0\.1/)
  for (let i = 0; i < 100 && !/relaying/.test(ctl(path, 'show', 'sessions').stdout); i++) await new Promise(r => setTimeout(r, 50))
  const shown = ctl(path, 'show', 'sessions')
  t.equal(shown.status, 0)
  t.match(shown.stdout, new RegExp(`^id +service +client +client_port +server +received +sent +age +state\\n 1 +127\\.0\\.0\\.1:${p.port} +127\\.0\\.0\\.1 +${c.localPort} +.* relaying\\n$`))
  const json = JSON.parse(ctl(path, '--json', 'show', 'sessions').stdout)
  t.match(json, [{ id: 1, client: '127.0.0.1', client_port: c.localPort, state: 'relaying' }])
  const stats = ctl(path, 'show', 'stats')
  t.equal(stats.status, 0)
  t.match(stats.stdout, /^services +servers +active +connections/)
  const servers = ctl(path, 'show', 'servers')
  t.match(servers.stdout, new RegExp(`^service +server +state +since +active .*\\n127\\.0\\.0\\.1:${p.port} +127\\.0\\.0\\.1:${up.port} +up +\\d+ +1 `), 'show servers: the upstream, up, with the open session')
  if (socat) {
    const s = spawnSync('socat', ['-', `UNIX-CONNECT:${path}`], { input: 'show sessions\nhelp\n', encoding: 'utf8', timeout: 10000 })
    t.match(s.stdout, /^id +service .*\n 1 .*relaying\n\nshow sessions +one row per live session\n[^]*\n\n$/, 'socat speaks it')
  } else t.pass('socat speaks it', { skip: 'socat is not installed' })
  t.same([ctl(path, 'kill', 'session', '1').stdout, ctl(path, 'kill', 'session', '1').stderr], ['session 1 killed\n', 'tcpproxy: no session 1\n'])
  await closed
  await p.waitFor(/disconnect: .*id= 1$/)
  t.equal(await p.stop(), 0)
  t.notOk(existsSync(path), 'the socket is removed at exit')
})

t.test('a second tcpproxy on the same control socket is refused in one line; a stale one is replaced', async t => {
  const dir = socketDir(t)
  const path = join(dir, 'ctl')
  const conf = join(dir, 'c.conf')
  const up = await backend(s => s.destroy())
  t.teardown(() => up.close())
  const p = await startProxy(port => {
    writeFileSync(conf, `control ${path}\nport ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${up.port}\n`)
    return ['--foreground', ...(root ? ['-u', 'root'] : []), '-c', conf]
  })
  t.teardown(p.stop)
  t.ok(lstatSync(path).isSocket(), 'the control keyword of the file')
  const port = await freePort()
  const refused = tcpproxy(['--foreground', ...(root ? ['-u', 'root'] : []), '--control', path, '-b', `127.0.0.1:${port}`, '127.0.0.1:9'])
  t.equal(await refused.exited, 1)
  t.same(refused.lines.filter(l => !/bound to|tcpproxy\[/.test(l)), [`tcpproxy: control socket ${path}: in use by a running tcpproxy`])
  t.equal(ctl(path, 'help').status, 0, 'the first one still serves')
  // Killed outright, it leaves its socket behind: the next start replaces it.
  p.proc.kill('SIGKILL')
  await p.exited
  t.ok(lstatSync(path).isSocket(), 'left behind')
  t.match(ctl(path, 'help'), { status: 1, stderr: /connection refused/ })
  const next = await startProxy(port => ['--foreground', ...(root ? ['-u', 'root'] : []), '--control', path, '-b', `127.0.0.1:${port}`, '127.0.0.1:9'])
  t.teardown(next.stop)
  t.equal(ctl(path, 'help').status, 0, 'the new one serves it')
})

t.test('root: the supervisor owns the socket, with --workers 2 too; control-group makes it 0660', { skip: root ? false : 'needs root' }, async t => {
  for (const workers of [[], ['--workers', '2']]) {
    const dir = socketDir(t)
    const path = join(dir, 'ctl')
    const p = await startProxy(port => ['--foreground', ...workers, '--control', path, '--control-group', 'daemon', '-b', `127.0.0.1:${port}`, '127.0.0.1:9'])
    const st = lstatSync(path)
    t.same([st.uid, st.gid, st.mode & 0o777], [0, 1, 0o660], `${workers.join(' ') || 'one worker'}: root's, group daemon, 0660`)
    t.match(ctl(path, 'show', 'stats'), { status: 0, stdout: /^services / })
    t.match(ctl(path, 'help'), { status: 0, stdout: /^show sessions/ })
    await p.stop()
    t.notOk(existsSync(path))
  }
})

t.test('root supervisor: show sessions and kill session reach the workers', { skip: root ? false : 'needs root' }, async t => {
  const dir = socketDir(t)
  const path = join(dir, 'ctl')
  const up = await backend(s => s.on('error', () => {}).resume())
  t.teardown(() => up.close())
  const p = await startProxy(port => ['--foreground', '--workers', '2', '--control', path, '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.teardown(p.stop)
  const s = await liveSession(t, p.port)
  await p.waitFor(/connect: client= 127\.0\.0\.1/)
  t.match(ctl(path, 'show', 'sessions'), { status: 0, stdout: /\n +\d+ +127\.0\.0\.1:\d+ +127\.0\.0\.1 .*relaying\n$/ })
  const id = /id= (\d+)/.exec(await p.waitFor(/connect: client=/))?.[1] as string
  t.match(ctl(path, 'kill', 'session', id), { status: 0 })
  await s.closed
  t.match(await p.waitFor(new RegExp(`closed-by= killed, id= ${id}$`)), /^tcpproxy\[\d+\]: \+OK: disconnect: /, 'the worker that had it logs the kill')
})

t.test('--workers 2: a disabled server stays disabled in a worker that replaces a dead one', { skip: root ? false : 'needs root' }, async t => {
  const dir = socketDir(t)
  const path = join(dir, 'ctl')
  const a = await backend(s => s.on('error', () => {}).end('A'))
  const b = await backend(s => s.on('error', () => {}).end('B'))
  t.teardown(() => a.close())
  t.teardown(() => b.close())
  const p = await startProxy(port => ['--foreground', '--workers', '2', '--control', path, '--balance', 'roundrobin', '-b', `127.0.0.1:${port}`, `127.0.0.1:${a.port},127.0.0.1:${b.port}`])
  t.teardown(p.stop)
  await p.waitFor(/ready/)
  t.match(ctl(path, 'disable', 'server', `127.0.0.1:${a.port}`), { status: 0 })
  const [victim] = children(p.proc.pid as number)
  process.kill(victim as number, 'SIGKILL')
  await p.waitFor(/worker process ended/)
  for (let i = 0; i < 100 && children(p.proc.pid as number).length < 2; i++) await new Promise(r => setTimeout(r, 50))
  await new Promise(r => setTimeout(r, 500))
  const replies: string[] = []
  for (let i = 0; i < 12; i++) replies.push((await exchange(p.port, null)).data.toString())
  t.same([...new Set(replies)], ['B'], `every connection went to the enabled server (${replies.join('')})`)
})

t.test('before any connection: show services and show servers list what the file configures; ctl -c FILE finds the socket', async t => {
  const dir = socketDir(t)
  const path = join(dir, 'ctl')
  const conf = join(dir, 'c.conf')
  // Root runs a supervisor and a worker: the worker's zeros reach it too.
  const p = await startProxy(port => {
    writeFileSync(conf, `control ${path}\nport ${port}\n  interface 127.0.0.1\n    server 127.0.0.1:9, 127.0.0.2:9\n  interface 127.0.0.3\n    exec /bin/true\n`)
    return ['--foreground', '-c', conf]
  })
  t.teardown(p.stop)
  const byFile = (...words: string[]) => spawnSync(process.execPath, [BIN, 'ctl', '-c', conf, ...words], { encoding: 'utf8', timeout: 15000 })
  let services = ''
  for (let i = 0; i < 100 && !/127\.0\.0\.3/.test((services = byFile('show', 'services').stdout)); i++) await new Promise(r => setTimeout(r, 50))
  t.match(services, new RegExp(`^service .*\n127\\.0\\.0\\.1:${p.port} +0 +0 +0 +0 +0 +0\n127\\.0\\.0\\.3:${p.port} +0 +0 +0 +0 +0 +0\n$`), 'both services, zeros')
  t.match(byFile('show', 'servers').stdout, new RegExp(`^service .*\n127\\.0\\.0\\.1:${p.port} +127\\.0\\.0\\.1:9 +unknown +- +0 +0 +0 +0 +0\n127\\.0\\.0\\.1:${p.port} +127\\.0\\.0\\.2:9 +unknown +- +0 +0 +0 +0 +0\n$`), 'both servers, state unknown')
  t.match(byFile('show', 'stats').stdout, /\n +2 +2 +0 +0 +0 +0 +0 +0\n$/, 'show stats: 2 services, 2 servers')
})

t.test('ctl: a missing socket is one line naming the path, exit 1', async t => {
  const path = join(socketDir(t), 'none')
  t.match(ctl(path, 'show', 'sessions'), { status: 1, stdout: '', stderr: `tcpproxy: control socket ${path}: no such file\n` })
  t.match(ctl(path, 'show', 'nothing'), { status: 2, stderr: 'tcpproxy: ctl: unknown command "show nothing"; try help\n' })
})
