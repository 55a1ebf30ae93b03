import t from 'tap'
import fc from 'fast-check'
import { BALANCE_MODES, Rotation, fnv1a32, tryOrder, type BalanceMode, type Candidate } from '../../lib/server/balance.js'

/** Fast-check: fixed seed, bounded runs. */
const PROPS = { seed: 0xba1, numRuns: 300 } as const

const servers = (ups: readonly boolean[], active: readonly number[] = []): Candidate[] =>
  ups.map((up, i) => ({ key: `10.0.0.${i + 1}:25`, up, active: active[i] ?? 0 }))

const ctx = (client = '192.0.2.1'): { rotation: Rotation; client: string } => ({ rotation: new Rotation(), client })

/** Up to 6 servers, each up or down, with up to 5 sessions each. */
const serverSet = fc
  .array(fc.record({ up: fc.boolean(), active: fc.nat(5) }), { minLength: 1, maxLength: 6 })
  .map(list => list.map((s, i) => ({ key: `10.0.0.${i + 1}:25`, ...s })))
const mode = fc.constantFrom(...BALANCE_MODES)
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map(b => b.join('.'))

t.test('first: the list order, without the servers marked down', async t => {
  t.same(tryOrder('first', servers([true, true, true]), ctx()), [0, 1, 2])
  t.same(tryOrder('first', servers([false, true, true]), ctx()), [1, 2])
  t.same(tryOrder('first', [], ctx()), [], 'no servers, nothing to try')
})

t.test('every mode: all servers down means all are tried, in the mode order', async t => {
  t.same(tryOrder('first', servers([false, false, false]), ctx()), [0, 1, 2])
  const rotation = new Rotation()
  t.same(tryOrder('roundrobin', servers([false, false, false]), { rotation, client: '' }), [0, 1, 2])
  t.same(tryOrder('roundrobin', servers([false, false, false]), { rotation, client: '' }), [1, 2, 0], 'and the rotation goes on')
  fc.assert(
    fc.property(mode, serverSet, ipv4, (m, list, client) => {
      const down = list.map(s => ({ ...s, up: false }))
      return tryOrder(m, down, ctx(client)).length === list.length
    }),
    PROPS,
  )
})

t.test('every mode: the order is a permutation of the servers that are up (of all when none is)', async t => {
  fc.assert(
    fc.property(mode, serverSet, ipv4, fc.nat(20), (m, list, client, turns) => {
      const c = ctx(client)
      for (let i = 0; i < turns; i++) tryOrder(m, list, c)
      const order = tryOrder(m, list, c)
      const expected = list.some(s => s.up) ? list.flatMap((s, i) => (s.up ? [i] : [])) : list.map((_, i) => i)
      return JSON.stringify([...order].sort((a, b) => a - b)) === JSON.stringify(expected)
    }),
    PROPS,
  )
  t.pass()
})

t.test('roundrobin: rotates over the servers that are up, failover in rotation order', async t => {
  const c = ctx()
  const list = servers([true, false, true, true])
  t.same(tryOrder('roundrobin', list, c), [0, 2, 3])
  t.same(tryOrder('roundrobin', list, c), [2, 3, 0])
  t.same(tryOrder('roundrobin', list, c), [3, 0, 2])
  t.same(tryOrder('roundrobin', list, c), [0, 2, 3])
})

t.test('roundrobin: over k*n picks each of the n servers up is chosen exactly k times', async t => {
  fc.assert(
    fc.property(serverSet, fc.integer({ min: 1, max: 5 }), fc.nat(7), (list, k, warmUp) => {
      const c = ctx()
      for (let i = 0; i < warmUp; i++) tryOrder('roundrobin', list, c)
      const pool = list.some(s => s.up) ? list.filter(s => s.up) : list
      const counts = new Map<number, number>()
      for (let i = 0; i < k * pool.length; i++) {
        const first = tryOrder('roundrobin', list, c)[0] as number
        counts.set(first, (counts.get(first) ?? 0) + 1)
      }
      return counts.size === pool.length && [...counts.values()].every(n => n === k)
    }),
    PROPS,
  )
  t.pass()
})

t.test('roundrobin: three servers give 3/3/3 over nine picks', async t => {
  const c = ctx()
  const picks = Array.from({ length: 9 }, () => tryOrder('roundrobin', servers([true, true, true]), c)[0])
  t.same(picks, [0, 1, 2, 0, 1, 2, 0, 1, 2])
})

