/**
 * The supervisor in this process, with real worker processes
 * (dist/worker-main.js): what a worker's failure does to it. The e2e tests
 * drive it through bin/tcpproxy; here it is given what main.ts would refuse,
 * to see what happens when a worker fails on a configuration anyway.
 */
import t from 'tap'
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from '../../lib/cli/options.js'
import type { Logger } from '../../lib/log/logger.js'
import { formatText } from '../../lib/log/record.js'
import { loadNative } from '../../lib/native/addon.js'
import { resolveServices, type ResolvedService } from '../../lib/config/resolve.js'
import { loadServices } from '../../lib/config/port-names.js'
import { buildConfig } from '../../lib/cli/settings.js'
import { Supervisor, type SupervisorOptions } from '../../lib/daemon/supervisor.js'
import { SupervisedStats } from '../../lib/stats/collector.js'
import { connect } from 'node:net'
import { backend, children, exchange, freePort } from '../fixtures/harness.js'

const WORKER = fileURLToPath(new URL('../../dist/worker-main.js', import.meta.url))
const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

/** The services of configuration text `text` (written to `dir`). */
async function services(dir: string, text: string): Promise<ResolvedService[]> {
  const file = join(dir, `c${Math.random()}.conf`)
  writeFileSync(file, text)
  const parsed = parseArgs(['-c', file], 'test')
  if (parsed.kind !== 'run') throw new Error('bad arguments')
  return resolveServices(buildConfig(parsed.options, { readFile: p => readFileSync(p, 'utf8'), lookup: loadServices(), inetdPort: null }).services)
}

/** Our worker processes now. */
const workers = (): number[] => children(process.pid).filter(pid => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('worker-main.js')
  } catch {
    return false
  }
})

/** The reply of the proxy on `port`, retried (bounded) while it is not served. */
async function reply(port: number): Promise<string> {
  let got = ''
  for (let i = 0; i < 40 && got === ''; i++) {
    got = (await exchange(port, null)).data.toString()
    if (got === '') await sleep(250)
  }
  return got
}

/** Whether process `pid` has the socket listening on loopback `port` (/proc/net/tcp and /proc/PID/fd). */
function holdsListener(pid: number, port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  const inodes = readFileSync('/proc/net/tcp', 'utf8').split('\n').map(l => l.trim().split(/\s+/))
    .filter(f => f[1] === `0100007F:${hex}` && f[3] === '0A').map(f => `socket:[${f[9]}]`)
  try {
    return readdirSync(`/proc/${pid}/fd`).some(fd => inodes.includes(readlinkSync(`/proc/${pid}/fd/${fd}`)))
  } catch {
    return false
  }
}

/** Wait (bounded) until `cond` holds. */
async function until(cond: () => boolean, ms = 30_000): Promise<boolean> {
  // What was seen holds: asking again after the loop could meet a process
  // list in passing (a child between fork and exec) and report false.
  for (let i = 0; i < ms / 25; i++) {
    if (cond()) return true
    await sleep(25)
  }
  return cond()
}

function supervisor(
  count: number,
  hooks: Pick<SupervisorOptions, 'onMessage' | 'onWorkerExit' | 'onWorkerStart'> = {},
  start: SupervisorOptions['init']['start'] = { disabled: [], marks: [] },
): { sup: Supervisor; lines: string[] } {
  const lines: string[] = []
  const logger: Logger = { debug: false, log: e => lines.push(formatText(e)) }
  const sup = new Supervisor({
    init: {
      identity: null,
      log: { target: 'stderr', ident: 'tcpproxy', debug: false, format: 'text', syslogSocket: '/dev/log', facility: 2 },
      programs: { baseEnv: {}, envPrefix: 'PROXY_', pid: process.pid, proxyName: 'tcpproxy', logName: 'tcpproxy', resolveNames: false, runAs: {} },
      maxConnections: null,
      netAdmin: false,
      start,
    },
    logger,
    workerPath: WORKER,
    workers: count,
    restartDelayMs: 100,
    stableMs: 5000,
    ...hooks,
  })
  return { sup, lines }
}

