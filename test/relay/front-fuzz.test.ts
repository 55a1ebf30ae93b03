/**
 * lib/relay/front.ts and lib/native/front.c at their boundary, fuzzed:
 * random sequences of what a session may ask of the front (connect to a
 * server that echoes, refuses or hangs, failover, abort at any moment,
 * take, unlisten while connections arrive, listen again, a listener's plan
 * connecting each connection before it is heard of) against real
 * loopback sockets. Invariants: every connection a session waits for ends
 * exactly once, with counts that match what moved; no attempt is reported
 * after its abort; every client is settled; and the process's descriptors
 * come back to where they were.
 */
import t from 'tap'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { connect, type Socket } from 'node:net'
import { nativeAddon, nativeAvailable, type NativeAddon } from '../../lib/native/addon.js'
import type { RelayResult } from '../../lib/relay/event-loop.js'
import { threadFront, type Accepted, type AttemptEnd, type Plan, type ThreadFront } from '../../lib/relay/front.js'
import { block, echoServer, hangingListener, openFds, refusedPort, request, sleep, threadListener, until, within } from '../fixtures/front.js'

const skip = nativeAvailable() ? false : 'the native addon is not built'

type Target = 'ok' | 'refused' | 'hang'

interface ConnPlan {
  /** Node serves it (take) instead of the thread. */
  take: boolean
  /** The servers tried in order, until one connects. */
  attempts: Target[]
  timeoutMs: number
  /** Abort this many ms after the accept; -1: right after the first connect request, its report held up. */
  abortAfter: number | null
  first: Uint8Array | null
  payload: Uint8Array
  /** The client ends (FIN) this many ms after it connected. */
  endAfter: number
}

interface Batch {
  conns: ConnPlan[]
  /** Unlisten in the handler of this accepted connection (1-based), while the rest arrive. */
  unlistenAt: number | null
  /** The listener's plan (its first attempt, adopted; nothing is taken), or none. */
  plan: Target | null
}

const connPlan: fc.Arbitrary<ConnPlan> = fc.record({
  take: fc.boolean().chain(b => (b ? fc.boolean() : fc.constant(false))),
  attempts: fc.array(fc.constantFrom<Target>('ok', 'refused', 'hang'), { maxLength: 3 }),
  timeoutMs: fc.integer({ min: 20, max: 120 }),
  abortAfter: fc.option(fc.integer({ min: -1, max: 80 }), { nil: null }),
  first: fc.option(fc.uint8Array({ minLength: 1, maxLength: 16 }), { nil: null }),
  payload: fc.uint8Array({ maxLength: 64 }),
  endAfter: fc.integer({ min: 0, max: 40 }),
})

const batches: fc.Arbitrary<Batch[]> = fc.array(
  fc.record({
    conns: fc.array(connPlan, { minLength: 1, maxLength: 6 }),
    unlistenAt: fc.option(fc.integer({ min: 1, max: 6 }), { nil: null }),
    plan: fc.option(fc.constantFrom<Target>('ok', 'refused', 'hang'), { nil: null }),
  }),
  { minLength: 1, maxLength: 3 },
)

interface Servers {
  ok: number
  refused: number
  hang: number
}

/** Every client and accepted connection, for the teardown after a failure (a connection left waiting in the thread keeps the process alive). */
const everyClient = new Set<Socket>()
const everyAccepted = new Set<number>()

interface Client {
  socket: Socket
  /** What it read, once closed. */
  settled: Promise<Buffer>
}

/** A client: it sends its payload, ends after a while, reads to EOF and settles at close. */
function client(port: number, plan: ConnPlan): Client {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  everyClient.add(socket)
  const chunks: Buffer[] = []
  socket.on('data', b => chunks.push(b))
  socket.on('error', () => {})
  socket.on('end', () => socket.end())
  socket.write(plan.payload)
  socket.once('connect', () => setTimeout(() => socket.end(), plan.endAfter))
  const settled = new Promise<Buffer>(r => socket.once('close', () => r(Buffer.concat(chunks))))
  return { socket, settled }
}

/** Node's socket for the connection: it echoes and ends when the client does. */
function serveInNode(front: ThreadFront, a: Accepted): Promise<void> {
  const s = front.take(a)
  s.on('error', () => {})
  s.on('data', b => s.write(b))
  s.on('end', () => s.end())
  s.resume()
  return new Promise(r => s.once('close', () => r()))
}

