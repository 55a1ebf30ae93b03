/**
 * lib/session/session.ts in process, for what the end-to-end tests cannot time:
 * a session aborted (shutdown) while it looks up the client's name, and
 * while its handler runs; the -w dump at the moment the session ends.
 * Real sockets and real programs.
 */
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ListenSpec } from '../../lib/config/address.js'
import { ClientNames } from '../../lib/session/environment.js'
import { Redirects } from '../../lib/transparent/redirect.js'
import { nativeAvailable, type Destination } from '../../lib/native/addon.js'
import type { LogEntry, Logger } from '../../lib/log/logger.js'
import type { ResolvedService } from '../../lib/config/resolve.js'
import { OPEN_POLICY, type ProgramContext, type ProgramSlots } from '../../lib/session/context.js'
import { NO_OBSERVER } from '../../lib/session/observer.js'
import { Session } from '../../lib/session/session.js'
import { hangingPort } from '../fixtures/harness.js'
import { collect, socketPair } from '../fixtures/pair.js'
import { sessionService } from '../fixtures/session-service.js'

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))

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

const service = sessionService

/** A session on the inner end of a fresh socket pair; `outer` plays the client. */
async function session(
  svc: ResolvedService,
  programs: ProgramContext = PROGRAMS,
  redirects: Redirects = new Redirects(() => []),
  slots: ProgramSlots = { take: () => true, release: () => {} },
) {
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
    slots,
    listener: null,
    redirects,
    policy: OPEN_POLICY,
    observer: NO_OBSERVER,
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
  const { s, outer, inner, log } = await session(svc, { ...PROGRAMS, resolveNames: true, names: new ClientNames(slowReverse) })
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

/** Redirects whose every connection was redirected to `dest` (what a REDIRECT rule would make). */
class RedirectedTo extends Redirects {
  readonly #dest: () => Destination | null
  constructor(dest: () => Destination | null, listening: ListenSpec[] = []) {
    super(() => listening)
    this.#dest = dest
  }
  override find(): Destination | null {
    return this.#dest()
  }
}

/** An upstream that records what it receives and answers "ok" at the end. */
async function recorder(t: Test): Promise<{ port: number; got: Array<{ data: string; remote: string }> }> {
  const got: Array<{ data: string; remote: string }> = []
  const up = createServer({ allowHalfOpen: true }, s => {
    let data = ''
    s.on('data', d => (data += d))
    s.on('end', () => {
      got.push({ data, remote: s.remoteAddress as string })
      s.end('ok')
    })
  })
  up.listen(0, '127.0.0.1')
  await once(up, 'listening')
  t.teardown(() => up.close())
  return { port: (up.address() as { port: number }).port, got }
}

t.test('redirect-mode forward: to the original destination, named in the PROXY header sent onward', async t => {
  const up = await recorder(t)
  const dest: Destination = { address: '127.0.0.1', port: up.port, family: 4 }
  const redirects = new RedirectedTo(() => dest)
  const svc = service({ servers: [{ host: '127.0.0.1', port: 9 }], redirectMode: 'forward', sendProxy: 'v1' })
  const { s, outer, log } = await session(svc, PROGRAMS, redirects)
  const received = collect(outer)
  outer.write('hello')
  // A second session while the first one's upstream is open goes through the loop check's wait.
  const done = s.run()
  const deadline = Date.now() + 5000
  while (!redirects.tracking && Date.now() < deadline) await new Promise(r => setTimeout(r, 5))
  t.equal(redirects.tracking, true, 'the upstream connection to the original destination is tracked')
  const second = await session(svc, PROGRAMS, redirects)
  const secondReceived = collect(second.outer)
  second.outer.end('again')
  outer.end()
  await within(Promise.all([done, second.s.run()]))
  t.equal((await within(received)).toString(), 'ok')
  t.equal((await within(secondReceived)).toString(), 'ok')
  for (const payload of ['hello', 'again']) {
    t.match(up.got.find(g => g.data.endsWith(payload))?.data, new RegExp(`^PROXY TCP4 127\\.0\\.0\\.1 127\\.0\\.0\\.1 \\d+ \\d+\\r\\n${payload}$`))
  }
  t.ok(up.got.every(g => g.data.split(' ')[5]?.startsWith(`${up.port}\r\n`)), 'the header\'s destination port is the original destination\'s')
  t.match(log.entries.find(e => e.event === 'redirected'), { tag: '+INFO', text: `connection redirected, origdst: 127.0.0.1:${up.port}` })
  t.match(log.entries.find(e => e.event === 'connect'), { text: new RegExp(`server= 127\\.0\\.0\\.1:${up.port},`) })
  t.equal(redirects.tracking, false, 'no upstream connection tracked once they are closed')
})

t.test('redirect-mode forward without a redirect: the configured server, from srcip', async t => {
  const up = await recorder(t)
  const svc = service({ servers: [{ host: '127.0.0.1', port: up.port }], redirectMode: 'forward', sourceAddress: '127.0.0.5' })
  const { s, outer, log } = await session(svc, PROGRAMS, new RedirectedTo(() => null))
  const received = collect(outer)
  outer.end('direct')
  await within(s.run())
  t.equal((await within(received)).toString(), 'ok')
  t.same(up.got, [{ data: 'direct', remote: '127.0.0.5' }], 'from the source address')
  t.notOk(log.entries.some(e => e.event === 'redirected'))
})

t.test('redirect-mode accept: the configured server, and the handler environment', async t => {
  const dest: Destination = { address: '192.0.2.7', port: 25, family: 4 }
  const { s, outer } = await session(
    service({ exec: [fixture('env-handler.sh')], redirectMode: 'accept' }),
    PROGRAMS,
    // An own listener as the destination is a loop only when forwarding.
    new RedirectedTo(() => dest, [{ address: '192.0.2.7', port: 25 }]),
  )
  const received = collect(outer)
  outer.end()
  await within(s.run())
  const env = (await within(received)).toString()
  t.match(env, /^PROXY_ORIGDST_SERVER=192\.0\.2\.7$/m)
  t.match(env, /^PROXY_ORIGDST_PORT=25$/m)
})

t.test('forward-only refuses what was not redirected; loops and unreadable destinations are refused', async t => {
  const svc = (mode: 'forward' | 'forward-only') => service({ servers: [{ host: '127.0.0.1', port: 9 }], redirectMode: mode })
  const cases: Array<[Redirects, 'forward' | 'forward-only', string, RegExp]> = [
    [new RedirectedTo(() => null), 'forward-only', 'not-redirected', /^connection not redirected, client= 127\.0\.0\.1$/],
    [
      new RedirectedTo(() => ({ address: '127.0.0.1', port: 8080, family: 4 }), [{ address: '127.0.0.1', port: 8080 }]),
      'forward',
      'redirect-loop',
      /^redirect loop refused: origdst: 127\.0\.0\.1:8080, client= 127\.0\.0\.1: 127\.0\.0\.1:8080 is this proxy's own listener$/,
    ],
    [
      new RedirectedTo(() => {
        throw new Error('the socket has no file descriptor')
      }),
      'forward',
      'redirect-error',
      /^can't read the original destination, client= 127\.0\.0\.1: the socket has no file descriptor$/,
    ],
  ]
  for (const [redirects, mode, event, text] of cases) {
    const { s, outer, inner, log } = await session(svc(mode), PROGRAMS, redirects)
    const received = collect(outer)
    await within(s.run())
    t.ok(inner.destroyed, `${event}: the client is closed`)
    await within(received)
    t.same(log.entries.map(e => e.event), [event], `${event}: one line, nothing connected`)
    t.match(log.entries[0], { tag: '-ERR', text })
  }
})

t.test('a -w dump cut short (lib/session/dump.ts) leaves the connection going on', async t => {
  const up = await recorder(t)
  const base = join(t.testdir({}), 'dump')
  const svc = service({ servers: [{ host: '127.0.0.1', port: up.port }], writefile: base })
  // A limit of one byte: the first record already waits for the disk.
  const { s, outer, log } = await session(svc, { ...PROGRAMS, dumpBacklog: 1 })
  const received = collect(outer)
  const done = s.run()
  outer.write('first')
  while (up.got.length === 0 && !log.entries.some(e => e.event === 'writefile-error')) await within(new Promise(r => setTimeout(r, 10)))
  outer.end('second')
  await within(done)
  t.equal((await within(received)).toString(), 'ok')
  t.same(up.got.map(g => g.data), ['firstsecond'], 'every byte relayed')
  t.same(
    log.entries.filter(e => e.event === 'writefile-error').map(e => [e.tag, e.text]),
    [['-INFO', `writefile cut short: ${base}.1.log, more than 1 bytes waiting for the disk`]],
    'one line',
  )
})

/** The live processes whose command line mentions `word`. */
function running(word: string): number[] {
  const out: number[] = []
  for (const d of readdirSync('/proc').filter(n => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8')
      if (cmd.includes(word) && !/State:\s+Z/.test(readFileSync(`/proc/${d}/status`, 'utf8'))) out.push(Number(d))
    } catch {
      // Gone meanwhile.
    }
  }
  return out
}

t.test('a client that resets while its ACP runs: the ACP\'s output meets the reset, the session ends with one line', async t => {
  const svc = service({ servers: [{ host: '127.0.0.1', port: 9 }], acp: [fixture('acp-late.sh'), '0.6', '204800'] })
  const { s, outer, log } = await session(svc)
  outer.on('error', () => {})
  const done = s.run()
  await new Promise(r => setTimeout(r, 150))
  outer.resetAndDestroy()
  await within(done)
  const lines = log.entries.map(e => `${e.tag} ${e.event}: ${e.text}`)
  t.match(lines, [/^-INFO socket-error: client close\(\) detected, error= write (EPIPE|ECONNRESET)$/], `one line: ${lines.join(' | ')}`)
  t.equal(lines.length, 1, 'no access line, no connect')
})

/** A session whose client sends a complete PROXY header (and `data`), then resets once the header is logged; its log when it is over. */
async function headerThenReset(svc: ResolvedService, data = ''): Promise<LogEntry[]> {
  const { s, outer, log } = await session(svc)
  outer.on('error', () => {})
  const done = s.run()
  outer.write(`PROXY TCP4 192.0.2.7 127.0.0.1 40000 8025\r\n${data}`)
  while (!log.entries.some(e => e.event === 'proxy-header')) await within(new Promise(r => setTimeout(r, 10)))
  outer.resetAndDestroy()
  await within(done)
  return log.entries
}

t.test('a trusted peer that sends a complete PROXY header and resets while the upstream connect is pending', async t => {
  const hole = await hangingPort(t, 3000)
  const log = await headerThenReset(service({ servers: [{ host: '127.0.0.1', port: hole }], trustsProxy: () => true, connectTimeout: 1 }), 'EHLO')
  t.same(log.map(e => e.event), ['proxy-header', 'connect-failed', 'connection-error'], 'the connect runs its course; nothing crashed')
})

t.test('a session aborted while its ACP runs kills the ACP and starts no handler (the shutdown window)', async t => {
  const svc = service({ acp: [fixture('acp-late.sh'), '0.5'], exec: ['/bin/cat'] })
  const { s, outer, log } = await session(svc)
  const received = collect(outer)
  const done = s.run()
  const deadline = Date.now() + 5000
  while (running('acp-late.sh').length === 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 10))
  t.ok(running('acp-late.sh').length > 0, 'the ACP runs')
  s.abort()
  await within(done, 400)
  t.equal((await within(received)).toString(), '')
  t.same(log.entries, [], 'no access line, no handler')
  await new Promise(r => setTimeout(r, 600))
  t.same(running('acp-late.sh'), [], 'the ACP (and its sleep) were killed')
})

