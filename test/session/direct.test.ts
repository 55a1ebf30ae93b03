/**
 * lib/session/direct.ts: which sessions the relay thread can serve alone
 * (isDirect), and DirectSession with the thread's real front on real
 * loopback sockets: what it logs, tells the policy and the observer, and
 * sends the server. A stub front only where the thread cannot be made to
 * (out of descriptors, an attempt's end racing an abort).
 */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { connect, createServer } from 'node:net'
import type { Endpoint } from '../../lib/config/address.js'
import type { ResolvedService } from '../../lib/config/resolve.js'
import type { LogEntry, Logger } from '../../lib/log/logger.js'
import { fdOf, nativeAvailable } from '../../lib/native/addon.js'
import type { RelayHandle, RelayResult } from '../../lib/relay/event-loop.js'
import { threadFront, type Accepted, type AttemptEnd, type ConnectRequest, type ThreadFront } from '../../lib/relay/front.js'
import type { AttemptOutcome } from '../../lib/server/upstream.js'
import type { ProgramContext, SessionPolicy } from '../../lib/session/context.js'
import { DirectSession, isDirect } from '../../lib/session/direct.js'
import type { SessionObserver } from '../../lib/session/observer.js'
import { backend, freePort, hangingPort } from '../fixtures/harness.js'
import { collect } from '../fixtures/pair.js'
import { sessionService } from '../fixtures/session-service.js'

const PROGRAMS: ProgramContext = { baseEnv: {}, envPrefix: 'PROXY_', pid: 4242, proxyName: 'tcpproxy', logName: 'tcpproxy', resolveNames: false, runAs: {} }

const service = (extra: Partial<ResolvedService> = {}): ResolvedService =>
  sessionService({ servers: [{ host: '127.0.0.1', port: 9 }], timeout: 60, connectTimeout: 5, ...extra })

t.test('isDirect: a plain forwarded service, and each thing that needs Node\'s sockets', async t => {
  t.equal(isDirect(service(), '192.0.2.1'), true)
  t.equal(isDirect(service({ servers: [{ host: '::1', port: 25 }, { host: '127.0.0.1', port: null }] }), '192.0.2.1'), true, 'addresses of both families, a port from the listener')
  t.equal(isDirect(service({ servers: null }), '192.0.2.1'), true, 'no servers: nothing to resolve')
  t.equal(isDirect(service({ trustsProxy: ip => ip === '192.0.2.9' }), '192.0.2.1'), true, 'accept-proxy for other peers')
  const not: Array<[string, Partial<ResolvedService>]> = [
    ['an ACP', { acp: ['/bin/true'] }],
    ['a handler', { exec: ['/bin/cat'] }],
    ['a -w dump', { writefile: '/tmp/dump' }],
    ['a redirect mode', { redirectMode: 'forward' }],
    ['forge-addr', { forgeAddr: true }],
    ['a source address', { sourceAddress: '127.0.0.5' }],
    ['a PROXY header to read from this client', { trustsProxy: ip => ip === '192.0.2.1' }],
    ['a server given by host name', { servers: [{ host: '127.0.0.1', port: 25 }, { host: 'localhost', port: 25 }] }],
    ['a server with a zone (the thread takes plain addresses only)', { servers: [{ host: '127.0.0.1', port: 25 }, { host: 'fe80::1%lo', port: 25 }] }],
  ]
  for (const [what, extra] of not) t.equal(isDirect(service(extra), '192.0.2.1'), false, what)
})

function memoryLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = []
  return { debug: true, entries, log: e => void entries.push(e) }
}

/** A policy that admits (or not), keeps the servers' order, and records the attempts. */
function recordingPolicy(admit = true): SessionPolicy & { attempts: string[] } {
  const attempts: string[] = []
  const text = (a: AttemptOutcome): string => `${a.host}:${a.port} ${a.ok ? 'ok' : (a.error as NodeJS.ErrnoException).code}`
  return { attempts, admit: () => admit, order: s => s, attempted: a => void attempts.push(text(a)) }
}

