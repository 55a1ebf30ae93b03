// lib/stats/live.ts: a session's counting and its row of `show sessions`.
import t from 'tap'
import { Counters } from '../../lib/stats/counters.js'
import { LiveSession } from '../../lib/stats/live.js'
import type { RelayCounts } from '../../lib/relay/event-loop.js'

const start = { id: 7, service: '127.0.0.1:80', client: '10.0.0.1', clientPort: 5000, startedMs: 1000, state: 'acp' as const }

t.test('a relayed session: counted, and its row follows its state and the relay\'s counts', async t => {
  const counters = new Counters()
  counters.accepted(start.service)
  const live = new LiveSession(counters, start)
  t.same(live.row(3500), { id: 7, service: '127.0.0.1:80', client: '10.0.0.1', client_port: 5000, server: null, received: 0, sent: 0, age: 2, state: 'acp' })
  live.connectFailed('10.0.0.2:25')
  let counts: RelayCounts = { received: 5, sent: 3, halfClosed: false }
  live.relaying('10.0.0.3:25', { abort: () => {}, counts: () => counts }, '192.0.2.1', 6000)
  t.match(live.row(1000), { client: '192.0.2.1', client_port: 6000, server: '10.0.0.3:25', received: 5, sent: 3, age: 0, state: 'relaying' })
  counts = { received: 6, sent: 4, halfClosed: true }
  t.match(live.row(1000), { received: 6, state: 'half-closed' })
  const result = { received: 6, sent: 4, closedBy: 'server' as const, error: null }
  t.equal(live.ended(result), result, 'not killed: the relay\'s own end')
  const svc = counters.snapshot().services[start.service]
  t.match(svc?.servers['10.0.0.2:25'], { connectFailures: 1, up: { up: false } })
  t.match(svc?.servers['10.0.0.3:25'], { connections: 1, active: 0, received: 6, sent: 4, up: { up: true } })
})

t.test('denials are counted by reason; a handler changes the state; kill() aborts and names the end killed', async t => {
  const counters = new Counters()
  const live = new LiveSession(counters, start)
  live.denied('acp')
  live.denied('acp')
  t.same(counters.snapshot().services[start.service]?.denied, { acp: 2 })
  live.handler('192.0.2.9', 1)
  t.match(live.row(1000), { state: 'handler', client: '192.0.2.9', client_port: 1 })
  live.kill()
  let aborted = 0
  live.abort = () => void aborted++
  live.kill()
  t.equal(aborted, 1)
  live.relaying('10.0.0.3:25', { abort: () => {}, counts: () => ({ received: 0, sent: 0, halfClosed: false }) }, '192.0.2.9', 1)
  t.equal(live.ended({ received: 0, sent: 0, closedBy: 'shutdown', error: null }).closedBy, 'killed')
})
