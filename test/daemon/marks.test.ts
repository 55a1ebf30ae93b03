/** lib/daemon/marks.ts: the supervisor logs each server mark once and shares it with every worker. */
import t from 'tap'
import { DEFAULT_SETTINGS } from '../../lib/config/config.js'
import { hydrateService, type ResolvedService, type ServiceData } from '../../lib/config/resolve.js'
import type { LogEntry } from '../../lib/log/logger.js'
import { SharedMarks } from '../../lib/daemon/marks.js'
import type { ToWorker } from '../../lib/daemon/worker.js'
import type { Transition } from '../../lib/server/health.js'

function service(extra: Partial<ServiceData> = {}): ResolvedService {
  return hydrateService({ ...DEFAULT_SETTINGS, port: 25, iface: null, ifaceText: '*', addresses: null, servers: [{ host: '10.0.0.5', port: 25 }], source: { file: 'test', line: 1 }, ...extra })
}

const DOWN: Transition = { server: '10.0.0.5:25', state: 'down', reason: 'connect timed out', failures: 1, maxFails: 1 }
const UP: Transition = { server: '10.0.0.5:25', state: 'up' }

t.test('two workers seeing one failure: one line, one broadcast; then up once', async t => {
  const logged: LogEntry[] = []
  const sent: ToWorker[] = []
  const marks = new SharedMarks({ debug: false, log: e => void logged.push(e) }, m => void sent.push(m))
  marks.setServices([service()])
  marks.onMessage({ type: 'ready' })
  marks.onMessage({ type: 'server-mark', service: '*:25', transition: DOWN })
  marks.onMessage({ type: 'server-mark', service: '*:25', transition: DOWN })
  marks.onMessage({ type: 'server-mark', service: '*:99', transition: DOWN })
  t.same(logged.map(e => `${e.tag}: ${e.text}`), ['-INFO: server 10.0.0.5:25 down (connect timed out, 1 of 1 failures)'])
  t.same(sent, [{ type: 'server-mark', service: '*:25', transition: DOWN }])
  marks.setServices([service({ maxPerClient: 3 })])
  marks.onMessage({ type: 'server-mark', service: '*:25', transition: UP })
  marks.onMessage({ type: 'server-mark', service: '*:25', transition: UP })
  t.same(logged.map(e => e.text).at(-1), 'server 10.0.0.5:25 up', 'the mark outlived a reload that kept the health settings')
  t.equal(sent.length, 2)
  marks.onMessage({ type: 'server-mark', service: '*:25', transition: DOWN })
  marks.setServices([service({ failTimeout: 30 })])
  marks.onMessage({ type: 'server-mark', service: '*:25', transition: UP })
  t.equal(sent.length, 3, 'new health settings start afresh: an up is no news')
})

t.test('a worker that starts later is told the marks still in force, not those over or lifted', async t => {
  const sent: ToWorker[] = []
  const marks = new SharedMarks({ debug: false, log: () => {} }, m => void sent.push(m))
  marks.setServices([service({ failTimeout: 0.2, servers: [{ host: '10.0.0.5', port: 25 }, { host: '10.0.0.6', port: 25 }] })])
  const other: Transition = { ...DOWN, server: '10.0.0.6:25' }
  marks.onMessage({ type: 'server-mark', service: '*:25', transition: DOWN })
  marks.onMessage({ type: 'server-mark', service: '*:25', transition: other })
  marks.onMessage({ type: 'server-mark', service: '*:25', transition: { server: '10.0.0.6:25', state: 'up' } })
  t.same(marks.inForce(), [{ service: '*:25', transition: DOWN }], 'the one down now')
  await new Promise(r => setTimeout(r, 300))
  t.same(marks.inForce(), [], 'a mark past its fail-timeout is not in force')
})