/** An observer that records what it is told. */
function recordingObserver(): SessionObserver & { calls: unknown[][]; relay: RelayHandle | null } {
  const o = {
    calls: [] as unknown[][],
    relay: null as RelayHandle | null,
    denied: (reason: string) => void o.calls.push(['denied', reason]),
    handler: () => {},
    connectFailed: (server: string) => void o.calls.push(['connectFailed', server]),
    relaying: (server: string, relay: RelayHandle, client: string, clientPort: number) => {
      o.relay = relay
      o.calls.push(['relaying', server, client, clientPort])
    },
    ended: (r: RelayResult) => (o.calls.push(['ended', r.sent, r.received, r.closedBy]), r),
  }
  return o
}

const native = { skip: nativeAvailable() ? false : 'the native addon is not built' }

/** A listener the thread accepts on (as lib/server/listening.ts adopts one); next(): its next connection. */
async function threadListener(t: Test, front: ThreadFront): Promise<{ port: number; next: () => Promise<Accepted> }> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  const waiting: Array<(a: Accepted) => void> = []
  const id = front.listen(fdOf(server), a => (waiting.shift() as (a: Accepted) => void)(a))
  server.close()
  t.teardown(() => front.unlisten(id))
  return { port, next: () => new Promise(resolve => waiting.push(resolve)) }
}

/** A client of `l`, and the session serving it (not run yet). */
async function direct(l: { port: number; next: () => Promise<Accepted> }, front: ThreadFront, svc: ResolvedService, policy = recordingPolicy(), localPort?: number) {
  const accepted = l.next()
  const client = connect({ port: l.port, host: '127.0.0.1', allowHalfOpen: true }).on('error', () => {})
  const a = await accepted
  const log = memoryLogger()
  const observer = recordingObserver()
  const resourceErrors: Error[] = []
  const s = new DirectSession({
    id: 7,
    service: svc,
    local: a.local,
    localPort: localPort ?? a.localPort,
    clientIp: a.peer,
    clientPort: a.peerPort,
    log,
    programs: PROGRAMS,
    onResourceError: e => void resourceErrors.push(e),
    policy,
    observer,
  }, a.id, front)
  return { s, a, client, log, observer, policy, resourceErrors, received: collect(client) }
}

/** Start `s`; resolves when it is done. */
const run = (s: DirectSession): Promise<void> => new Promise(resolve => s.start(resolve))

