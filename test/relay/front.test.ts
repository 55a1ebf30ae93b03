/**
 * lib/relay/front.ts with the addon's relay thread (lib/native/front.c):
 * the thread accepts on real loopback listeners, connects where the test
 * says and relays; what a client, an upstream and the front's callbacks see.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readlinkSync } from 'node:fs'
import { connect } from 'node:net'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { fdOf, nativeAddon, nativeAvailable, type NativeAddon } from '../../lib/native/addon.js'
import type { RelayResult } from '../../lib/relay/event-loop.js'
import { threadFront, ThreadFront, type Accepted, type AttemptEnd, type Plan } from '../../lib/relay/front.js'
import { ROOT } from '../fixtures/harness.js'
import {
  attempt,
  block,
  blockUntilAccepted,
  establishedTo,
  client,
  type Client,
  echoServer,
  ending,
  hangingListener,
  refusedPort,
  request,
  sleep,
  threadListener,
  type ThreadListener,
  until,
  within,
} from '../fixtures/front.js'

const skip = nativeAvailable() ? false : 'the native addon is not built'
const noSs = spawnSync('ss', ['-V']).error ? 'ss is not installed (apt-get install iproute2)' : false

const front = (): ThreadFront => threadFront() as ThreadFront
const lib = (): NativeAddon => nativeAddon() as NativeAddon

interface Teardown {
  teardown(fn: () => void): void
}

/** A listener the thread accepts on, let go at teardown. */
async function listener(t: Teardown, host = '127.0.0.1'): Promise<ThreadListener> {
  const l = await threadListener(front(), host)
  t.teardown(() => front().unlisten(l.id))
  return l
}

/** A client of `l`, and the connection the thread accepted for it. */
async function connection(t: Teardown, l: ThreadListener, host = '127.0.0.1'): Promise<{ c: Client; a: Accepted }> {
  const c = await client(l.port, host)
  t.teardown(() => c.socket.destroy())
  return { c, a: await l.next() }
}

/** A port whose connects hang, let go at teardown. */
async function hanging(t: Teardown): Promise<{ port: number }> {
  const hang = await hangingListener(lib())
  t.teardown(hang.close)
  return hang
}

async function upstream(t: Teardown, host = '127.0.0.1'): Promise<Awaited<ReturnType<typeof echoServer>>> {
  const up = await echoServer(host)
  t.teardown(() => up.close())
  return up
}

t.test('one front per process; none without the addon', { skip }, async t => {
  t.equal(threadFront(), threadFront(), 'the same front each time')
  const script = `import('./dist/relay/front.js').then(f => console.log(String(f.threadFront())))`
  const run = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, env: { ...process.env, TCPPROXY_NATIVE: '/nonexistent/tcpproxy_native.node' }, encoding: 'utf8' })
  t.equal(run.stdout, 'null\n')
})

