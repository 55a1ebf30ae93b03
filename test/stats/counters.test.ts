import t from 'tap'
import fc from 'fast-check'
import { Aggregator, Counters, DURATION_BUCKETS, bucketIndex, continues, emptyHistogram, mergeSnapshots, openSessions, sortedEntries, type Snapshot } from '../../lib/stats/counters.js'

const SVC = '127.0.0.1:8080'
const SRV = 'db.example:5432'

t.test('configured services and servers are listed with zeros, and configuring again keeps their counts', async t => {
  const c = new Counters()
  c.configured([SVC, '127.0.0.3:8080'], [{ service: SVC, server: SRV }])
  const zero = { connections: 0, active: 0, denied: {}, duration: emptyHistogram(), servers: {} }
  t.same(c.snapshot().services, {
    [SVC]: { ...zero, servers: { [SRV]: { connections: 0, active: 0, received: 0, sent: 0, connectFailures: 0, up: null } } },
    '127.0.0.3:8080': zero,
  })
  c.accepted(SVC)
  c.connected(SVC, SRV, 5)
  c.configured([SVC], [{ service: SVC, server: SRV }])
  t.match(c.snapshot().services[SVC], { connections: 1, active: 1, servers: { [SRV]: { connections: 1, active: 1 } } }, 'a reload loses nothing')
})

t.test('a session counts on its service and its server', async t => {
  const c = new Counters()
  c.accepted(SVC)
  c.connectFailed(SVC, 'a:1', 1000)
  c.connected(SVC, SRV, 1001)
  let s = c.snapshot().services[SVC]!
  t.equal(s.connections, 1)
  t.equal(s.active, 1)
  t.same(s.servers['a:1'], { connections: 0, active: 0, received: 0, sent: 0, connectFailures: 1, up: { up: false, at: 1000 } })
  t.same(s.servers[SRV], { connections: 1, active: 1, received: 0, sent: 0, connectFailures: 0, up: { up: true, at: 1001 } })
  c.relayEnded(SVC, SRV, 300, 20)
  c.closed(SVC, 0.7)
  c.accepted(SVC)
  c.denied(SVC, 'acp')
  c.denied(SVC, 'acp')
  c.closed(SVC, 0.001)
  s = c.snapshot().services[SVC]!
  t.equal(s.active, 0)
  t.same(s.denied, { acp: 2 })
  t.same(s.servers[SRV], { connections: 1, active: 0, received: 300, sent: 20, connectFailures: 0, up: { up: true, at: 1001 } })
  const counts = emptyHistogram().counts
  counts[0] = 1
  counts[4] = 1
  t.same(s.duration, { counts, sumMicros: 701000 })
})

t.test('a snapshot is a copy: later events do not change it', async t => {
  const c = new Counters()
  c.accepted(SVC)
  const before = c.snapshot()
  c.accepted(SVC)
  t.equal(before.services[SVC]!.connections, 1)
  t.same(JSON.parse(JSON.stringify(before)), before, 'plain JSON')
})

t.test('entries sorted by key, whatever the insertion order', async t => {
  t.same(sortedEntries({ b: 2, c: 3, a: 1 }), [['a', 1], ['b', 2], ['c', 3]])
})

t.test('durations fall in the first bucket whose bound they do not exceed', async t => {
  t.equal(bucketIndex(0), 0)
  t.equal(bucketIndex(0.005), 0)
  t.equal(bucketIndex(0.0051), 1)
  t.equal(bucketIndex(14400), DURATION_BUCKETS.length - 1)
  t.equal(bucketIndex(14400.5), DURATION_BUCKETS.length)
  t.equal(DURATION_BUCKETS.length, 12)
  t.same([...DURATION_BUCKETS].sort((a, b) => a - b), DURATION_BUCKETS, 'ascending')
})

t.test('the latest upstream state wins; on a tie, down', async t => {
  const up = (v: boolean, at: number): Snapshot => ({
    services: { [SVC]: { connections: 0, active: 0, denied: {}, duration: emptyHistogram(), servers: { [SRV]: { connections: 0, active: 0, received: 0, sent: 0, connectFailures: 0, up: { up: v, at } } } } },
  })
  const get = (s: Snapshot) => s.services[SVC]!.servers[SRV]!.up
  t.same(get(mergeSnapshots([up(true, 5), up(false, 4)])), { up: true, at: 5 })
  t.same(get(mergeSnapshots([up(false, 4), up(true, 5)])), { up: true, at: 5 })
  t.same(get(mergeSnapshots([up(true, 5), up(false, 5)])), { up: false, at: 5 })
  t.same(get(mergeSnapshots([up(false, 5), up(true, 5)])), { up: false, at: 5 })
})

t.test('a retired worker keeps its counters in the total, not its open sessions', async t => {
  const a = new Counters()
  const b = new Counters()
  a.accepted(SVC)
  a.connected(SVC, SRV, 1)
  b.accepted(SVC)
  const agg = new Aggregator()
  agg.update('1', a.snapshot())
  agg.update('2', b.snapshot())
  t.equal(agg.total().services[SVC]!.connections, 2)
  t.equal(agg.total().services[SVC]!.active, 2)
  agg.retire('1')
  agg.retire('1')
  agg.retire('nobody')
  const total = agg.total().services[SVC]!
  t.equal(total.connections, 2)
  t.equal(total.active, 1)
  t.same(total.servers[SRV], { connections: 1, active: 0, received: 0, sent: 0, connectFailures: 0, up: { up: true, at: 1 } })
})

