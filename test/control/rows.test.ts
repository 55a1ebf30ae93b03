import t from 'tap'
import { Counters } from '../../lib/stats/counters.js'
import { SERVER_COLUMNS, SERVICE_COLUMNS, STATS_COLUMNS, serverRows, serviceRows, statsRow } from '../../lib/control/rows.js'
import { renderTable } from '../../lib/control/render.js'

function sample(): Counters {
  const c = new Counters()
  c.accepted('b:80')
  c.connected('b:80', 'web2:80', 10_000)
  c.relayEnded('b:80', 'web2:80', 100, 10)
  c.closed('b:80', 1)
  c.accepted('b:80')
  c.connectFailed('b:80', 'web1:80', 40_000)
  c.connected('b:80', 'web2:80', 41_000)
  c.accepted('a:25')
  c.denied('a:25', 'acp')
  c.denied('a:25', 'max-connections')
  c.closed('a:25', 0)
  return c
}

t.test('show services: one row per service, sorted, with its servers summed', async t => {
  t.same(serviceRows(sample().snapshot()), [
    { service: 'a:25', active: 0, connections: 1, denied: 2, received: 0, sent: 0, connect_failures: 0 },
    { service: 'b:80', active: 1, connections: 2, denied: 0, received: 100, sent: 10, connect_failures: 1 },
  ])
  t.same(Object.keys(serviceRows(sample().snapshot())[0]!), [...SERVICE_COLUMNS])
})

t.test('show servers: state and seconds since the last attempt; disabled wins; unknown before any', async t => {
  const snap = sample().snapshot()
  snap.services['b:80']!.servers['web3:80'] = { connections: 0, active: 0, received: 0, sent: 0, connectFailures: 0, up: null }
  const rows = serverRows(snap, new Set(['web2:80']), 50_000)
  t.same(
    rows.map(r => [r['server'], r['state'], r['since'], r['active'], r['connect_failures']]),
    [
      ['web1:80', 'down', 10, 0, 1],
      ['web2:80', 'disabled', 9, 1, 0],
      ['web3:80', 'unknown', null, 0, 0],
    ],
  )
  t.equal(serverRows(snap, new Set(), 0)[1]!['state'], 'up')
  t.equal(serverRows(snap, new Set(), 0)[1]!['since'], 0, 'a clock that went back shows 0, not a negative age')
  t.same(Object.keys(rows[0]!), [...SERVER_COLUMNS])
})

t.test('show stats: totals since start', async t => {
  const row = statsRow(sample().snapshot())
  t.same(row, { services: 2, servers: 2, active: 1, connections: 3, denied: 2, received: 100, sent: 10, connect_failures: 1 })
  t.same(Object.keys(row), [...STATS_COLUMNS])
  t.same(statsRow({ services: {} }), { services: 0, servers: 0, active: 0, connections: 0, denied: 0, received: 0, sent: 0, connect_failures: 0 })
})

t.test('the rows render as a table', async t => {
  t.equal(
    renderTable(STATS_COLUMNS, [statsRow(sample().snapshot())]),
    'services  servers  active  connections  denied  received  sent  connect_failures\n' +
      '       2        2       1            3       2       100    10                 1\n\n',
  )
})
