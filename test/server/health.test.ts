import t from 'tap'
import fc from 'fast-check'
import { DEFAULT_HEALTH, Health, serverKey, transitionLog, type Transition } from '../../lib/server/health.js'

const S = '10.0.0.5:25'

t.test('defaults (max-fails 1, fail-timeout 10): one failed connect marks a server down for 10 s', async t => {
  t.same(DEFAULT_HEALTH, { maxFails: 1, failTimeoutMs: 10_000 })
  const h = new Health()
  t.equal(h.isUp(S, 0), true)
  const down = h.recordFailure(S, 'connect timed out', 1000)
  t.same(down, { server: S, state: 'down', reason: 'connect timed out', failures: 1, maxFails: 1 })
  t.equal(h.isUp(S, 1000), false)
  t.equal(h.isUp(S, 10_999), false)
  t.equal(h.isUp(S, 11_000), true, 'the mark expires after fail-timeout: the server is tried again')
  t.equal(h.isUp('10.0.0.6:25', 1000), true, 'other servers are not affected')
})

t.test('the two log lines have one wording', async t => {
  const h = new Health()
  const down = h.recordFailure(S, 'connect timed out', 0) as Transition
  t.same(transitionLog(down), { tag: '-INFO', event: 'server-down', text: 'server 10.0.0.5:25 down (connect timed out, 1 of 1 failures)' })
  t.same(transitionLog(h.recordSuccess(S, 1) as Transition), { tag: '+INFO', event: 'server-up', text: 'server 10.0.0.5:25 up' })
  t.equal(serverKey('2001:db8::1', 25), '[2001:db8::1]:25')
  t.equal(serverKey('10.0.0.5', 25), S)
})

t.test('max-fails N: N failures within fail-timeout mark it; older failures do not count', async t => {
  const h = new Health({ maxFails: 3, failTimeoutMs: 5000 })
  t.equal(h.recordFailure(S, 'connection refused', 0), null)
  t.equal(h.recordFailure(S, 'connection refused', 1000), null)
  t.equal(h.recordFailure(S, 'connection refused', 5000), null, 'the first failure left the window')
  t.equal(h.isUp(S, 5000), true)
  const down = h.recordFailure(S, 'no route to host', 5500)
  t.same(down, { server: S, state: 'down', reason: 'no route to host', failures: 3, maxFails: 3 })
  t.equal(h.isUp(S, 10_499), false)
  t.equal(h.isUp(S, 10_500), true)
})

t.test('a success clears the failures, as in nginx', async t => {
  const h = new Health({ maxFails: 2, failTimeoutMs: 5000 })
  t.equal(h.recordFailure(S, 'connection refused', 0), null)
  t.equal(h.recordSuccess(S, 10), null, 'a server that was not marked has no up transition')
  t.equal(h.recordFailure(S, 'connection refused', 20), null)
  t.not(h.recordFailure(S, 'connection refused', 30), null)
})

t.test('each transition comes once: down while marked, and up only after a success', async t => {
  const h = new Health({ maxFails: 1, failTimeoutMs: 1000 })
  t.not(h.recordFailure(S, 'connection refused', 0), null)
  t.equal(h.recordFailure(S, 'connection refused', 500), null, 'tried anyway (all down): no second down line')
  t.equal(h.isUp(S, 1400), false, 'that failure renewed the mark')
  t.equal(h.isUp(S, 1500), true, 'expired: on trial')
  t.equal(h.recordFailure(S, 'connect timed out', 1600), null, 'a failed trial marks it again without a line: no up came between')
  t.equal(h.isUp(S, 1700), false)
  t.same(h.recordSuccess(S, 2700), { server: S, state: 'up' }, 'the first success after a mark is the up line')
  t.equal(h.recordSuccess(S, 2800), null)
  t.equal(h.isUp(S, 2800), true)
})

t.test('max-fails 0 turns marking off', async t => {
  const h = new Health({ maxFails: 0, failTimeoutMs: 10_000 })
  for (let i = 0; i < 5; i++) t.equal(h.recordFailure(S, 'connection refused', i), null)
  t.equal(h.isUp(S, 5), true)
  t.equal(h.apply({ server: S, state: 'down', reason: 'connection refused', failures: 1, maxFails: 1 }, 5), null)
  t.equal(h.isUp(S, 5), true)
  t.same(h.snapshot([S], 5), [{ server: S, state: 'up', failures: 0, downUntil: null, reason: null }])
})