t.test('a worker restarted under the same id: the old counts are kept, not replaced', async t => {
  const old = new Counters()
  old.accepted(SVC)
  old.closed(SVC, 1)
  old.accepted(SVC)
  const agg = new Aggregator()
  agg.update('w', old.snapshot())
  const fresh = new Counters()
  fresh.accepted(SVC)
  agg.update('w', fresh.snapshot())
  t.equal(agg.total().services[SVC]!.connections, 3)
  t.equal(agg.total().services[SVC]!.active, 1, "the old process's open session is gone with it")
  t.equal(continues({ services: {} }, fresh.snapshot()), true)
  t.equal(continues(old.snapshot(), fresh.snapshot()), false)
})

t.test('a service or server that disappears does not continue the snapshot', async t => {
  const c = new Counters()
  c.connectFailed(SVC, SRV, 1)
  const other = new Counters()
  other.connectFailed(SVC, 'x:1', 1)
  other.connectFailed(SVC, SRV, 1)
  t.equal(continues(c.snapshot(), new Counters().snapshot()), false)
  t.equal(continues(c.snapshot(), other.snapshot()), true)
  t.equal(continues(other.snapshot(), c.snapshot()), false)
})

t.test('a denied reason that disappears does not continue the snapshot', async t => {
  const c = new Counters()
  c.denied(SVC, 'acp')
  const d = new Counters()
  d.accepted(SVC)
  d.accepted(SVC)
  t.equal(continues(c.snapshot(), d.snapshot()), false)
})

type Op =
  | { kind: 'event'; worker: number; event: number; service: number; server: number; n: number }
  | { kind: 'ship'; worker: number }
  | { kind: 'retire'; worker: number }
  | { kind: 'restart'; worker: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('event' as const), worker: fc.nat(2), event: fc.nat(5), service: fc.nat(1), server: fc.nat(1), n: fc.nat(100000) }),
  fc.record({ kind: fc.constant('ship' as const), worker: fc.nat(2) }),
  fc.record({ kind: fc.constant('retire' as const), worker: fc.nat(2) }),
  fc.record({ kind: fc.constant('restart' as const), worker: fc.nat(2) }),
)

function apply(c: Counters, o: Extract<Op, { kind: 'event' }>): void {
  const svc = `s${o.service}`
  const srv = `h${o.server}:1`
  if (o.event === 0) c.accepted(svc)
  else if (o.event === 1) c.closed(svc, o.n / 1000)
  else if (o.event === 2) c.denied(svc, `r${o.server}`)
  // Few distinct times, so that workers often report the same moment.
  else if (o.event === 3) c.connected(svc, srv, o.n % 8)
  else if (o.event === 4) c.connectFailed(svc, srv, o.n % 8)
  else c.relayEnded(svc, srv, o.n, o.n >> 1)
}

t.test('property: totals never go down, whatever workers ship, retire or restart', async t => {
  t.doesNotThrow(() => fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), ops => {
      const workers = [new Counters(), new Counters(), new Counters()]
      const agg = new Aggregator()
      let prev = agg.total()
      for (const o of ops) {
        if (o.kind === 'event') apply(workers[o.worker]!, o)
        else if (o.kind === 'ship') agg.update(String(o.worker), workers[o.worker]!.snapshot())
        else if (o.kind === 'retire') agg.retire(String(o.worker))
        // A new process under the old id, which ships before the old one is retired.
        else workers[o.worker] = new Counters()
        const now = agg.total()
        if (!continues(prev, now)) return false
        prev = now
      }
      return true
    }),
    { numRuns: 300 },
  ))
})

t.test('property: the merge is the same in any order', async t => {
  t.doesNotThrow(() => fc.assert(
    fc.property(fc.array(fc.array(op, { maxLength: 30 }), { maxLength: 5 }), fc.nat(), (groups, seed) => {
      const snaps = groups.map(g => {
        const c = new Counters()
        for (const o of g) if (o.kind === 'event') apply(c, o)
        return c.snapshot()
      })
      const rotated = snaps.map((_, i, a) => a[(i + seed) % a.length]!)
      return JSON.stringify(canon(mergeSnapshots(snaps))) === JSON.stringify(canon(mergeSnapshots(rotated.reverse())))
    }),
    { numRuns: 300 },
  ))
})

/** Keys sorted at every level, so that insertion order does not count as a difference. */
function canon(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canon)
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map(k => [k, canon((v as Record<string, unknown>)[k])]))
  }
  return v
}

t.test('property: with retire before restart, the total is exactly what the workers shipped', async t => {
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), ops => {
        const workers = [new Counters(), new Counters(), new Counters()]
        const accepted = [0, 0, 0]
        const shipped = [0, 0, 0]
        let retired = 0
        const agg = new Aggregator()
        for (const o of ops) {
          if (o.kind === 'event') {
            apply(workers[o.worker]!, o)
            if (o.event === 0) accepted[o.worker]!++
          } else if (o.kind === 'ship') {
            agg.update(String(o.worker), workers[o.worker]!.snapshot())
            shipped[o.worker] = accepted[o.worker]!
          } else {
            agg.retire(String(o.worker))
            retired += shipped[o.worker]!
            shipped[o.worker] = 0
            // The process ended (retire) or was replaced (restart): a new one starts from zero.
            workers[o.worker] = new Counters()
            accepted[o.worker] = 0
          }
        }
        const total = Object.values(agg.total().services).reduce((n, s) => n + s.connections, 0)
        return total === retired + shipped.reduce((a, b) => a + b, 0)
      }),
      { numRuns: 300 },
    ),
  )
})

t.test('openSessions: the open sessions of every service together', async t => {
  const c = new Counters()
  t.equal(openSessions(c.snapshot()), 0)
  c.accepted('a:1')
  c.accepted('a:1')
  c.accepted('b:2')
  c.closed('a:1', 0.1)
  t.equal(openSessions(c.snapshot()), 2)
})