/** One session: the plan's attempts, aborts and checks; resolves once its end was heard (exactly once). */
async function serve(front: ThreadFront, a: Accepted, plan: ConnPlan, servers: Servers, c: Client, planned: Target | null): Promise<void> {
  if (plan.take && a.plan === null) return serveInNode(front, a)
  let ends = 0
  let aborted = false
  let reportsAfterAbort = 0
  const ended = new Promise<RelayResult>(r =>
    front.onEnd(a.id, result => {
      ends++
      r(result)
    }),
  )
  const abort = (): void => {
    aborted = true
    front.abort(a.id)
  }
  const timer = plan.abortAfter !== null && plan.abortAfter >= 0 ? setTimeout(abort, plan.abortAfter) : undefined
  const given = plan.first === null ? null : Buffer.from(plan.first)
  // A planned connection's first attempt is the plan's (no bytes first), under way already.
  const attempts = a.plan === null ? plan.attempts : [planned as Target, ...plan.attempts]
  let relayed = false
  let first: Buffer | null = null
  for (const [i, target] of attempts.entries()) {
    if (aborted) break
    const byPlan = i === 0 && a.plan !== null
    first = byPlan ? null : given
    const heard = (e: AttemptEnd): void => {
      if (aborted) reportsAfterAbort++
      resolveAttempt(e)
    }
    let resolveAttempt: (e: AttemptEnd) => void = () => {}
    const attempt = new Promise<AttemptEnd>(r => (resolveAttempt = r))
    if (byPlan) front.adopt(a.id, a.plan as Plan, heard)
    else front.connect(a.id, request(servers[target], { timeoutMs: plan.timeoutMs, first }), heard)
    if (i === 0 && plan.abortAfter === -1) {
      block(10)
      abort()
    }
    const r = await Promise.race([attempt, ended.then(() => null)])
    if (r === null || r.ok) {
      relayed = r !== null
      break
    }
  }
  // None connected: the session gives up.
  if (!relayed && !aborted) abort()
  const result = await within(ended, 5000, `the end of ${a.id}`)
  clearTimeout(timer)
  await sleep(20)
  assert.equal(ends, 1, 'one end')
  assert.equal(reportsAfterAbort, 0, 'no attempt reported after its abort')
  const moved = (first?.length ?? 0) + plan.payload.length
  const whole = { sent: moved, received: moved + 3, closedBy: 'client', error: null }
  if (!aborted || result.closedBy === 'client') {
    assert.deepEqual(result, whole, 'relayed to the end')
    const got = await within(c.settled, 5000, 'the client closed')
    return assert.deepEqual(got, Buffer.concat([first ?? Buffer.alloc(0), plan.payload, Buffer.from('bye')]), 'the client read the echo and the reply')
  }
  assert.deepEqual([result.closedBy, result.error], ['shutdown', null], 'cut')
  // Cut before or while relaying (connected maybe, the report dropped): no more than that moved.
  const most = attempts.includes('ok') ? { sent: (given?.length ?? 0) + plan.payload.length, received: (given?.length ?? 0) + plan.payload.length + 3 } : { sent: 0, received: 0 }
  assert.ok(result.sent <= most.sent && result.received <= most.received, `moved ${result.sent} and ${result.received} of ${most.sent} and ${most.received}`)
}

async function runBatch(front: ThreadFront, batch: Batch, servers: Servers): Promise<void> {
  const sessions: Array<Promise<void>> = []
  const clients: Client[] = []
  let heard = 0
  let listening = true
  const l = await threadListener(front, '127.0.0.1', a => {
    heard++
    everyAccepted.add(a.id)
    const i = clients.findIndex(c => c.socket.localPort === a.peerPort)
    sessions.push(serve(front, a, batch.conns[i] as ConnPlan, servers, clients[i] as Client, batch.plan))
    if (heard === batch.unlistenAt) {
      front.unlisten(l.id)
      listening = false
    }
  })
  if (batch.plan !== null) front.plan(l.id, { request: request(servers[batch.plan], { timeoutMs: 100 }) })
  clients.push(...batch.conns.map(plan => client(l.port, plan)))
  try {
    // Every client is heard of, or (after an unlisten) refused or ended unheard.
    await within(Promise.all(clients.map(c => c.settled)), 8000, 'every client settled')
    await within(Promise.all(sessions), 8000, 'every session ended')
  } finally {
    // A listener keeps the process alive.
    if (listening) front.unlisten(l.id)
  }
}