t.test('a connection queued before the thread took the listener has no Nagle delay either (it did not inherit the option)', { skip }, async t => {
  // bash connects (the kernel completes the handshake and queues it) and
  // exits while this thread is blocked, so Node cannot accept it first.
  const queue = (port: number): void => void spawnSync('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`], { timeout: 5000 })
  const l = await threadListener(front(), '127.0.0.1', undefined, queue)
  t.teardown(() => front().unlisten(l.id))
  const queued = await l.next()
  t.equal(lib().noDelay(queued.fd), true, 'queued before: set when accepted')
  const { a } = await connection(t, l)
  t.equal(lib().noDelay(a.fd), true, 'after: inherited')
  front().abort(queued.id)
  front().abort(a.id)
})

// A wildcard listener's connections each have their own local address (a
// specific one's are the listener's, without asking the kernel each time).
for (const [wildcard, host, local, peer] of [
  ['0.0.0.0', '127.0.0.2', '127.0.0.2', '127.0.0.1'],
  ['::', '::1', '::1', '::1'],
  ['::', '127.0.0.2', '::ffff:127.0.0.2', '::ffff:127.0.0.1'],
] as const) {
  t.test(`a listener on ${wildcard}: each connection's local address is the one its client reached (${host})`, { skip }, async t => {
    const l = await listener(t, wildcard)
    const { c, a } = await connection(t, l, host)
    t.same({ local: a.local, localPort: a.localPort, peer: a.peer, peerPort: a.peerPort }, { local, localPort: l.port, peer, peerPort: c.socket.localPort })
    t.equal(lib().noDelay(a.fd), true, 'no Nagle delay')
    front().abort(a.id)
  })
}

for (const host of ['127.0.0.1', '::1']) {
  t.test(`an accepted connection (${host}): the handler hears of its addresses and the thread's descriptor`, { skip }, async t => {
    const l = await listener(t, host)
    const { c, a } = await connection(t, l, host)
    t.match(a, { local: host, localPort: l.port, peer: host, peerPort: c.socket.localPort })
    t.ok(Number.isInteger(a.id) && a.id > 0, 'a number for it')
    t.match(readlinkSync(`/proc/self/fd/${a.fd}`), /^socket:\[\d+\]$/, 'fd: the thread holds the socket')
    t.equal(lib().noDelay(a.fd), true, 'no Nagle delay: inherited from the listener, as on Node\'s accepted sockets')
    const end = ending(front(), a.id)
    front().abort(a.id)
    t.same(await end, { sent: 0, received: 0, closedBy: 'shutdown', error: null }, 'aborted before any attempt')
    await within(c.ended, 5000, 'client EOF')
    t.equal(c.data(), '', 'the client read nothing, and EOF')
  })

  t.test(`connected (${host}): the first bytes go before the client's, both ways, half-close passes through`, { skip }, async t => {
    const up = await upstream(t, host)
    const l = await listener(t, host)
    const { c, a } = await connection(t, l, host)
    // Sent while the connection waits, unread, for the handler's answer.
    c.socket.write('hello ')
    await sleep(20)
    const end = ending(front(), a.id)
    const r = await attempt(front(), a.id, request(up.port, { address: host, first: Buffer.from('HEADER ') }))
    if (!r.ok) throw r.error
    await until(() => c.data() === 'HEADER hello ', 'the echo of both')
    c.socket.write('more')
    await until(() => c.data() === 'HEADER hello more', 'the echo of more')
    await until(() => r.relay.counts().received === 17, 'the live counts')
    t.same(r.relay.counts(), { sent: 17, received: 17, halfClosed: false }, "the relay's live counts")
    t.equal(up.seen.length, 1)
    const seen = up.seen[0] as (typeof up.seen)[0]
    t.equal(seen.socket.remoteAddress, host, 'the thread connected over the family asked for')
    c.socket.end()
    await within(seen.ended, 5000, 'the server sees EOF')
    await within(c.ended, 5000, 'the client sees EOF')
    t.equal(c.data(), 'HEADER hello morebye', "the server's reply after the client's EOF reached it")
    t.equal(seen.data(), 'HEADER hello more', 'the server got the header first, then the client bytes')
    t.same(await end, { sent: 17, received: 20, closedBy: 'client', error: null })
  })

  t.test(`refused (${host}): Node's error, then a second attempt on the same connection connects`, { skip }, async t => {
    const up = await upstream(t, host)
    const port = await refusedPort(host)
    const l = await listener(t, host)
    const { c, a } = await connection(t, l, host)
    const end = ending(front(), a.id)
    const r = await attempt(front(), a.id, request(port, { address: host, first: Buffer.from('lost ') }))
    t.equal(r.ok, false)
    const error = (r as { error: NodeJS.ErrnoException }).error
    t.match(error, { code: 'ECONNREFUSED', errno: -111, syscall: 'connect', address: host, port, message: `connect ECONNREFUSED ${host}:${port}` })
    const second = await attempt(front(), a.id, request(up.port, { address: host, first: Buffer.from('kept ') }))
    t.equal(second.ok, true, 'failover: the next server connects')
    c.socket.end('x')
    await within(c.ended, 5000, 'client EOF')
    t.equal(up.seen[0]?.data(), 'kept x', "only the second attempt's first bytes reached a server")
    t.same(await end, { sent: 6, received: 9, closedBy: 'client', error: null })
  })
}

t.test('connect timeout: ETIMEDOUT with the same words as Node path, in bounded time', { skip }, async t => {
  const hang = await hanging(t)
  const l = await listener(t)
  const { c, a } = await connection(t, l)
  const end = ending(front(), a.id)
  const start = Date.now()
  const r = await attempt(front(), a.id, request(hang.port, { timeoutMs: 300 }))
  const ms = Date.now() - start
  t.match(r, { ok: false, error: { code: 'ETIMEDOUT', message: 'connect timed out after 0.3 s' } })
  t.ok(ms >= 250 && ms < 2000, `it took ${ms} ms for 300`)
  front().abort(a.id)
  t.match(await end, { closedBy: 'shutdown', sent: 0, received: 0 })
  await within(c.ended, 5000, 'client EOF')
})

t.test('abort while connecting: no attempt end, the end says shutdown, the client sees EOF', { skip }, async t => {
  const hang = await hanging(t)
  const l = await listener(t)
  const { c, a } = await connection(t, l)
  const end = ending(front(), a.id)
  const ends: AttemptEnd[] = []
  front().connect(a.id, request(hang.port, { timeoutMs: 0 }), e => ends.push(e))
  await sleep(50)
  front().abort(a.id)
  t.same(await end, { sent: 0, received: 0, closedBy: 'shutdown', error: null })
  await within(c.ended, 5000, 'client EOF')
  await sleep(50)
  t.same(ends, [], 'the aborted attempt is not reported')
})

t.test('abort while relaying: both sides closed, the end says shutdown with the counts so far', { skip }, async t => {
  const up = await upstream(t)
  const l = await listener(t)
  const { c, a } = await connection(t, l)
  const end = ending(front(), a.id)
  t.equal((await attempt(front(), a.id, request(up.port))).ok, true)
  c.socket.write('abc')
  await until(() => c.data() === 'abc', 'the echo')
  // Heard from before the abort: the server side may be closed before the client's EOF is read.
  const upClosed = once(up.seen[0]?.socket as NonNullable<(typeof up.seen)[0]>['socket'], 'close')
  front().abort(a.id)
  t.same(await end, { sent: 3, received: 3, closedBy: 'shutdown', error: null })
  await within(c.ended, 5000, 'client EOF')
  await within(upClosed, 5000, 'the server side closed')
})

t.test('abort while the connect report is on its way: the report is dropped, nothing throws', { skip }, async t => {
  const up = await upstream(t)
  const refused = await refusedPort()
  const l = await listener(t)
  for (const [what, port] of [['connected', up.port], ['refused', refused]] as const) {
    const { c, a } = await connection(t, l)
    const end = ending(front(), a.id)
    const ends: AttemptEnd[] = []
    front().connect(a.id, request(port), e => ends.push(e))
    // The thread connects (or is refused) and reports while this thread cannot listen.
    block(200)
    front().abort(a.id)
    t.same(await end, { sent: 0, received: 0, closedBy: 'shutdown', error: null }, what)
    await within(c.ended, 5000, 'client EOF')
    t.same(ends, [], `${what}: the attempt's report found no attempt`)
  }
})

t.test("take: Node's socket for the connection, paused and half-open capable, on the thread's own descriptor", { skip }, async t => {
  const l = await listener(t)
  const { c, a } = await connection(t, l)
  c.socket.write('early')
  const inode = readlinkSync(`/proc/self/fd/${a.fd}`)
  const s = front().take(a)
  t.teardown(() => s.destroy())
  t.equal(s.readableFlowing, false, 'paused')
  t.equal(s.allowHalfOpen, true)
  t.equal(fdOf(s), a.fd, 'the descriptor the thread accepted, no duplicate')
  await new Promise(r => setTimeout(r, 100))
  t.equal(readlinkSync(`/proc/self/fd/${a.fd}`), inode, 'the thread let go of it without closing it')
  const got: Buffer[] = []
  s.on('data', b => got.push(b))
  // Paused as Node's pauseOnConnect sockets are: a 'data' listener alone does not start it.
  s.resume()
  await until(() => Buffer.concat(got).toString() === 'early', 'the bytes sent before take')
  s.write('reply')
  await until(() => c.data() === 'reply', 'the reply')
  c.socket.end()
  await within(once(s, 'end'), 5000, 'EOF from the client')
  s.write('after EOF')
  await until(() => c.data() === 'replyafter EOF', 'written after the client EOF: half-open')
  // Only Node's descriptor is left: closing it is the client's EOF.
  s.destroy()
  await within(c.ended, 5000, 'client EOF')
})

t.test('unlisten: a connection accepted just before still reaches the handler, and then its promise settles; afterwards nothing accepts', { skip }, async t => {
  let heard = 0
  let last: Promise<void> | undefined
  const l = await threadListener(front(), '127.0.0.1', () => {
    // Both clients are accepted by the thread meanwhile, the second's report queued behind this one.
    if (heard++ > 0) return
    blockUntilAccepted(l.port, 2)
    last = front().unlisten(l.id)
    t.equal(front().unlisten(l.id), last, 'asked again before the last word: the same promise')
  })
  const first = connect({ port: l.port, host: '127.0.0.1' }).on('error', () => {})
  const second = connect({ port: l.port, host: '127.0.0.1' }).on('error', () => {})
  t.teardown(() => (first.destroy(), second.destroy()))
  const a = await l.next()
  await until(() => last !== undefined, 'unlisten called')
  await within(last as Promise<void>, 5000, 'the listener\'s last word')
  t.equal(heard, 2, 'the handler heard of both before the promise settled, the second after unlisten returned')
  const b = await l.next()
  await within(front().unlisten(l.id), 5000, 'unlisten after the last word: settled at once')
  front().abort(a.id)
  front().abort(b.id)
  await within(Promise.all([once(first, 'end'), once(second, 'end')]), 5000, 'both ended')
  const late = connect({ port: l.port, host: '127.0.0.1' })
  const [err] = (await within(once(late, 'error'), 5000, 'a connect after unlisten')) as [NodeJS.ErrnoException]
  t.equal(err.code, 'ECONNREFUSED', 'nothing listens any more')
  t.equal(lib().relayUnlisten(l.id), false, 'unlisten again: no such listener')
})

t.test('unlisten\'s promise settles in a process with nothing else to wait for: the thread stays referenced until the last word', { skip }, async t => {
  const script = fileURLToPath(new URL('../fixtures/front-last-word.mjs', import.meta.url))
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 10000 })
  t.same([r.status, r.stdout], [0, 'settled\n'], r.stderr)
})