/** `p`, or a rejection after `ms`. */
function within<T>(p: Promise<T>, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not done within ${ms} ms`)), ms)))
  return Promise.race([p, limit]).finally(() => clearTimeout(timer))
}

/** An upstream that records what it receives and answers "ok" at the end. */
async function recorder(t: Test, host = '127.0.0.1'): Promise<{ port: number; got: string[] }> {
  const got: string[] = []
  const up = await backend(s => {
    let data = ''
    s.on('data', d => (data += d.toString('latin1')))
    s.on('end', () => {
      got.push(data)
      s.end('ok')
    })
  }, host)
  t.teardown(() => up.close())
  return { port: up.port, got }
}

const lines = (log: { entries: LogEntry[] }): string[] => log.entries.map(e => `${e.tag} ${e.event}: ${e.text}`)

t.test('admitted and relayed: the connect and disconnect lines, their fields, the policy and the observer told', native, async t => {
  const front = threadFront() as ThreadFront
  const up = await recorder(t)
  const l = await threadListener(t, front)
  const d = await direct(l, front, service({ servers: [{ host: '127.0.0.1', port: up.port }] }))
  const done = run(d.s)
  d.client.end('hello')
  await within(done)
  t.equal((await within(d.received)).toString(), 'ok')
  t.same(up.got, ['hello'])
  const server = `127.0.0.1:${up.port}`
  const port = d.a.peerPort
  t.match(lines(d.log), [
    `+INFO connect: connect: client= 127.0.0.1, server= ${server}, timeout= 60`,
    new RegExp(`^\\+OK disconnect: disconnect: client= 127\\.0\\.0\\.1, server= ${server}, received= 2, send= 5, duration= \\d+\\.\\d{3}, closed-by= client$`),
  ])
  t.equal(d.log.entries.length, 2)
  t.same(
    d.log.entries.map(e => e.id),
    [7, 7],
  )
  const who = { client: '127.0.0.1', client_port: port, service: '127.0.0.1:8025', pid: 4242 }
  t.same(d.log.entries[0]?.fields, { server, ...who })
  t.match(d.log.entries[1]?.fields, { server, received: 2, sent: 5, closed_by: 'client', ...who })
  t.same(d.policy.attempts, [`127.0.0.1:${up.port} ok`])
  t.same(d.observer.calls, [
    ['relaying', server, '127.0.0.1', port],
    ['ended', 5, 2, 'client'],
  ])
  t.same(d.observer.relay?.counts(), { sent: 5, received: 2, halfClosed: true }, 'the relay handle reads the thread\'s counts')
})

t.test('refused by the policy: the client is closed, nothing tried, nothing logged', native, async t => {
  const front = threadFront() as ThreadFront
  const up = await recorder(t)
  const l = await threadListener(t, front)
  const d = await direct(l, front, service({ servers: [{ host: '127.0.0.1', port: up.port }] }), recordingPolicy(false))
  await within(run(d.s))
  t.equal((await within(d.received)).toString(), '')
  t.same(d.log.entries, [])
  t.same(d.policy.attempts, [])
  t.same(d.observer.calls, [])
  t.same(up.got, [], 'the server saw nothing')
})

t.test('failover: a line per failed server, then connect (a server without a port: the listener\'s)', native, async t => {
  const front = threadFront() as ThreadFront
  const up = await recorder(t, '::1')
  const [dead4, dead6] = [await freePort(), await freePort('::1')]
  const l = await threadListener(t, front)
  const servers: Endpoint[] = [
    { host: '127.0.0.1', port: dead4 },
    { host: '::1', port: dead6 },
    { host: '::1', port: null },
  ]
  // A server without a port gets the one the client connected to: here, the recorder's.
  const d = await direct(l, front, service({ servers }), recordingPolicy(), up.port)
  const done = run(d.s)
  d.client.end('over')
  await within(done)
  t.equal((await within(d.received)).toString(), 'ok')
  t.same(up.got, ['over'])
  t.match(lines(d.log), [
    `-INFO connect-failed: can't connect to server 127.0.0.1:${dead4}, error= connect ECONNREFUSED 127.0.0.1:${dead4}`,
    `-INFO connect-failed: can't connect to server [::1]:${dead6}, error= connect ECONNREFUSED ::1:${dead6}`,
    `+INFO connect: connect: client= 127.0.0.1, server= [::1]:${up.port}, timeout= 60`,
    /^\+OK disconnect: .*received= 2, send= 4, .*closed-by= client$/,
  ])
  t.same(d.log.entries[0]?.fields?.['server'], `127.0.0.1:${dead4}`)
  t.same(d.policy.attempts, [`127.0.0.1:${dead4} ECONNREFUSED`, `::1:${dead6} ECONNREFUSED`, `::1:${up.port} ok`])
  t.same(
    d.observer.calls.map(c => c.slice(0, 2)),
    [
      ['connectFailed', `127.0.0.1:${dead4}`],
      ['connectFailed', `[::1]:${dead6}`],
      ['relaying', `[::1]:${up.port}`],
      ['ended', 4],
    ],
  )
})

t.test('every server failing: their lines, then connection-error; the client is closed, run() resolves', native, async t => {
  const front = threadFront() as ThreadFront
  const [a, b] = [await freePort(), await freePort()]
  const l = await threadListener(t, front)
  const d = await direct(l, front, service({ servers: [{ host: '127.0.0.1', port: a }, { host: '127.0.0.1', port: b }] }))
  await within(run(d.s))
  t.equal((await within(d.received)).toString(), '', 'closed')
  t.same(lines(d.log), [
    `-INFO connect-failed: can't connect to server 127.0.0.1:${a}, error= connect ECONNREFUSED 127.0.0.1:${a}`,
    `-INFO connect-failed: can't connect to server 127.0.0.1:${b}, error= connect ECONNREFUSED 127.0.0.1:${b}`,
    `-ERR connection-error: connection error: client= 127.0.0.1, server= 127.0.0.1:${b}, error= connect ECONNREFUSED 127.0.0.1:${b}`,
  ])
  t.match(d.log.entries[2], { id: 7, fields: { server: `127.0.0.1:${b}`, client: '127.0.0.1', pid: 4242 } })
  t.same(d.policy.attempts, [`127.0.0.1:${a} ECONNREFUSED`, `127.0.0.1:${b} ECONNREFUSED`])
  t.same(d.observer.calls, [
    ['connectFailed', `127.0.0.1:${a}`],
    ['connectFailed', `127.0.0.1:${b}`],
  ])
  t.same(d.resourceErrors, [])
})

