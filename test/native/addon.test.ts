/** lib/native/addon.ts: loading the addon, and the descriptors handed to it. */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync } from 'node:fs'
import { once } from 'node:events'
import { createServer, Socket } from 'node:net'
import { NATIVE_PATH, fdOf, loadNative, nativeAddon, nativeAvailable, nativeLoadFailure, nativeOrigin, prebuildName, prebuildPath, type NativeAddon } from '../../lib/native/addon.js'
import { relayThread } from '../../lib/relay/thread.js'
import { VERSION, versionText } from '../../lib/version.js'
import { ROOT } from '../fixtures/harness.js'
import { socketPair } from '../fixtures/pair.js'

t.test('the addon loads from where npm builds it, or says why not', async t => {
  const built = existsSync(NATIVE_PATH)
  t.equal(nativeAvailable(), built, `the addon ${built ? 'is' : 'is not'} built at ${NATIVE_PATH}`)
  if (built) {
    const names = Object.keys(nativeAddon() as object)
    for (const name of ['originalDst', 'transparentSocket', 'relayInit', 'relayAdd', 'relayAbort']) t.ok(names.includes(name), `it exports ${name}`)
  }
  t.equal(loadNative('/nonexistent/tcpproxy_native.node'), false)
  t.equal(nativeAvailable(), false)
  t.equal(nativeAddon(), undefined)
  t.match(nativeLoadFailure(), /^Cannot find module '\/nonexistent\/tcpproxy_native\.node'$/, 'one line, without the require stack')
  t.equal(loadNative(), built, 'the default path loads again')
  if (built) t.equal(nativeLoadFailure(), '', 'no failure to report once it loaded')
  if (built) t.same(nativeOrigin(), { path: NATIVE_PATH, kind: 'built from source' }, 'a build from source comes before a prebuilt binary')
})

t.test('prebuilt binaries: one directory per platform, musl apart from glibc', async t => {
  t.equal(prebuildName('linux', 'x64', '2.36'), 'linux-x64')
  t.equal(prebuildName('linux', 'arm64', '2.17'), 'linux-arm64')
  t.equal(prebuildName('linux', 'x64', undefined), 'linux-x64-musl', 'Node reports no glibc version on musl')
  t.equal(prebuildName('darwin', 'arm64', undefined), 'darwin-arm64')
  const report = process.report as typeof process.report & { excludeNetwork: boolean }
  t.match(prebuildPath(), new RegExp(`/prebuilds/linux-${process.arch}/tcpproxy_native\\.node$`), 'this machine (glibc)')
  t.equal(report.excludeNetwork, false, "the report's setting is left as it was")
})

t.test('a list of binaries: the first one that exists and loads; else why none did, in one line', { skip: existsSync(NATIVE_PATH) ? false : 'the addon is not built' }, async t => {
  t.teardown(() => void loadNative())
  // A prebuilt binary is told apart by its directory.
  const dir = t.testdir({ prebuilds: { 'linux-x64': {} }, broken: { 'tcpproxy_native.node': 'not an ELF file\n'.repeat(100) } })
  const prebuilt = `${dir}/prebuilds/linux-x64/tcpproxy_native.node`
  copyFileSync(NATIVE_PATH, prebuilt)
  t.equal(loadNative([`${dir}/missing.node`, prebuilt]), true, 'a missing one is passed over')
  t.same(nativeOrigin(), { path: prebuilt, kind: 'prebuilt' })

  t.equal(loadNative([`${dir}/a.node`, `${dir}/b.node`]), false)
  t.equal(nativeLoadFailure(), `none of ${dir}/a.node, ${dir}/b.node exists`)
  t.equal(nativeOrigin(), undefined)

  t.equal(loadNative([`${dir}/broken/tcpproxy_native.node`, NATIVE_PATH]), true, 'one that does not load is passed over')
  t.same(nativeOrigin(), { path: NATIVE_PATH, kind: 'built from source' })
  t.equal(loadNative([`${dir}/broken/tcpproxy_native.node`]), false)
  t.match(nativeLoadFailure(), /^.*broken\/tcpproxy_native\.node: invalid ELF header$/, "the loader's reason, one line")
})

t.test('--version: the version, which binary, and what it gives; or why there is none', { skip: existsSync(NATIVE_PATH) ? false : 'the addon is not built' }, async t => {
  t.teardown(() => void loadNative())
  t.equal(loadNative(NATIVE_PATH), true)
  t.equal(
    versionText(),
    `tcpproxy ${VERSION}\n` +
      `native addon: built from source, ${NATIVE_PATH}\n` +
      'relay thread: available\n' +
      'transparent proxying: available (binding needs CAP_NET_ADMIN)',
  )
  loadNative('/nonexistent/tcpproxy_native.node')
  t.equal(
    versionText(),
    `tcpproxy ${VERSION}\n` +
      "native addon: not loaded: Cannot find module '/nonexistent/tcpproxy_native.node' (npm rebuild tcpproxy builds it from source: python3, make and a C compiler)\n" +
      'relay thread: unavailable (no native addon): connections are relayed in the event loop\n' +
      'transparent proxying: unavailable (no native addon)',
  )
})