t.test('a client that resets during the ACP of a handler service: no handler starts', async t => {
  const log = await headerThenReset(service({ acp: [fixture('acp-late.sh'), '0.3', '10'], exec: ['/bin/cat'], trustsProxy: () => true }))
  t.same(log.map(e => e.event), ['proxy-header', 'socket-error'])
  t.match(log[1]?.text, /^client close\(\) detected, error= (read )?ECONNRESET$/)
})

t.test('no place for a program: the connection is closed, no program runs', async t => {
  let asked = 0
  const svc = service({ acp: [fixture('acp-allow.sh')] })
  const { s, outer, log } = await session(svc, PROGRAMS, undefined, { take: () => (asked++, false), release: () => {} })
  const received = collect(outer)
  await within(s.run())
  t.equal((await within(received)).toString(), '')
  t.equal(asked, 1)
  t.same(log.entries, [], 'the proxy logs the limit, once per episode')
  const h = await session(service({ exec: ['/bin/cat'] }), PROGRAMS, undefined, { take: () => false, release: () => {} })
  const hReceived = collect(h.outer)
  await within(h.s.run())
  t.equal((await within(hReceived)).toString(), '')
  t.same(h.log.entries.map(e => e.event), ['starting'])
})

t.test('out of descriptors when its ACP or handler starts, or when it connects: the client is closed and the forwarder\'s rate-limited line reports it', async t => {
  const r = spawnSync('/bin/sh', ['-c', `ulimit -n 64 && exec "${process.execPath}" "${fixture('unit-emfile.mjs')}" session`], { encoding: 'utf8', timeout: 20_000 })
  t.equal(r.status, 0, `the process did not crash: ${r.stderr}`)
  const out = JSON.parse(r.stdout) as { reported: string[] }
  t.match(out.reported.pop(), /^connect EMFILE /, 'the connect: no line of its own')
  t.same(out, {
    filled: true,
    reported: ["can't start a program: EMFILE", "can't start a program: EMFILE"],
    logged: ['starting'],
    closed: [true, true, true],
  })
})

