/**
 * lib/server/listening.ts: the forwarder's listeners, Node's (connections
 * and errors to the sink) or the relay thread's (Node's own closed, the
 * thread's accepted connections to the sink), on real loopback sockets.
 */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import type { ListenSpec } from '../../lib/config/address.js'
import { nativeAvailable } from '../../lib/native/addon.js'
import { threadFront, type Accepted, type ThreadFront } from '../../lib/relay/front.js'
import { Listening, type ListenerSink } from '../../lib/server/listening.js'
import { blockUntilAccepted, openFds, until } from '../fixtures/front.js'

/** A Node server listening on a free loopback port, and its key. */
async function listening(t: Test): Promise<{ server: Server; port: number; key: string }> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const port = (server.address() as { port: number }).port
  return { server, port, key: `127.0.0.1:${port}` }
}

/** A sink that records what reaches it. */
function recordingSink() {
  const got = { node: [] as Array<[Socket, ListenSpec]>, thread: [] as Array<[Accepted, ListenSpec]>, errors: [] as Error[] }
  let wake = (): void => {}
  const sink: ListenerSink = {
    node: (s, l) => (got.node.push([s, l]), wake()),
    thread: (a, l) => (got.thread.push([a, l]), wake()),
    error: e => void got.errors.push(e),
    plan: () => null,
  }
  /** Until `n` connections have come, at most 5 s. */
  const until = async (n: number): Promise<void> => {
    const deadline = Date.now() + 5000
    while (got.node.length + got.thread.length < n && Date.now() < deadline) await new Promise<void>(r => ((wake = r), setTimeout(r, 50)))
  }
  return { got, sink, until }
}

/** Whether a connect to `port` is refused. */
async function refused(port: number): Promise<boolean> {
  const c = connect({ port, host: '127.0.0.1' })
  const code = await new Promise<string | undefined>(resolve => c.once('connect', () => resolve('connected')).once('error', (e: NodeJS.ErrnoException) => resolve(e.code)))
  c.destroy()
  return code === 'ECONNREFUSED'
}

t.test('without the thread: Node accepts, paused and half-open capable; errors go to the sink; close() stops it', async t => {
  const { got, sink, until } = recordingSink()
  const l = new Listening(null, sink)
  const a = await listening(t)
  const b = await listening(t)
  l.adopt(a.key, a.server, false)
  l.adopt(`${b.key} (transparent)`, b.server, false)
  t.same(l.keys, [a.key, `${b.key} (transparent)`])
  t.same(l.specs, [
    { address: '127.0.0.1', port: a.port },
    { address: '127.0.0.1', port: b.port, transparent: true },
  ])
  t.equal(l.server(a.key), a.server)
  const c = connect({ port: a.port, host: '127.0.0.1' }).on('error', () => {})
  t.teardown(() => c.destroy())
  await until(1)
  const [s, spec] = got.node[0] as [Socket, ListenSpec]
  t.same(spec, { address: '127.0.0.1', port: a.port })
  t.equal(s.remotePort, (await once(c, 'connect'), c.localPort), 'the client\'s connection')
  t.equal(s.isPaused(), true, 'not read before a session decides')
  t.equal((s as Socket & { allowHalfOpen: boolean }).allowHalfOpen, true)
  s.destroy()
  const emfile = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' })
  a.server.emit('error', emfile)
  t.same(got.errors, [emfile])
  await l.close(a.key)
  t.same(l.keys, [`${b.key} (transparent)`])
  t.equal(a.server.listening, false)
  t.ok(await refused(a.port), 'no longer accepting')
  await l.closeAll().closed
  t.same([l.keys, l.specs], [[], []])
  t.equal(b.server.listening, false)
  t.same(got.thread, [])
})

t.test('with the thread: it accepts, Node\'s listener is closed; close() and closeAll() stop it', { skip: nativeAvailable() ? false : 'the native addon is not built' }, async t => {
  const front = threadFront() as ThreadFront
  const { got, sink, until } = recordingSink()
  const l = new Listening(front, sink)
  const a = await listening(t)
  const b = await listening(t)
  l.adopt(a.key, a.server, true)
  l.adopt(b.key, b.server, true)
  t.ok(l.threaded(a.key))
  t.equal(a.server.listening, false, 'Node does not accept on it')
  t.equal(l.server(a.key), a.server, 'the server adopted, closed')
  t.same(l.specs, [
    { address: '127.0.0.1', port: a.port },
    { address: '127.0.0.1', port: b.port },
  ])
  const c = connect({ port: a.port, host: '127.0.0.1' }).on('error', () => {})
  await once(c, 'connect')
  await until(1)
  const [accepted, spec] = got.thread[0] as [Accepted, ListenSpec]
  t.same(spec, { address: '127.0.0.1', port: a.port })
  t.match(accepted, { local: '127.0.0.1', localPort: a.port, peer: '127.0.0.1', peerPort: c.localPort })
  front.abort(accepted.id)
  await once(c, 'close')
  t.same(got.node, [])
  await l.close(a.key)
  t.same(l.keys, [b.key])
  t.ok(await refused(a.port), 'the thread let go of it')
  const d = connect({ port: b.port, host: '127.0.0.1' }).on('error', () => {})
  await until(2)
  front.abort((got.thread[1] as [Accepted, ListenSpec])[0].id)
  await once(d, 'close')
  await l.closeAll().closed
  t.same(l.keys, [])
  t.ok(await refused(b.port))
})