t.test('a connect timeout is a failed attempt with Node\'s timeout error', native, async t => {
  const front = threadFront() as ThreadFront
  const hole = await hangingPort(t, 3000)
  const l = await threadListener(t, front)
  const d = await direct(l, front, service({ servers: [{ host: '127.0.0.1', port: hole }], connectTimeout: 0.2 }))
  await within(run(d.s))
  await within(d.received)
  t.same(
    d.log.entries.map(e => e.event),
    ['connect-failed', 'connection-error'],
  )
  t.match(d.log.entries[1]?.text, new RegExp(`^connection error: client= 127\\.0\\.0\\.1, server= 127\\.0\\.0\\.1:${hole}, error= `))
})

/**
 * A front that answers each connect with the next of `ends` and records
 * what it was asked; end() reports the connection's end as the thread would.
 */
function stubFront(ends: AttemptEnd[]) {
  const asked: string[] = []
  let onEnd: ((r: RelayResult) => void) | null = null
  let pending: ((a: AttemptEnd) => void) | null = null
  const front = {
    connect: (id: number, req: ConnectRequest, ended: (a: AttemptEnd) => void) => {
      asked.push(`connect ${id} ${req.address}:${req.port} family ${req.family}`)
      const next = ends.shift()
      if (next === undefined) pending = ended
      else queueMicrotask(() => ended(next))
    },
    abort: (id: number) => void asked.push(`abort ${id}`),
    refuse: (id: number) => void asked.push(`refuse ${id}`),
    onEnd: (_id: number, done: (r: RelayResult) => void) => void (onEnd = done),
  }
  return {
    front: front as unknown as ThreadFront,
    asked,
    answer: (a: AttemptEnd) => (pending as (a: AttemptEnd) => void)(a),
    end: (r: RelayResult) => (onEnd as (r: RelayResult) => void)(r),
  }
}

function stubSession(front: ThreadFront, servers: Endpoint[]) {
  const log = memoryLogger()
  const observer = recordingObserver()
  const policy = recordingPolicy()
  const resourceErrors: Error[] = []
  const s = new DirectSession({
    id: 3,
    service: service({ servers }),
    local: '127.0.0.1',
    localPort: 8025,
    clientIp: '192.0.2.1',
    clientPort: 5000,
    log,
    programs: PROGRAMS,
    onResourceError: e => void resourceErrors.push(e),
    policy,
    observer,
  }, 99, front)
  return { s, log, observer, policy, resourceErrors }
}

const emfile = (address: string): Error => Object.assign(new Error(`connect EMFILE ${address}`), { code: 'EMFILE', syscall: 'connect' })

t.test('out of descriptors: no lines of its own; the next server is tried; at the end, onResourceError', async t => {
  const stub = stubFront([{ ok: false, error: emfile('10.0.0.1:25') }, { ok: false, error: emfile('10.0.0.2:25') }])
  const d = stubSession(stub.front, [{ host: '10.0.0.1', port: 25 }, { host: '10.0.0.2', port: 25 }])
  let ends = 0
  await within(new Promise<void>(resolve => d.s.start(() => (ends++, resolve()))))
  t.same(d.log.entries, [], 'the forwarder\'s rate-limited line tells it')
  t.same(
    d.resourceErrors.map(e => e.message),
    ['connect EMFILE 10.0.0.2:25'],
  )
  t.same(stub.asked, ['connect 99 10.0.0.1:25 family 4', 'connect 99 10.0.0.2:25 family 4', 'refuse 99'])
  t.same(d.policy.attempts, ['10.0.0.1:25 EMFILE', '10.0.0.2:25 EMFILE'])
  t.same(d.observer.calls, [
    ['connectFailed', '10.0.0.1:25'],
    ['connectFailed', '10.0.0.2:25'],
    ['denied', 'resources'],
  ])
  // The thread's end report comes after: it changes nothing, and the session ended once.
  stub.end({ sent: 0, received: 0, closedBy: 'shutdown', error: null })
  t.same(d.log.entries, [])
  t.equal(ends, 1, 'the forwarder hears of the end once (its counts and limits)')
})