t.test('a PROXY header without addresses (v1 UNKNOWN, v2 LOCAL): the connection\'s own addresses apply', async t => {
  const v2Local = Buffer.concat([Buffer.from('0d0a0d0a000d0a515549540a', 'hex'), Buffer.from([0x20, 0x00, 0x00, 0x00])])
  for (const [header, word] of [[Buffer.from('PROXY UNKNOWN\r\n'), 'UNKNOWN'], [v2Local, 'LOCAL']] as const) {
    const { s, outer, log } = await session(service({ servers: [{ host: '127.0.0.1', port: 9 }], trustsProxy: () => true }))
    const port = outer.localPort
    const received = collect(outer)
    outer.end(header)
    await within(s.run())
    await within(received)
    t.match(log.entries[0], { event: 'proxy-header', text: `PROXY v${word === 'LOCAL' ? 2 : 1} from 127.0.0.1:${port}: ${word}, the connection's own addresses apply` })
  }
})

t.test('with the relay thread, the session lets go of the client socket it handed over and logs the same end', { skip: nativeAvailable() ? false : 'the native addon is not built' }, async t => {
  const up = await recorder(t)
  const { s, outer, inner, log } = await session(service({ servers: [{ host: '127.0.0.1', port: up.port }] }), { ...PROGRAMS, relayThread: true })
  const received = collect(outer)
  const done = s.run()
  const deadline = Date.now() + 5000
  while (!inner.destroyed && Date.now() < deadline) await new Promise(r => setTimeout(r, 5))
  t.equal(inner.destroyed, true, 'the thread took the connection: Node\'s socket is closed')
  outer.end('threaded')
  await within(done)
  t.equal((await within(received)).toString(), 'ok')
  t.same(up.got.map(g => g.data), ['threaded'])
  t.match(log.entries.find(e => e.event === 'disconnect'), { text: /received= 2, send= 8, .*closed-by= client$/ })
  // abort() after the hand-over goes to the thread's handle, not the dropped socket.
  s.abort()
})