t.test('unlisten when the thread cannot take the command (out of memory): it settles at once, the listener is still heard', async t => {
  let onAccept: ((...args: unknown[]) => void) | undefined
  const stub = {
    relayFront: (accept: (...args: unknown[]) => void) => void (onAccept = accept),
    relayListen: () => {},
    relayUnlisten: () => false,
  } as unknown as NativeAddon
  const f = new ThreadFront(stub)
  const heard: number[] = []
  const id = f.listen(99, a => heard.push(a.id))
  await within(f.unlisten(id), 1000, 'settled')
  ;(onAccept as (...args: unknown[]) => void)(7, id, '127.0.0.1', 1, '127.0.0.1', 2, 99, 0)
  t.same(heard, [7], 'the thread still accepts there, and is still heard')
})

/**
 * A listener whose handler adopts each planned connection's attempt and
 * asks for its end at once, as the forwarder does (the thread's reports of
 * both may follow the accept's in the same batch).
 */
async function plannedListener(t: Teardown): Promise<ThreadListener & { attempts: Map<number, Promise<AttemptEnd>>; ends: Map<number, Promise<RelayResult>> }> {
  const attempts = new Map<number, Promise<AttemptEnd>>()
  const ends = new Map<number, Promise<RelayResult>>()
  const l = await threadListener(front(), '127.0.0.1', a => {
    if (a.plan === null) return
    ends.set(a.id, ending(front(), a.id))
    attempts.set(a.id, within(new Promise<AttemptEnd>(r => front().adopt(a.id, a.plan as Plan, r)), 10000, `planned attempt for ${a.id}`))
  })
  t.teardown(() => front().unlisten(l.id))
  return Object.assign(l, { attempts, ends })
}

