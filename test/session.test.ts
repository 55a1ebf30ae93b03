/**
 * lib/session.ts in process, for what the end-to-end tests cannot time:
 * a session aborted (shutdown) while it looks up the client's name, and
 * while its handler runs; the -w dump at the moment the session ends.
 * Real sockets and real programs.
 */
import t from 'tap'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEFAULT_SETTINGS } from '../lib/config.js'
import type { LogEntry, Logger } from '../lib/log.js'
import type { ResolvedService } from '../lib/resolve.js'
import { Session, type ProgramContext } from '../lib/session.js'
import { collect, socketPair } from './fixtures/pair.js'

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

function memoryLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = []
  return { debug: true, entries, log: e => void entries.push(e) }
}

const PROGRAMS: ProgramContext = {
  baseEnv: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
  envPrefix: 'PROXY_',
  pid: process.pid,
  proxyName: 'tcpproxy',
  logName: 'tcpproxy',
  resolveNames: false,
  runAs: {},
}

function service(extra: Partial<ResolvedService>): ResolvedService {
  return {
    ...DEFAULT_SETTINGS,
    port: 8025,
    iface: '127.0.0.1',
    ifaceText: '127.0.0.1',
    addresses: ['127.0.0.1'],
    trustsProxy: null,
    source: { file: 'test', line: 1 },
    ...extra,
  }
}

/** A session on the inner end of a fresh socket pair; `outer` plays the client. */
async function session(svc: ResolvedService, programs: ProgramContext = PROGRAMS) {
  const [outer, inner] = await socketPair()
  const log = memoryLogger()
  const s = new Session({
    id: 1,
    client: inner,
    service: svc,
    local: '127.0.0.1',
    localPort: 8025,
    clientIp: '127.0.0.1',
    clientPort: outer.localPort as number,
    log,
    programs,
    onResourceError: () => {},
  })
  return { s, outer, inner, log }
}

/** `p`, or a rejection after `ms`. */
function within<T>(p: Promise<T>, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not done within ${ms} ms`)), ms)))
  return Promise.race([p, limit]).finally(() => clearTimeout(timer))
}

t.test('a session aborted while it looks up the client name runs no program and connects nowhere', async t => {
  let upstreamConnections = 0
  const up = createServer(s => {
    upstreamConnections++
    s.destroy()
  })
  up.listen(0, '127.0.0.1')
  await once(up, 'listening')
  t.teardown(() => up.close())
  const asked: string[] = []
  let timer: NodeJS.Timeout | undefined
  t.teardown(() => clearTimeout(timer))
  const slowReverse = (ip: string): Promise<string> => {
    asked.push(ip)
    return new Promise(resolve => (timer = setTimeout(() => resolve('client.example'), 300)))
  }
  const svc = service({
    servers: [{ host: '127.0.0.1', port: (up.address() as { port: number }).port }],
    // It would write a banner to the client and log a denial.
    acp: [fixture('acp-deny.sh')],
  })
  const { s, outer, inner, log } = await session(svc, { ...PROGRAMS, resolveNames: true, reverse: slowReverse })
  const received = collect(outer)
  const done = s.run()
  await new Promise(r => setTimeout(r, 50))
  t.same(asked, ['127.0.0.1'], 'the lookup is under way')
  s.abort()
  await within(done)
  t.ok(inner.destroyed)
  t.equal((await within(received)).toString(), '', 'no ACP banner reached the client')
  t.equal(upstreamConnections, 0)
  t.same(log.entries, [], 'no access line, no connect line')
})

t.test('a session aborted while its handler runs stops the handler (SIGTERM) and logs its end', async t => {
  const { s, outer, log } = await session(service({ exec: [fixture('acp-slow.sh')] }))
  const received = collect(outer)
  const done = s.run()
  while (!log.entries.some(e => e.event === 'starting')) await within(new Promise(r => setTimeout(r, 10)))
  await new Promise(r => setTimeout(r, 100))
  s.abort()
  await within(done)
  await within(received)
  t.match(log.entries.find(e => e.event === 'handler-end'), {
    tag: '-ERR',
    id: 1,
    text: /^handler end: client= 127\.0\.0\.1, rc= SIGTERM, duration= \d+\.\d{3}$/,
  })
})

t.test('the -w dump is complete when the disconnect line is logged', async t => {
  const up = createServer({ allowHalfOpen: true }, s => {
    s.resume()
    s.on('end', () => s.end('220 bye\r\n'))
  })
  up.listen(0, '127.0.0.1')
  await once(up, 'listening')
  t.teardown(() => up.close())
  const base = join(t.testdir({}), 'dump')
  const svc = service({ servers: [{ host: '127.0.0.1', port: (up.address() as { port: number }).port }], writefile: base })
  const { s, outer, log } = await session(svc)
  let atDisconnect = ''
  const inner = log.log
  log.log = e => {
    if (e.event === 'disconnect') atDisconnect = readFileSync(`${base}.1.log`, 'utf8')
    inner(e)
  }
  const received = collect(outer)
  outer.end('HELO\r\n')
  await within(s.run())
  t.equal((await within(received)).toString(), '220 bye\r\n')
  t.equal(atDisconnect.match(/^--- (CLIENT|SERVER) \[1\] /gm)?.length, 4, 'two data records and two EOF records')
})