t.test('a trusted peer whose first bytes are not a PROXY header: one line, the connection is closed', async t => {
  const { s, outer, log } = await session(service({ servers: [{ host: '127.0.0.1', port: 9 }], trustsProxy: () => true }))
  const received = collect(outer)
  outer.write('GET / HTTP/1.0\r\n\r\n')
  await within(s.run())
  await within(received)
  t.same(log.entries.map(e => [e.tag, e.event]), [['-ERR', 'proxy-header-error']])
  t.match(log.entries[0]?.text, /^bad PROXY header from 127\.0\.0\.1:\d+: /)
})

t.test('the ACP grants (a debug line) or denies (its banner to the client, an error line)', async t => {
  const up = await recorder(t)
  const allowed = await session(service({ servers: [{ host: '127.0.0.1', port: up.port }], acp: [fixture('acp-allow.sh')] }))
  const fromUp = collect(allowed.outer)
  allowed.outer.end('hi')
  await within(allowed.s.run())
  t.equal((await within(fromUp)).toString(), 'ok')
  t.match(allowed.log.entries.find(e => e.event === 'access-granted'), { tag: '+DEBUG', text: /^access granted: client= 127\.0\.0\.1, rc= 0, message= welcome 127\.0\.0\.1$/ })
  const denied = await session(service({ servers: [{ host: '127.0.0.1', port: up.port }], acp: [fixture('acp-deny.sh')] }))
  const banner = collect(denied.outer)
  await within(denied.s.run())
  t.equal((await within(banner)).toString(), '554 no service for 127.0.0.1\r\n')
  t.same(denied.log.entries.map(e => [e.tag, e.event]), [['-ERR', 'access-denied']])
  t.match(denied.log.entries[0]?.text, /^access denied: client= 127\.0\.0\.1, rc= 3, message= client 127\.0\.0\.1 is not on the list$/)
})