t.test('fdOf: the descriptor of an open socket or listener, an error for a closed one', async t => {
  const [a, b] = await socketPair()
  t.ok(fdOf(a) > 2 && fdOf(b) > 2 && fdOf(a) !== fdOf(b))
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.ok(fdOf(server) > 2)
  server.close()
  a.destroy()
  b.destroy()
  await once(b, 'close')
  t.throws(() => fdOf(b), { code: 'ERR_RUNTIME', message: 'the socket has no file descriptor (not open, or already closed)' })
  t.throws(() => fdOf(new Socket()), { code: 'ERR_RUNTIME' })
})

t.test('TCPPROXY_NATIVE (a test and debug hook) names the build to load', async t => {
  const script = `import('./dist/native/addon.js').then(n => console.log(JSON.stringify([n.NATIVE_PATH, n.nativeAvailable(), n.nativeLoadFailure()])))`
  const run = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, env: { ...process.env, TCPPROXY_NATIVE: '/nonexistent/asan.node' }, encoding: 'utf8' })
  t.same(JSON.parse(run.stdout), ['/nonexistent/asan.node', false, "Cannot find module '/nonexistent/asan.node'"])
})

t.test("the relay thread's front: its exports, and the arguments it refuses", { skip: existsSync(NATIVE_PATH) ? false : 'the addon is not built' }, async t => {
  const lib = nativeAddon() as NativeAddon
  for (const name of ['relayFront', 'relayListen', 'relayUnlisten', 'relayConnect'] as const) t.type(lib[name], 'function', `it exports ${name}`)
  const connectTo = (family: number, address: string, port: number, first: unknown = null, live: unknown = new BigUint64Array(3), slot = 0): void =>
    lib.relayConnect(1, family as 4 | 6, address, port, 1000, 0, 0, first as Buffer | null, live as BigUint64Array, slot)
  const notStarted = { name: 'Error', message: 'relayInit() and relayFront() were not called' }
  t.throws(() => lib.relayListen(1, 0), notStarted, 'relayListen before the thread')
  t.throws(() => connectTo(4, '127.0.0.1', 80), notStarted, 'relayConnect before the thread')
  relayThread()
  t.throws(() => lib.relayListen(1, 0), notStarted, 'the thread without a front')
  const heard: unknown[][] = []
  const onAccept = (...args: unknown[]): void => void heard.push(args)
  const notFunction = { name: 'TypeError', message: 'expected a function' }
  t.throws(() => lib.relayFront(null as unknown as typeof onAccept, onAccept), notFunction, 'onAccept')
  t.throws(() => lib.relayFront(onAccept, 'onConnect' as unknown as typeof onAccept), notFunction, 'onConnect')
  t.throws(() => lib.relayListen(1, 0), notStarted, 'a front with one callback is not one')
  t.throws(() => (lib.relayFront as (a: unknown) => void)(onAccept), { name: 'TypeError', message: 'missing argument' })
  lib.relayFront(onAccept, onAccept)

  t.throws(() => lib.relayListen(1, 'x' as unknown as number), { name: 'TypeError', message: 'expected a number' })
  t.throws(() => lib.relayListen(1, 1 << 20), { code: 'EBADF', syscall: 'fcntl(F_DUPFD_CLOEXEC)' }, 'a descriptor that is not open')
  t.equal(lib.relayUnlisten(12345), false, 'unlisten a listener that is not there')

  const badAddress = { name: 'TypeError', message: 'expected an IPv4 or IPv6 address and a port' }
  for (const [family, address, port] of [
    [4, 'localhost', 80],
    [4, '::1', 80],
    [6, '127.0.0.1', 80],
    [5, '127.0.0.1', 80],
    [4, '127.0.0.1', 0],
    [6, '::1', 65536],
    [4, '127.0.0.1', -1],
    [4, '127.0.0.1'.repeat(10), 80],
  ] as const) {
    t.throws(() => connectTo(family, address, port), badAddress, `family ${family}, ${address}, port ${port}`)
  }
  t.throws(() => connectTo(4, '127.0.0.1', 80, 'HEADER'), { name: 'TypeError', message: 'expected a Buffer or null' })
  const noRoom = { name: 'RangeError', message: 'expected a BigUint64Array with room for slot' }
  t.throws(() => connectTo(4, '127.0.0.1', 80, null, new BigUint64Array(2)), noRoom, 'no room for slot 0')
  t.throws(() => connectTo(4, '127.0.0.1', 80, null, new BigUint64Array(6), 2), noRoom, 'no room for slot 2')
  t.throws(() => connectTo(4, '127.0.0.1', 80, null, new BigUint64Array(6), -1), noRoom, 'a negative slot')
  t.throws(() => connectTo(4, '127.0.0.1', 80, null, new Uint8Array(24)), noRoom, 'not a BigUint64Array')
  t.throws(() => connectTo(4, '127.0.0.1', 80, null, null), noRoom, 'no array')
  t.throws(() => (lib.relayConnect as (...a: unknown[]) => void)(1, 4, '127.0.0.1', 80), { name: 'TypeError', message: 'missing argument' })
  // A connection the thread does not have (ended, or never accepted): the attempt is dropped unheard.
  connectTo(6, '::1', 65535, Buffer.from('first'), new BigUint64Array(6), 1)
  await new Promise(r => setTimeout(r, 100))
  t.same(heard, [], 'no report for it')
})