t.test('plan: the thread connects each connection at once, before the event loop hears of it; adopt() reports the attempt, the relay and its live counts', { skip }, async t => {
  const up = await upstream(t)
  const l = await plannedListener(t)
  const plan: Plan = { request: request(up.port, { idleMs: 0 }) }
  front().plan(l.id, plan)
  const socket = connect({ port: l.port, host: '127.0.0.1', allowHalfOpen: true }).on('error', () => {})
  t.teardown(() => socket.destroy())
  // Node connects on the next tick; then the event loop sleeps, and only
  // the thread can connect upstream meanwhile.
  await new Promise(r => process.nextTick(r))
  block(200)
  t.equal(establishedTo(up.port), 1, 'the upstream connection is there while the event loop slept')
  t.equal(l.accepted.length, 0, 'before the event loop heard of the connection')
  let got = ''
  socket.on('data', d => (got += d))
  socket.write('early ')
  const a = await l.next()
  t.equal(a.plan, plan, 'the connection names the plan it was connected by')
  const r = await (l.attempts.get(a.id) as Promise<AttemptEnd>)
  if (!r.ok) throw r.error
  await until(() => got === 'early ', 'the echo of what the client sent first')
  await until(() => r.relay.counts().received === 6, 'the live counts, published when adopted')
  socket.end('late')
  await within(once(socket, 'end'), 5000, 'client EOF')
  t.equal(got, 'early latebye')
  t.same(await l.ends.get(a.id), { sent: 10, received: 13, closedBy: 'client', error: null })
})