t.test('the end of a relay: an idle timeout, and a reset from the server, each with its line before the disconnect', async t => {
  const quiet = createServer(s => s.on('error', () => {}).resume())
  quiet.listen(0, '127.0.0.1')
  await once(quiet, 'listening')
  t.teardown(() => quiet.close())
  const idle = await session(service({ servers: [{ host: '127.0.0.1', port: (quiet.address() as { port: number }).port }], timeout: 0.2 }))
  idle.outer.on('error', () => {}).resume()
  await within(idle.s.run())
  t.same(idle.log.entries.map(e => [e.tag, e.event]), [['+INFO', 'connect'], ['-ERR', 'timeout'], ['+OK', 'disconnect']])
  t.match(idle.log.entries[1]?.text, /^connection timed out: client= 127\.0\.0\.1, server= 127\.0\.0\.1:\d+$/)
  t.match(idle.log.entries[2]?.text, /closed-by= timeout$/)
  const resetting = createServer(s => s.on('error', () => {}).once('data', () => s.resetAndDestroy()))
  resetting.listen(0, '127.0.0.1')
  await once(resetting, 'listening')
  t.teardown(() => resetting.close())
  const reset = await session(service({ servers: [{ host: '127.0.0.1', port: (resetting.address() as { port: number }).port }] }))
  reset.outer.on('error', () => {}).resume()
  reset.outer.write('x')
  await within(reset.s.run())
  t.same(reset.log.entries.map(e => [e.tag, e.event]), [['+INFO', 'connect'], ['-INFO', 'socket-error'], ['+OK', 'disconnect']])
  t.match(reset.log.entries[1]?.text, /^server close\(\) detected, error= (read )?ECONNRESET$/)
  t.match(reset.log.entries[2]?.text, /closed-by= server-error$/)
})

t.test('after a PROXY header, the bytes that came with it go first: to the upstream, or to the handler', async t => {
  const up = await recorder(t)
  const proxied = await session(service({ servers: [{ host: '127.0.0.1', port: up.port }], trustsProxy: () => true }))
  const fromUp = collect(proxied.outer)
  proxied.outer.end('PROXY TCP4 192.0.2.7 127.0.0.1 40000 8025\r\nEHLO')
  await within(proxied.s.run())
  t.equal((await within(fromUp)).toString(), 'ok')
  t.same(up.got.map(g => g.data), ['EHLO'])
  t.match(proxied.log.entries.find(e => e.event === 'disconnect')?.text, /^disconnect: client= 192\.0\.2\.7, .*send= 4,/)
  const handled = await session(service({ exec: ['/bin/cat'], trustsProxy: () => true }))
  const echoed = collect(handled.outer)
  handled.outer.end('PROXY TCP4 192.0.2.7 127.0.0.1 40000 8025\r\nhello')
  await within(handled.s.run())
  t.equal((await within(echoed)).toString(), 'hello', 'the handler read them first')
})

t.test('a handler that cannot be executed: one line; with -n off, the client name comes from the system resolver', async t => {
  const { s, outer, log } = await session(service({ exec: ['/nonexistent/handler'] }), { ...PROGRAMS, resolveNames: true })
  const received = collect(outer)
  await within(s.run())
  await within(received)
  t.same(log.entries.map(e => e.event), ['starting', 'handler-error'])
  t.match(log.entries[0]?.text, /^starting `\/nonexistent\/handler', client= \S+$/)
  t.match(log.entries[1], { tag: '-ERR', text: /^can't execute \/nonexistent\/handler, error= / })
})

t.test('forge-addr and forge-port: the upstream connection comes from the client\'s address (and port)', { skip: nativeAvailable() ? false : 'the native addon is not built' }, async t => {
  for (const forgePort of [false, true]) {
    const up = await recorder(t)
    const { s, outer, log } = await session(service({ servers: [{ host: '127.0.0.1', port: up.port }], forgeAddr: true, forgePort }))
    const received = collect(outer)
    outer.end('forged')
    await within(s.run())
    await within(received)
    // Unprivileged, the transparent socket is refused: that is the connection error.
    const failed = log.entries.find(e => e.event === 'connection-error')
    if (failed !== undefined) t.match(failed.text, /transparent/)
    else t.same(up.got.map(g => [g.data, g.remote]), [['forged', '127.0.0.1']], `forge-port ${forgePort}`)
  }
})

t.test('a client that resets during the relay: its line names the client', async t => {
  const quiet = createServer(s => s.on('error', () => {}).resume())
  quiet.listen(0, '127.0.0.1')
  await once(quiet, 'listening')
  t.teardown(() => quiet.close())
  const { s, outer, log } = await session(service({ servers: [{ host: '127.0.0.1', port: (quiet.address() as { port: number }).port }] }))
  outer.on('error', () => {})
  const done = s.run()
  while (!log.entries.some(e => e.event === 'connect')) await within(new Promise(r => setTimeout(r, 10)))
  outer.resetAndDestroy()
  await within(done)
  t.match(log.entries.find(e => e.event === 'socket-error')?.text, /^client close\(\) detected, error= (read )?ECONNRESET$/)
  t.match(log.entries.find(e => e.event === 'disconnect')?.text, /closed-by= client-error$/)
})
