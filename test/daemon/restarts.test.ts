/**
 * lib/daemon/restarts.ts: the wait before a dead worker's replacement, as
 * the supervisor's `worker process ended ..., starting a new one in N s`
 * line shows it.
 */
import t from 'tap'
import { MAX_BACKOFF_STEPS, Restarts, STABLE_MS } from '../../lib/daemon/restarts.js'

t.test('a worker that lived is replaced after the delay; each young death in a row doubles it, up to a cap', async t => {
  const r = new Restarts(2, 100, 5000)
  r.started(0, 0)
  t.equal(r.died(0, 6000), 100, 'lived past stableMs: the plain delay')
  const waits: number[] = []
  let now = 10_000
  for (let k = 0; k < 8; k++) {
    r.started(0, now)
    now += 10
    waits.push(r.died(0, now))
  }
  t.same(waits, [100, 200, 400, 800, 1600, 3200, 3200, 3200], `doubling, capped at 2^${MAX_BACKOFF_STEPS}`)
  r.started(0, now)
  t.equal(r.died(0, now + 5000), 100, 'one that lived starts the back-off again')
  r.started(1, 0)
  t.equal(r.died(1, 1), 100, 'slots are counted apart')
})

t.test('defaults: 1 s, and STABLE_MS to count as lived', async t => {
  const r = new Restarts(1)
  r.started(0, 0)
  t.equal(r.died(0, STABLE_MS - 1), 1000)
  r.started(0, 0)
  t.equal(r.died(0, 1), 2000)
})
