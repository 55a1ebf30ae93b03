/** lib/server/program-slots.ts: the bound on programs at once, and a worker's share of a limit. */
import t from 'tap'
import { DEFAULT_SETTINGS } from '../../lib/config/config.js'
import { hydrateService, serviceData, type ResolvedService } from '../../lib/config/resolve.js'
import type { LogEntry } from '../../lib/log/logger.js'
import { DEFAULT_MAX_PROGRAMS } from '../../lib/session/context.js'
import { limitText, ProgramLimit, workerShare } from '../../lib/server/program-slots.js'

t.test('a worker takes ceil(limit / workers); no limit stays none', async t => {
  t.equal(workerShare(10, 1), 10)
  t.equal(workerShare(10, 3), 4)
  t.equal(workerShare(1, 2), 1)
  t.equal(workerShare(null, 2), null)
  t.equal(limitText('10 in all', 10, 1), '10 in all', 'one process: the limit as configured')
  t.equal(limitText('10 in all', 4, 3), '10 in all, 4 in this worker')
})

function limit(max: number | null | undefined, workers = 1): { slots: ProgramLimit; lines: LogEntry[]; denied: string[] } {
  const lines: LogEntry[] = []
  const denied: string[] = []
  return { slots: new ProgramLimit(max, workers, { debug: false, log: e => void lines.push(e) }, key => void denied.push(key)), lines, denied }
}

const SERVICE: ResolvedService = hydrateService(serviceData({ ...DEFAULT_SETTINGS, port: 25, iface: null, ifaceText: '*', addresses: null, servers: null, exec: ['/bin/cat'] } as never))

t.test('max-programs: beyond the share a program is refused, counted, and logged once per episode', async t => {
  const { slots, lines, denied } = limit(3, 2)
  t.ok(slots.take('10.0.0.1', SERVICE))
  t.ok(slots.take('10.0.0.1', SERVICE))
  t.notOk(slots.take('10.0.0.2', SERVICE), 'ceil(3 / 2) = 2 in this worker')
  t.notOk(slots.take('10.0.0.3', SERVICE))
  t.same(denied, ['*:25', '*:25'])
  t.same(
    lines.map(l => l.text),
    ['too many programs running (max-programs 3, 2 in this worker): connection refused, client= 10.0.0.2'],
    'the second refusal of the episode is not logged',
  )
  slots.release()
  t.ok(slots.take('10.0.0.4', SERVICE), 'a slot given back is taken again')
})

t.test('the default bound applies when none is set; null is no bound', async t => {
  const dflt = limit(undefined)
  for (let i = 0; i < DEFAULT_MAX_PROGRAMS; i++) dflt.slots.take('10.0.0.1', SERVICE)
  t.notOk(dflt.slots.take('10.0.0.1', SERVICE), `the default is ${DEFAULT_MAX_PROGRAMS}`)
  t.match(dflt.lines[0]?.text, `(max-programs ${DEFAULT_MAX_PROGRAMS})`)
  const none = limit(null)
  let taken = 0
  for (let i = 0; i < DEFAULT_MAX_PROGRAMS + 10; i++) if (none.slots.take('10.0.0.1', SERVICE)) taken++
  t.equal(taken, DEFAULT_MAX_PROGRAMS + 10, 'no limit')
  t.same(none.lines, [])
})
