// lib/stats/reporter.ts: what a worker ships and how it answers.
import t from 'tap'
import { Counters } from '../../lib/stats/counters.js'
import { answer, Reporter, type Served } from '../../lib/stats/reporter.js'
import type { StatsMessage } from '../../lib/stats/ipc.js'

function served(): Served & { calls: string[] } {
  const calls: string[] = []
  return {
    calls,
    counters: new Counters(),
    sessionRows: now => [{ id: 1, service: 's', client: 'c', client_port: 1, server: null, received: 0, sent: 0, age: now, state: 'acp' }],
    killSession: id => (calls.push(`kill ${id}`), id === 1),
    disableServer: s => (calls.push(`disable ${s}`), true),
    enableServer: s => (calls.push(`enable ${s}`), false),
  }
}

t.test('answers: rows, or whether it was done', async t => {
  const f = served()
  t.match(answer(f, { what: 'sessions' }, 5), { rows: [{ id: 1, age: 5 }], ok: true })
  t.same(answer(f, { what: 'kill', session: 1 }, 0), { rows: [], ok: true })
  t.same(answer(f, { what: 'disable', server: 'a:1' }, 0), { rows: [], ok: true })
  t.same(answer(f, { what: 'enable', server: 'a:1' }, 0), { rows: [], ok: false })
  t.same(f.calls, ['kill 1', 'disable a:1', 'enable a:1'])
})

t.test('ships at once, then only when changed or when the heartbeat is due, and once more at stop', async t => {
  const f = served()
  const sent: StatsMessage[] = []
  const figures = { residentMemoryBytes: 1, cpuSecondsTotal: 0, openFds: 1 }
  const r = new Reporter(f, m => void sent.push(m), () => figures, 20, 300)
  t.equal(sent.length, 1, 'the first at once')
  await new Promise(res => setTimeout(res, 100))
  t.equal(sent.length, 1, 'nothing changed: nothing sent')
  f.counters.accepted('s')
  for (let i = 0; i < 50 && sent.length < 2; i++) await new Promise(res => setTimeout(res, 20))
  t.equal(sent.length, 2, 'a change is shipped')
  t.match(sent[1], { type: 'stats', snapshot: { services: { s: { connections: 1 } } }, process: figures })
  for (let i = 0; i < 50 && sent.length < 3; i++) await new Promise(res => setTimeout(res, 20))
  t.equal(sent.length, 3, 'the heartbeat')
  r.stop()
  t.equal(sent.length, 4, 'the last one at stop')
  await new Promise(res => setTimeout(res, 60))
  t.equal(sent.length, 4, 'and no more')
})

t.test('the default figures are this process\'s', async t => {
  const sent: StatsMessage[] = []
  new Reporter(served(), m => void sent.push(m)).stop()
  t.ok((sent[0]?.process.residentMemoryBytes ?? 0) > 0)
})