t.test('a worker that fails on a reloaded configuration: back to the previous one, no restart loop', async t => {
  const a = await backend(s => s.end('A\n'))
  t.teardown(() => a.close())
  const dir = t.testdir({})
  const port = await freePort()
  const good = await services(dir, `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${a.port}\n`)
  // main.ts refuses this (test/e2e/supervisor.test.ts); the worker's selection throws on it.
  const bad = await services(dir, `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${a.port}\nport ${port}\ninterface localhost\nserver 127.0.0.1:${a.port}\n`)
  const { sup, lines } = supervisor(1)
  await sup.start(good)
  // Gracefully: a worker killed writes no coverage data.
  t.teardown(() => sup.stop(2000))
  t.equal((await exchange(port, null)).data.toString(), 'A\n')
  await sup.reload(bad)
  t.ok(await until(() => lines.some(l => /back to the previous configuration/.test(l))), lines.join('\n'))
  t.match(lines.find(l => /worker process ended/.test(l)), /^-ERR: worker process ended \(1\), starting a new one in 0\.1 s$/)
  t.ok(await until(() => workers().length === 1))
  t.equal(await reply(port), 'A\n', 'the previous configuration serves again')
  t.equal(lines.filter(l => /worker process ended/.test(l)).length, 1, 'one restart, no loop')
  t.notOk(lines.some(l => /cannot start/.test(l)))
})

t.test('a worker that dies young again and again is replaced after ever longer waits', async t => {
  const a = await backend(s => s.end('A\n'))
  t.teardown(() => a.close())
  const dir = t.testdir({})
  const port = await freePort()
  const { sup, lines } = supervisor(1)
  await sup.start(await services(dir, `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${a.port}\n`))
  // Gracefully: a worker killed writes no coverage data.
  t.teardown(() => sup.stop(2000))
  for (let round = 1; round <= 3; round++) {
    t.ok(await until(() => workers().length === 1))
    const [w] = workers() as [number]
    process.kill(w, 'SIGKILL')
    t.ok(await until(() => lines.filter(l => /worker process ended/.test(l)).length === round && !workers().includes(w)))
  }
  // (A worker killed before it was ready counts as a start that failed: the same back-off.)
  t.same(
    lines.filter(l => /worker process ended/.test(l)).map(l => l.replace('(start failed)', '(SIGKILL)')),
    ['0.1', '0.2', '0.4'].map(s => `-ERR: worker process ended (SIGKILL), starting a new one in ${s} s`),
  )
  t.ok(await until(() => workers().length === 1))
  t.equal(await reply(port), 'A\n', 'served again')
  // One that lived past stableMs starts the back-off again.
  await sleep(5500)
  const [w] = workers() as [number]
  process.kill(w, 'SIGKILL')
  t.ok(await until(() => lines.filter(l => /worker process ended/.test(l)).length === 4))
  t.equal(lines.filter(l => /worker process ended/.test(l))[3], '-ERR: worker process ended (SIGKILL), starting a new one in 0.1 s')
})

for (const count of [2, 1]) t.test(`without the addon: a new worker ${count === 2 ? 'borrows the listeners from a live one' : 'binds the listeners anew'}`, async t => {
  loadNative('/nonexistent/tcpproxy_native.node')
  t.teardown(() => void loadNative())
  const a = await backend(s => s.end('A\n'))
  t.teardown(() => a.close())
  const dir = t.testdir({})
  const port = await freePort()
  const { sup, lines } = supervisor(count)
  await sup.start(await services(dir, `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${a.port}\n`))
  // Gracefully: a worker killed writes no coverage data.
  t.teardown(() => sup.stop(2000))
  const [first] = workers() as [number]
  process.kill(first, 'SIGKILL')
  t.ok(await until(() => workers().length === count && !workers().includes(first)), 'replaced')
  t.ok(await until(() => workers().every(w => holdsListener(w, port))), 'the new worker was handed the listener')
  t.equal(await reply(port), 'A\n')
  t.same(lines, ['-ERR: worker process ended (SIGKILL), starting a new one in 0.1 s'])
})