t.test('an attempt that ends after abort(): told to the policy, nothing logged; the end ends the session', async t => {
  for (const end of [{ ok: true, relay: { abort: () => {}, counts: () => ({ sent: 0, received: 0, halfClosed: false }) } }, { ok: false, error: new Error('connect ECONNREFUSED') }] as AttemptEnd[]) {
    const stub = stubFront([])
    const d = stubSession(stub.front, [{ host: '2001:db8::1', port: 25 }, { host: '10.0.0.2', port: 25 }])
    const done = run(d.s)
    d.s.abort()
    stub.answer(end)
    t.same(d.log.entries, [], `${end.ok ? 'connected' : 'failed'}: no line`)
    t.same(d.observer.calls, [])
    t.equal(d.policy.attempts.length, 1, 'the attempt is told to the health marks')
    t.same(stub.asked, ['connect 99 2001:db8::1:25 family 6', 'abort 99'], 'no other server tried')
    stub.end({ sent: 0, received: 0, closedBy: 'shutdown', error: null })
    await within(done)
  }
})

t.test('abort() before the connect completes: no line, no attempt told, run() resolves, the client is closed', native, async t => {
  const front = threadFront() as ThreadFront
  const hole = await hangingPort(t, 3000)
  const l = await threadListener(t, front)
  const d = await direct(l, front, service({ servers: [{ host: '127.0.0.1', port: hole }] }))
  const done = run(d.s)
  d.client.write('early')
  await new Promise(r => setTimeout(r, 100))
  d.s.abort()
  await within(done)
  await within(d.received)
  t.same(d.log.entries, [])
  t.same(d.policy.attempts, [], 'no attempt ended')
  t.same(d.observer.calls, [])
})

t.test('abort() while relaying: the disconnect line says closed-by= shutdown', native, async t => {
  const front = threadFront() as ThreadFront
  const quiet = await backend(s => s.on('error', () => {}).resume())
  t.teardown(() => quiet.close())
  const l = await threadListener(t, front)
  const d = await direct(l, front, service({ servers: [{ host: '127.0.0.1', port: quiet.port }] }))
  const done = run(d.s)
  const deadline = Date.now() + 5000
  while (!d.log.entries.some(e => e.event === 'connect') && Date.now() < deadline) await new Promise(r => setTimeout(r, 5))
  d.s.abort()
  await within(done)
  await within(d.received)
  t.match(lines(d.log), [/^\+INFO connect: /, new RegExp(`^\\+OK disconnect: disconnect: client= 127\\.0\\.0\\.1, server= 127\\.0\\.0\\.1:${quiet.port}, received= 0, send= 0, duration= \\d+\\.\\d{3}, closed-by= shutdown$`)])
  t.equal(d.log.entries.length, 2)
})

t.test('send-proxy v1 and v2: the header reaches the server first; send= leaves it out', native, async t => {
  const front = threadFront() as ThreadFront
  for (const version of ['v1', 'v2'] as const) {
    const up = await recorder(t)
    const l = await threadListener(t, front)
    const d = await direct(l, front, service({ servers: [{ host: '127.0.0.1', port: up.port }], sendProxy: version }))
    const done = run(d.s)
    d.client.end('payload')
    await within(done)
    t.equal((await within(d.received)).toString(), 'ok')
    const got = up.got[0] as string
    if (version === 'v1') t.equal(got, `PROXY TCP4 127.0.0.1 127.0.0.1 ${d.a.peerPort} ${l.port}\r\npayload`)
    else {
      const v2 = Buffer.from(got, 'latin1')
      t.same(v2.subarray(0, 12), Buffer.from('0d0a0d0a000d0a515549540a', 'hex'), 'v2 signature')
      t.equal(v2.length, 16 + 12 + 7, 'the header for TCP4, then the payload')
      t.equal(v2.readUInt16BE(16 + 8), d.a.peerPort, 'the client\'s port')
      t.equal(v2.subarray(28).toString(), 'payload')
    }
    t.match(d.log.entries.find(e => e.event === 'disconnect')?.text, /received= 2, send= 7, /, `${version}: the header is not counted`)
    t.same(d.observer.calls.at(-1), ['ended', 7, 2, 'client'])
  }
})