t.test('random sessions against the front: one end each, no attempt after an abort, no descriptor left', { skip, timeout: 60000 }, async t => {
  const front = threadFront() as ThreadFront
  const up = await echoServer()
  const hang = await hangingListener(nativeAddon() as NativeAddon)
  t.teardown(() => {
    for (const id of everyAccepted) front.abort(id)
    for (const s of everyClient) s.destroy()
    up.close()
    hang.close()
  })
  const servers: Servers = { ok: up.port, refused: await refusedPort(), hang: hang.port }
  // Warm up: the thread's spare descriptor is opened at its first accept.
  await runBatch(front, { conns: [{ take: false, attempts: ['ok'], timeoutMs: 100, abortAfter: null, first: null, payload: new Uint8Array(1), endAfter: 0 }], unlistenAt: null, plan: null }, servers)
  await sleep(50)
  const before = openFds()
  const started = Date.now()
  let runs = 0
  await fc.assert(
    fc.asyncProperty(batches, async plan => {
      runs++
      for (const batch of plan) await runBatch(front, batch, servers)
      let now = openFds()
      await until(() => (now = openFds()) === before, 'descriptors back', 3000).catch(() => {})
      assert.equal(now, before, `descriptors: ${now}, ${before} before`)
    }),
    { numRuns: 30, endOnFailure: true },
  )
  t.equal(runs, 30)
  t.ok(Date.now() - started < 30000, `30 runs in ${Date.now() - started} ms`)
})

t.test('relayConnect with arbitrary arguments: an error naming what is wrong, or taken; no such connection: dropped unheard', { skip }, async t => {
  const lib = nativeAddon() as NativeAddon
  threadFront()
  const anything = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.integer(),
    fc.double(),
    fc.constantFrom(null, undefined, true, {}, [], 2 ** 53, -0),
    fc.uint8Array({ maxLength: 8 }).map(b => Buffer.from(b)),
  )
  // Mostly what front.ts passes, sometimes anything.
  const mostly = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ arbitrary: a, weight: 5 }, { arbitrary: anything, weight: 1 })
  const address = fc.oneof(fc.constantFrom('127.0.0.1', '::1', '::ffff:127.0.0.1', '0.0.0.0', '1.2.3.4.5', '', '::1%lo'), fc.ipV4(), fc.ipV6(), anything)
  const messages = [
    'expected a number',
    'expected an IPv4 or IPv6 address and a port',
    'expected a Buffer or null',
    'expected a BigUint64Array with room for slot',
    'Node-API call failed: A number was expected',
    'Node-API call failed: A string was expected',
  ]
  let taken = 0
  fc.assert(
    fc.property(
      mostly(fc.constantFrom(4, 6)),
      address,
      mostly(fc.integer({ min: -1, max: 70000 })),
      fc.tuple(mostly(fc.integer({ min: -1, max: 100000 })), mostly(fc.integer({ min: -1, max: 100000 })), mostly(fc.integer({ min: -1, max: 7200 }))),
      mostly(fc.oneof(fc.constant(null), fc.uint8Array({ maxLength: 32 }).map(b => Buffer.from(b)))),
      mostly(fc.oneof(fc.constant(null), fc.nat(12).map(n => new BigUint64Array(n)))),
      mostly(fc.integer({ min: -1, max: 4 })),
      (family, addr, port, [timeout, idle, keep], first, live, slot) => {
        try {
          // Connection 0: the thread has none such (its numbers start at 2^40).
          ;(lib.relayConnect as (...a: unknown[]) => void)(0, family, addr, port, timeout, idle, keep, first, live, slot)
          taken++
        } catch (e) {
          assert.ok(e instanceof Error && messages.includes(e.message), `${String(e)}`)
        }
      },
    ),
    { numRuns: 3000 },
  )
  t.ok(taken > 0, `${taken} of 3000 taken`)
  await sleep(100)
})