t.test('plan: a refused attempt is reported as connect()\'s, and the connection waits for the next one', { skip }, async t => {
  // The upstream first: a port closed before it was bound could be given to it.
  const up = await upstream(t)
  const port = await refusedPort()
  const l = await plannedListener(t)
  front().plan(l.id, { request: request(port) })
  const { c, a } = await connection(t, l)
  const r = await (l.attempts.get(a.id) as Promise<AttemptEnd>)
  t.match(r, { ok: false, error: { code: 'ECONNREFUSED', message: `connect ECONNREFUSED 127.0.0.1:${port}` } })
  const second = await attempt(front(), a.id, request(up.port))
  t.equal(second.ok, true, 'failover after a planned attempt')
  c.socket.end('x')
  await within(c.ended, 5000, 'client EOF')
  t.same(await l.ends.get(a.id), { sent: 1, received: 4, closedBy: 'client', error: null })
})

t.test('plan: a connection accepted before a new plan names the old one; with none, connections wait to be asked', { skip }, async t => {
  const [one, two, three] = [await upstream(t), await upstream(t), await upstream(t)]
  const l = await listener(t)
  const plans: Plan[] = [one, two, three].map(up => ({ request: request(up.port) }))
  /** A client the thread accepts (by the plan in force) while the event loop sleeps: its report waits. */
  const acceptedNow = async (): Promise<void> => {
    const s = connect({ port: l.port, host: '127.0.0.1' }).on('error', () => {})
    t.teardown(() => s.destroy())
    await new Promise(r => process.nextTick(r))
    block(200)
  }
  front().plan(l.id, plans[0] as Plan)
  await acceptedNow()
  front().plan(l.id, plans[1] as Plan)
  await acceptedNow()
  front().plan(l.id, plans[2] as Plan)
  front().plan(l.id, plans[2] as Plan) // the same plan again: a new number
  t.equal(l.accepted.length, 0, 'neither heard of yet')
  const heard = async (n: number): Promise<void> => {
    const c = await client(l.port)
    t.teardown(() => c.socket.destroy())
    await until(() => l.accepted.length === n, `connection ${n} heard of`)
  }
  await heard(3)
  const [a1, a2, a3] = l.accepted
  t.equal(a1?.plan, plans[0], 'accepted under the first plan: that one, though two came after')
  t.equal(a2?.plan, plans[1], 'accepted under the second: that one')
  t.equal(a3?.plan, plans[2], 'accepted after the last: the last')
  front().plan(l.id, null)
  front().plan(l.id, null) // none again: nothing to tell the thread
  await heard(4)
  const a4 = l.accepted[3]
  t.equal(a4?.plan, null, 'no plan: the connection waits')
  await sleep(100)
  t.same([one.seen.length, two.seen.length, three.seen.length], [1, 1, 1], 'each planned connection connected once, by its plan; the unplanned one not at all')
  for (const a of [a1, a2, a3, a4]) front().abort((a as Accepted).id)
})