for (const moved of [false, true]) {
  const name = moved
    ? 'a listener a reload gave back to Node: closeAll()\'s `reported` waits for what the thread accepted there before'
    : 'closeAll(): `reported` settles once every connection the thread accepted before has gone to the sink'
  t.test(name, { skip: nativeAvailable() ? false : 'the native addon is not built' }, async t => {
    const front = threadFront() as ThreadFront
    const { got, sink } = recordingSink()
    const l = new Listening(front, sink)
    const a = await listening(t)
    l.adopt(a.key, a.server, true)
    const c = connect({ port: a.port, host: '127.0.0.1' }).on('error', () => {})
    t.teardown(() => c.destroy())
    // Node connects on the next tick; the thread accepts while the event loop sleeps.
    await new Promise(r => process.nextTick(r))
    blockUntilAccepted(a.port, 1)
    if (moved) {
      // Node's listener comes back within ticks: the thread's report still waits for the event loop.
      await l.retune(() => false)
      t.equal(got.thread.length, 0, 'the test\'s premise: not reported yet when the listeners close')
    }
    const { reported, closed } = l.closeAll()
    await reported
    t.equal(got.thread.length, 1, 'reported before `reported` settled')
    front.abort((got.thread[0] as [Accepted, ListenSpec])[0].id)
    await once(c, 'close')
    await closed
    t.ok(await refused(a.port))
  })
}

t.test('closeAll() while a reload gives a listener back to Node: the new server is closed too, nothing is closed twice', { skip: nativeAvailable() ? false : 'the native addon is not built' }, async t => {
  const { sink } = recordingSink()
  const l = new Listening(threadFront() as ThreadFront, sink)
  const before = openFds()
  const a = await listening(t)
  l.adopt(a.key, a.server, true)
  const moving = l.retune(() => false)
  const { closed } = l.closeAll()
  await moving
  await closed
  t.ok(await refused(a.port), 'nothing listens')
  await until(() => openFds() === before, 'every descriptor closed')
})

t.test('a reload moves a listener from the thread to Node and back; the socket stays bound all along', { skip: nativeAvailable() ? false : 'the native addon is not built' }, async t => {
  const front = threadFront() as ThreadFront
  const { got, sink, until } = recordingSink()
  const l = new Listening(front, sink)
  const a = await listening(t)
  l.adopt(a.key, a.server, true)
  t.teardown(() => l.closeAll())
  await l.retune(() => false)
  t.notOk(l.threaded(a.key), 'Node accepts now')
  t.notOk(l.threaded('nothing'), 'no such listener')
  const c = connect({ port: a.port, host: '127.0.0.1' }).on('error', () => {})
  await until(1)
  t.equal(got.node.length, 1, 'Node took it')
  t.equal(got.thread.length, 0)
  c.destroy()
  got.node[0]?.[0].destroy()
  await l.retune(() => true)
  t.ok(l.threaded(a.key), 'the thread accepts again')
  await l.retune(() => true)
  t.ok(l.threaded(a.key), 'no change: left as it is')
  const d = connect({ port: a.port, host: '127.0.0.1' }).on('error', () => {})
  await until(2)
  t.equal(got.thread.length, 1, 'the thread took it')
  front.abort((got.thread[0] as [Accepted, ListenSpec])[0].id)
  await once(d, 'close')
  await l.retune(() => false)
  await l.close(a.key)
  t.ok(await refused(a.port), 'closed from Node too')
})

t.test('the thread cannot take a listener (out of descriptors for its copy): Node goes on accepting, the error is told', { skip: nativeAvailable() ? false : 'the native addon is not built' }, async t => {
  const broken = { listen: () => { throw Object.assign(new Error('fcntl(F_DUPFD_CLOEXEC): Too many open files'), { code: 'EMFILE' }) } } as unknown as ThreadFront
  const { got, sink, until } = recordingSink()
  const l = new Listening(broken, sink)
  const a = await listening(t)
  const before = readdirSync('/proc/self/fd').length
  l.adopt(a.key, a.server, true)
  t.teardown(() => l.closeAll())
  await new Promise(r => setImmediate(r))
  t.match(got.errors, [{ code: 'EMFILE' }], 'the error went to the sink')
  t.notOk(l.threaded(a.key))
  t.equal(readdirSync('/proc/self/fd').length, before, 'the duplicate made for the thread was closed')
  const c = connect({ port: a.port, host: '127.0.0.1' }).on('error', () => {})
  await until(1)
  t.equal(got.node.length, 1, 'Node accepted it')
  c.destroy()
  got.node[0]?.[0].destroy()
})