t.test('apply: marks learnt from another worker; the result says whether this table changed', async t => {
  const h = new Health({ maxFails: 1, failTimeoutMs: 1000 })
  const down: Transition = { server: S, state: 'down', reason: 'connect timed out', failures: 1, maxFails: 1 }
  t.same(h.apply(down, 100), down)
  t.equal(h.isUp(S, 1099), false, 'for fail-timeout from the time it arrives, on this clock')
  t.equal(h.apply(down, 200), null, 'already down: nothing to log')
  t.equal(h.isUp(S, 1199), false, 'but the mark is renewed')
  t.same(h.apply({ server: S, state: 'up' }, 300), { server: S, state: 'up' })
  t.equal(h.isUp(S, 300), true)
  t.equal(h.apply({ server: S, state: 'up' }, 400), null)
  // A server with failures below max-fails keeps them when a mark arrives.
  const g = new Health({ maxFails: 3, failTimeoutMs: 1000 })
  g.recordFailure(S, 'connection refused', 0)
  t.same(g.apply(down, 10), down)
  t.match(g.snapshot([S], 20), [{ state: 'down', failures: 1, downUntil: 1010, reason: 'connect timed out' }])
  // A mark that arrives while this worker's own mark expired (on trial) is not news either.
  const e = new Health({ maxFails: 1, failTimeoutMs: 1000 })
  e.recordFailure(S, 'connection refused', 0)
  t.equal(e.apply(down, 2000), null)
})

t.test('probeDue (check-interval): marked servers whose last failure is at least the interval old', async t => {
  const h = new Health({ maxFails: 1, failTimeoutMs: 10_000 })
  h.recordFailure('a:1', 'connection refused', 0)
  h.apply({ server: 'b:1', state: 'down', reason: 'connect timed out', failures: 1, maxFails: 1 }, 1000)
  t.same(h.probeDue(1999, 2000), [])
  t.same(h.probeDue(2000, 2000), ['a:1'])
  t.same(h.probeDue(3000, 2000), ['a:1', 'b:1'])
  h.recordFailure('a:1', 'connection refused', 3000)
  t.same(h.probeDue(4000, 2000), ['b:1'], 'a failed probe waits another interval')
  h.recordSuccess('b:1', 4000)
  t.same(h.probeDue(12_999, 2000), ['a:1'], 'a server that came up is not probed')
  t.equal(h.isUp('a:1', 13_000), true)
  t.same(h.probeDue(13_000, 2000), [], 'nor one on trial after its mark expired')
})

t.test('snapshot: every server of the list, with its state and recent failures', async t => {
  const h = new Health({ maxFails: 2, failTimeoutMs: 1000 })
  h.recordFailure('a:1', 'connection refused', 0)
  h.recordFailure('b:1', 'connection refused', 0)
  h.recordFailure('b:1', 'connect timed out', 100)
  t.same(h.snapshot(['a:1', 'b:1', 'c:1'], 500), [
    { server: 'a:1', state: 'up', failures: 1, downUntil: null, reason: 'connection refused' },
    { server: 'b:1', state: 'down', failures: 2, downUntil: 1100, reason: 'connect timed out' },
    { server: 'c:1', state: 'up', failures: 0, downUntil: null, reason: null },
  ])
  t.same(h.snapshot(['a:1', 'b:1'], 1100), [
    { server: 'a:1', state: 'up', failures: 0, downUntil: null, reason: 'connection refused' },
    { server: 'b:1', state: 'up', failures: 0, downUntil: null, reason: 'connect timed out' },
  ])
})

t.test('property: down and up alternate, a down comes only at max-fails recent failures, marks last fail-timeout', async t => {
  const event = fc.record({ ok: fc.boolean(), dt: fc.nat(3000), server: fc.constantFrom('a:1', 'b:1') })
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3000 }), fc.array(event, { maxLength: 60 }), (maxFails, failTimeoutMs, events) => {
      const h = new Health({ maxFails, failTimeoutMs })
      const last = new Map<string, 'up' | 'down'>()
      const fails = new Map<string, number[]>()
      let now = 0
      for (const e of events) {
        now += e.dt
        const tr = e.ok ? h.recordSuccess(e.server, now) : h.recordFailure(e.server, 'connection refused', now)
        const recent = e.ok ? [] : [...(fails.get(e.server) ?? []).filter(t => now - t < failTimeoutMs), now]
        fails.set(e.server, recent)
        if (tr === null) continue
        if (tr.state === (last.get(e.server) ?? 'up')) return false
        last.set(e.server, tr.state)
        if (tr.state === 'down' && (recent.length < maxFails || h.isUp(e.server, now + failTimeoutMs - 1) || !h.isUp(e.server, now + failTimeoutMs))) return false
        if (tr.state === 'down') fails.set(e.server, [])
      }
      return true
    }),
    { seed: 0x4ea1, numRuns: 500 },
  )
  t.pass()
})