t.test('the hooks for features that need every worker: broadcast, what workers say, a worker gone', async t => {
  const a = await backend(s => s.end('A\n'))
  t.teardown(() => a.close())
  const dir = t.testdir({})
  const port = await freePort()
  const heard: string[] = []
  const gone: number[] = []
  // Statistics (lib/stats/reporter.ts) are left out here: they come when they come.
  const started: number[] = []
  const { sup } = supervisor(2, {
    onMessage: (slot, m) => void (m.type !== 'stats' && heard.push(`${slot} ${m.type}`)),
    onWorkerExit: slot => gone.push(slot),
    onWorkerStart: slot => started.push(slot),
  })
  await sup.start(await services(dir, `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${a.port}\n`))
  // Gracefully: a worker killed writes no coverage data.
  t.teardown(() => sup.stop(2000))
  t.same(heard, [], 'the start-up protocol is the supervisor\'s own')
  sup.broadcast({ type: 'unlisten', key: `127.0.0.1:${port}` })
  t.ok(await until(() => heard.length === 2), heard.join(', '))
  t.same(heard.sort(), ['0 unlistened', '1 unlistened'], 'each worker\'s answer, with its slot')
  t.ok(await until(() => workers().length === 2))
  process.kill(workers()[0] as number, 'SIGKILL')
  t.ok(await until(() => gone.length === 1))
  t.ok([0, 1].includes(gone[0] as number), 'the slot of the worker that died')
  t.same(started.slice(0, 2).sort(), [0, 1], 'each slot started')
  t.ok(await until(() => started.length === 3))
  t.equal(started[2], gone[0], 'and the replacement in the slot of the one that died')
})

t.test('statistics across workers: counters shipped, sessions gathered, a session killed, a server disabled', async t => {
  const a = await backend(s => s.on('error', () => {}).resume())
  t.teardown(() => a.close())
  const dir = t.testdir({})
  const port = await freePort()
  let sup!: Supervisor
  const stats = new SupervisedStats(m => sup.broadcast(m))
  ;({ sup } = supervisor(2, { onMessage: (slot, m) => stats.onMessage(slot, m), onWorkerExit: slot => stats.retire(slot) }))
  await sup.start(await services(dir, `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${a.port}\n`))
  t.teardown(() => sup.stop(2000))
  const clients = [0, 1, 2].map(() => connect({ port, host: '127.0.0.1' }).on('error', () => {}))
  t.teardown(() => clients.forEach(c => c.destroy()))
  let rows = await stats.backend.sessions()
  for (let i = 0; i < 100 && rows.filter(r => r.state === 'relaying').length < 3; i++) rows = (await sleep(50), await stats.backend.sessions())
  t.equal(rows.length, 3, 'every worker\'s sessions')
  t.same(rows.map(r => r.id), [...rows.map(r => r.id)].sort((x, y) => x - y), 'sorted by id')
  t.equal(await stats.backend.kill(rows[0]?.id as number), true, 'the owning worker killed it')
  t.equal(await stats.backend.kill(999), false)
  t.ok(await until(() => clients[0]?.destroyed === true || clients.some(c => c.destroyed)), 'its client was closed')
  t.equal(await stats.backend.disable(`127.0.0.1:${a.port}`), true)
  t.equal(await stats.backend.enable(`127.0.0.1:${a.port}`), true)
  t.equal(await stats.backend.enable(`127.0.0.1:${a.port}`), false)
  t.ok(await until(() => stats.backend.total().services[`127.0.0.1:${port}`]?.connections === 3, 5000), 'the counters arrived')
})

t.test('a worker starts with the servers disabled by command and the marks in force (a replacement knows them before it accepts)', async t => {
  const dead = await freePort()
  const named = await Promise.all(['X', 'A'].map(n => backend(s => s.on('error', () => {}).end(n))))
  t.teardown(() => named.forEach(b => b.close()))
  const [x, a] = named as [Awaited<ReturnType<typeof backend>>, Awaited<ReturnType<typeof backend>>]
  const dir = t.testdir({})
  const port = await freePort()
  const said: string[] = []
  const down = { server: `127.0.0.1:${dead}`, state: 'down', reason: 'connection refused', failures: 1, maxFails: 1 } as const
  const { sup } = supervisor(1, { onMessage: (_slot, m) => void said.push(m.type) }, { disabled: [`127.0.0.1:${x.port}`], marks: [{ service: `127.0.0.1:${port}`, transition: down }] })
  await sup.start(await services(dir, `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${dead}, 127.0.0.1:${x.port}, 127.0.0.1:${a.port}\n`))
  t.teardown(() => sup.stop(2000))
  // Without the mark the dead server is tried first (and marked, a message); without the disable, X answers.
  t.equal((await exchange(port, null)).data.toString(), 'A', 'neither the marked nor the disabled server was tried')
  await sleep(200)
  t.notOk(said.includes('server-mark'), 'no connect failed, so no mark was made')
})