t.test('relayPlan and relayAdopt refuse what they cannot use', { skip }, async t => {
  const l = await listener(t)
  t.equal(lib().relayPlan(1e9, 1, 0), false, 'no such listener')
  t.throws(() => lib().relayPlan(l.id, 7, 4, 'localhost', 25, 0, 0, 0), { name: 'TypeError', message: 'expected an IPv4 or IPv6 address and a port' })
  t.throws(() => lib().relayPlan(l.id, 7, 6, '::1', 0, 0, 0, 0), { name: 'TypeError' })
  t.throws(() => lib().relayAdopt(1, new BigUint64Array(3), 1), { name: 'RangeError' })
  t.equal(lib().relayPlan(l.id, 1e9, 0), true, 'none: the rest may be left out')
})

t.test('listen on something that is no descriptor: the error, no listener', { skip }, async t => {
  t.throws(() => front().listen(1 << 20, () => {}), { code: 'EBADF', syscall: 'fcntl(F_DUPFD_CLOEXEC)' })
})

/** `timer:(...)` of the established socket between local port `from` and peer port `to`, or ''. */
function timer(from: number, to: number): string {
  const out = spawnSync('ss', ['-tnoH', 'state', 'established', `( sport = :${from} and dport = :${to} )`]).stdout.toString()
  return /timer:\(([^)]*)\)/.exec(out)?.[1] ?? ''
}

t.test('keepalive > 0: SO_KEEPALIVE with TCP_KEEPIDLE on both sockets; 0: none', { skip: skip || noSs }, async t => {
  const up = await upstream(t)
  const l = await listener(t)
  for (const keepalive of [900, 0]) {
    const { c, a } = await connection(t, l)
    const end = ending(front(), a.id)
    t.equal((await attempt(front(), a.id, request(up.port, { keepalive }))).ok, true)
    await until(() => up.seen.length === (keepalive === 0 ? 2 : 1), 'the server accepted')
    const server = (up.seen.at(-1) as (typeof up.seen)[0]).socket
    const want = keepalive === 0 ? /^$/ : /^keepalive,1[45]min/
    t.match(timer(l.port, c.socket.localPort as number), want, `keepalive ${keepalive}: the client's socket`)
    t.match(timer(server.remotePort as number, up.port), want, `keepalive ${keepalive}: the server's socket`)
    front().abort(a.id)
    await end
  }
})

t.test('idleMs: no byte for that long ends the relay, closedBy timeout', { skip }, async t => {
  const up = await upstream(t)
  const l = await listener(t)
  const { c, a } = await connection(t, l)
  const end = ending(front(), a.id)
  t.equal((await attempt(front(), a.id, request(up.port, { idleMs: 200 }))).ok, true)
  c.socket.write('x')
  const start = Date.now()
  t.same(await end, { sent: 1, received: 1, closedBy: 'timeout', error: null })
  const ms = Date.now() - start
  t.ok(ms >= 150 && ms < 3000, `ended after ${ms} ms for 200`)
  await within(c.ended, 5000, 'the client sees EOF')
})

t.test('out of descriptors when the first connection comes: it is closed, and the front goes on once there are some', { skip }, async t => {
  const script = fileURLToPath(new URL('../fixtures/front-emfile.mjs', import.meta.url))
  const child = spawn('/bin/sh', ['-c', `ulimit -n 64 && exec "${process.execPath}" "${script}"`], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => child.kill('SIGKILL'))
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  const line = async (): Promise<string> => (await within(lines.next(), 5000, 'a line from the child')).value as string
  const port = Number(await line())
  const shed = connect({ port, host: '127.0.0.1' }).on('error', () => {})
  t.teardown(() => shed.destroy())
  await within(once(shed, 'close'), 3000, 'the connection that came with the table full is closed')
  child.stdin.write('free\n')
  t.equal(await line(), 'freed')
  const next = connect({ port, host: '127.0.0.1' }).on('error', () => {})
  t.teardown(() => next.destroy())
  await within(once(next, 'connect'), 3000, 'connected')
  // Read now: the child ends it at once, and a closed socket has no port.
  const nextPort = next.localPort
  t.equal(await line(), `heard ${nextPort}`, 'the next one is heard of, the first was not')
  child.stdin.write('exit\n')
  t.equal((await within(once(child, 'exit'), 5000, 'the child exits'))[0], 0)
})
