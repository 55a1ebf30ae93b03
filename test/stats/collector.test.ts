// lib/stats/collector.ts: the single process's statistics, and the supervisor's gathered from its workers.
import t from 'tap'
import { Counters } from '../../lib/stats/counters.js'
import { localStats, SupervisedStats } from '../../lib/stats/collector.js'
import type { AskMessage } from '../../lib/stats/ipc.js'
import type { Served } from '../../lib/stats/reporter.js'
import type { SessionRow } from '../../lib/control/render.js'

const row = (id: number): SessionRow => ({ id, service: 's', client: 'c', client_port: 1, server: null, received: 0, sent: 0, age: 0, state: 'acp' })
const figures = (cpu: number) => ({ residentMemoryBytes: 1000, cpuSecondsTotal: cpu, openFds: 2 })

t.test('one process: its forwarder answers', async t => {
  const counters = new Counters()
  counters.accepted('127.0.0.1:80')
  const served: Served = {
    counters,
    sessionRows: () => [row(3), row(1)],
    killSession: id => id === 1,
    disableServer: s => s === 'a:1',
    enableServer: () => false,
  }
  const stats = localStats(served)
  t.match(stats.backend.total(), { services: { '127.0.0.1:80': { connections: 1 } } })
  t.same((await stats.backend.sessions()).map(r => r.id), [1, 3], 'sorted by id')
  t.equal(await stats.backend.kill(1), true)
  t.equal(await stats.backend.disable('a:1'), true)
  t.equal(await stats.backend.enable('a:1'), false)
  t.match(stats.metrics(), /^tcpproxy_connections_total\{service="127\.0\.0\.1:80"\} 1$/m)
  t.match(stats.metrics(), /^process_start_time_seconds \d+/m)
})

t.test('supervisor: snapshots add up; a retired worker\'s counters and CPU time stay', async t => {
  const stats = new SupervisedStats(() => {})
  const snap = (n: number) => {
    const c = new Counters()
    for (let i = 0; i < n; i++) c.accepted('s')
    return c.snapshot()
  }
  stats.onMessage(0, { type: 'stats', snapshot: snap(2), process: figures(100) } as never)
  stats.onMessage(1, { type: 'stats', snapshot: snap(3), process: figures(200) } as never)
  stats.onMessage(1, { type: 'adopted', key: 'x' } as never)
  t.match(stats.backend.total(), { services: { s: { connections: 5 } } })
  stats.retire(1)
  stats.retire(7)
  t.match(stats.backend.total(), { services: { s: { connections: 5 } } }, 'kept after the worker ended')
  const cpu = Number(/^process_cpu_seconds_total (\S+)$/m.exec(stats.metrics())?.[1])
  t.ok(cpu >= 300, `retired and live CPU time counted (${cpu})`)
  t.match(stats.metrics(), /^process_open_fds \d+$/m)
})

t.test('supervisor: questions go to every worker; answers gathered; a silent or dead worker does not hold the answer', async t => {
  const asked: AskMessage[] = []
  let reply: (m: AskMessage) => void = () => {}
  const stats = new SupervisedStats(m => {
    asked.push(m)
    reply(m)
  }, 200)
  t.same(await stats.backend.sessions(), [], 'no worker reported yet: nobody to ask')
  for (const slot of [0, 1]) stats.onMessage(slot, { type: 'stats', snapshot: { services: {} }, process: figures(0) } as never)
  reply = m => {
    stats.onMessage(1, { type: 'answer', id: m.id, rows: [row(4)], ok: false } as never)
    stats.onMessage(0, { type: 'answer', id: m.id, rows: [row(2)], ok: m.what !== 'enable' } as never)
    stats.onMessage(0, { type: 'answer', id: 999, rows: [], ok: true } as never)
  }
  t.same((await stats.backend.sessions()).map(r => r.id), [2, 4])
  t.equal(await stats.backend.kill(2), true)
  t.equal(await stats.backend.disable('a:1'), true)
  t.equal(await stats.backend.enable('a:1'), false)
  t.match(asked[1], { type: 'ask', what: 'kill', session: 2 })
  reply = m => stats.onMessage(0, { type: 'answer', id: m.id, rows: [row(2)], ok: true } as never)
  const started = Date.now()
  t.same((await stats.backend.sessions()).map(r => r.id), [2], 'slot 1 is silent: the answer comes after the wait')
  t.ok(Date.now() - started >= 150)
  reply = () => setTimeout(() => stats.retire(1), 10)
  const quick = Date.now()
  stats.onMessage(1, { type: 'stats', snapshot: { services: {} }, process: figures(0) } as never)
  reply = m => {
    stats.onMessage(0, { type: 'answer', id: m.id, rows: [], ok: true } as never)
    setTimeout(() => stats.retire(1), 10)
  }
  t.equal(await stats.backend.kill(9), true)
  t.ok(Date.now() - quick < 150, 'a worker that ends is not waited for')
})

t.test('supervisor: a worker that starts later is told the servers disabled by command, not those enabled again', async t => {
  const asked: AskMessage[] = []
  let ok = true
  const stats = new SupervisedStats(m => {
    asked.push(m)
    stats.onMessage(0, { type: 'answer', id: m.id, rows: [], ok } as never)
  }, 200)
  stats.onMessage(0, { type: 'stats', snapshot: { services: {} }, process: figures(0) } as never)
  t.equal(await stats.backend.disable('a:1'), true)
  t.equal(await stats.backend.disable('b:2'), true)
  ok = false
  t.equal(await stats.backend.disable('c:3'), false, 'no worker has c:3')
  ok = true
  t.equal(await stats.backend.enable('b:2'), true)
  t.same(stats.disabled, ['a:1'])
})

t.test('supervisor: a worker that has not reported yet is asked too', async t => {
  const stats = new SupervisedStats(m => stats.onMessage(3, { type: 'answer', id: m.id, rows: [row(7)], ok: true } as never), 1000)
  t.same(await stats.backend.sessions(), [], 'no worker: nobody to ask')
  stats.started(3)
  const asked = Date.now()
  t.same((await stats.backend.sessions()).map(r => r.id), [7], 'the new worker answers before its first report')
  t.ok(Date.now() - asked < 500, 'and is not waited for beyond its answer')
  stats.retire(3)
  t.same(await stats.backend.sessions(), [])
})