t.test('leastconn: fewest active sessions first, equally loaded servers in rotation', async t => {
  const c = ctx()
  t.same(tryOrder('leastconn', servers([true, true, true], [2, 0, 1]), c), [1, 2, 0])
  // One session held on the first server: the next ones go to the second.
  for (let i = 0; i < 4; i++) t.equal(tryOrder('leastconn', servers([true, true], [1, 0]), c)[0], 1)
  const idle = ctx()
  const picks = Array.from({ length: 6 }, () => tryOrder('leastconn', servers([true, true, true]), idle)[0])
  t.same(picks, [0, 1, 2, 0, 1, 2], 'idle servers take turns')
  t.same(tryOrder('leastconn', servers([false, true, true], [0, 3, 3]), ctx()), [1, 2], 'a marked server is skipped even when idle')
})

t.test('leastconn: the first choice has the fewest sessions, and the order never decreases in load', async t => {
  fc.assert(
    fc.property(serverSet, fc.nat(10), (list, warmUp) => {
      const c = ctx()
      for (let i = 0; i < warmUp; i++) tryOrder('leastconn', list, c)
      const order = tryOrder('leastconn', list, c)
      const loads = order.map(i => (list[i] as Candidate).active)
      const pool = list.some(s => s.up) ? list.filter(s => s.up) : list
      return loads[0] === Math.min(...pool.map(s => s.active)) && loads.every((l, i) => i === 0 || l >= (loads[i - 1] as number))
    }),
    PROPS,
  )
  t.pass()
})

t.test('source: the same client gets the same order while the set is unchanged', async t => {
  fc.assert(
    fc.property(serverSet, ipv4, fc.nat(5), (list, client, calls) => {
      const first = JSON.stringify(tryOrder('source', list, ctx(client)))
      const c = ctx(client)
      for (let i = 0; i < calls; i++) if (JSON.stringify(tryOrder('source', list, c)) !== first) return false
      return true
    }),
    PROPS,
  )
  t.pass()
})

t.test('source: when one server goes down only its clients move', async t => {
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 6 }), fc.array(ipv4, { minLength: 1, maxLength: 40 }), fc.nat(5), (n, clients, which) => {
      const all = servers(Array.from({ length: n }, () => true))
      const gone = which % n
      const less = all.map((s, i) => (i === gone ? { ...s, up: false } : s))
      return clients.every(client => {
        const before = tryOrder('source', all, ctx(client))
        const after = tryOrder('source', less, ctx(client))
        // The failover order is the old order without the server that went down.
        return JSON.stringify(after) === JSON.stringify(before.filter(i => i !== gone))
      })
    }),
    PROPS,
  )
  t.pass()
})

t.test('source: keyed by the server text, not its position; IPv4-mapped clients hash as IPv4', async t => {
  const list = servers([true, true, true, true])
  for (const client of ['192.0.2.1', '198.51.100.7', '2001:db8::5', '10.1.2.3']) {
    const order = tryOrder('source', list, ctx(client)).map(i => list[i]?.key)
    const reversed = [...list].reverse()
    t.same(tryOrder('source', reversed, ctx(client)).map(i => reversed[i]?.key), order, client)
  }
  t.same(tryOrder('source', list, ctx('::ffff:192.0.2.1')), tryOrder('source', list, ctx('192.0.2.1')))
})

t.test('source: many clients spread over the servers', async t => {
  const list = servers([true, true, true])
  const counts = [0, 0, 0]
  for (let i = 0; i < 3000; i++) {
    const first = tryOrder('source', list, ctx(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`))[0] as number
    counts[first] = (counts[first] as number) + 1
  }
  t.ok(counts.every(n => n > 800 && n < 1200), `3000 clients over 3 servers: ${counts.join('/')}`)
})

t.test('fnv1a32: the published test vectors', async t => {
  t.equal(fnv1a32(''), 0x811c9dc5)
  t.equal(fnv1a32('a'), 0xe40c292c)
  t.equal(fnv1a32('foobar'), 0xbf9cf968)
})

t.test('the mode names', async t => {
  const modes: readonly BalanceMode[] = BALANCE_MODES
  t.same(modes, ['first', 'roundrobin', 'leastconn', 'source'])
})
