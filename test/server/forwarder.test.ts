/** lib/server/forwarder.ts in process: lifecycle paths the end-to-end tests cannot time precisely. */
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { LogEntry, Logger } from '../../lib/log/logger.js'
import { Forwarder } from '../../lib/server/forwarder.js'
import { hydrateService, type ResolvedService, type ServiceData } from '../../lib/config/resolve.js'
import { DEFAULT_MAX_PROGRAMS, type ProgramContext } from '../../lib/session/context.js'
import { DEFAULT_SETTINGS } from '../../lib/config/config.js'
import { nativeAvailable } from '../../lib/native/addon.js'
import { threadFront } from '../../lib/relay/front.js'
import { blockUntilAccepted } from '../fixtures/front.js'
import { backend, echoAfterEnd, exchange, freePort, hangingPort } from '../fixtures/harness.js'
import { socketPair } from '../fixtures/pair.js'

function memoryLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = []
  return { debug: false, entries, log: e => void entries.push(e) }
}

const programs: ProgramContext = {
  baseEnv: {},
  envPrefix: 'PROXY_',
  pid: 1,
  proxyName: 'tcpproxy',
  logName: 'tcpproxy',
  resolveNames: false,
  runAs: {},
}

function service(port: number, upPort: number, extra: Partial<ServiceData> = {}): ResolvedService {
  return hydrateService({
    ...DEFAULT_SETTINGS,
    port,
    iface: '127.0.0.1',
    ifaceText: '127.0.0.1',
    addresses: ['127.0.0.1'],
    servers: [{ host: '127.0.0.1', port: upPort }],
    timeout: 60,
    connectTimeout: 5,
    source: { file: 'test', line: 1 },
    ...extra,
  })
}

/** A forwarder with one relayed session open, its upstream answering the client's EOF with its own. */
async function oneSession(t: Test) {
  const up = await backend(s => s.on('error', () => {}).resume().on('end', () => s.end()))
  t.teardown(() => up.close())
  const port = await freePort()
  const log = memoryLogger()
  const proxy = new Forwarder([service(port, up.port)], { logger: log, programs })
  await proxy.listen()
  const c = connect({ port, host: '127.0.0.1' }).on('error', () => {})
  c.resume()
  while (!log.entries.some(e => e.event === 'connect')) await new Promise(r => setTimeout(r, 10))
  return { proxy, log, c }
}

t.test('close() cuts sessions still open after the grace period', async t => {
  const { proxy, log } = await oneSession(t)
  t.equal(proxy.sessions, 1)
  const start = Date.now()
  await proxy.close(300)
  t.ok(Date.now() - start >= 250, 'waited for the grace period')
  t.equal(proxy.sessions, 0)
  t.match(log.entries.find(e => e.event === 'disconnect')?.text, 'closed-by= shutdown')
})

t.test('close() lets a session that ends within the grace period end by itself, and resolves when it has', async t => {
  const { proxy, log, c } = await oneSession(t)
  const start = Date.now()
  const closing = proxy.close(10_000)
  setTimeout(() => c.end(), 200)
  await closing
  const took = Date.now() - start
  t.ok(took >= 150 && took < 5000, `resolved when the session ended, not at the deadline (${took} ms)`)
  t.equal(proxy.sessions, 0)
  t.match(log.entries.find(e => e.event === 'disconnect')?.text, 'closed-by= client', 'not cut')
})

t.test('close() with no session open resolves at once', async t => {
  const proxy = new Forwarder([service(await freePort(), 9)], { logger: memoryLogger(), programs })
  await proxy.listen()
  const start = Date.now()
  await proxy.close(10_000)
  t.ok(Date.now() - start < 5000)
})

t.test('close() during an upstream connect drops the session when the connect completes', async t => {
  const holePort = await hangingPort(t, 400, 'then-accept')
  const port = await freePort()
  const log = memoryLogger()
  const proxy = new Forwarder([service(port, holePort)], { logger: log, programs })
  await proxy.listen()
  const c = connect({ port, host: '127.0.0.1' }).on('error', () => {})
  const closed = once(c, 'close')
  while (!log.entries.some(e => e.event === 'connected')) await new Promise(r => setTimeout(r, 10))
  await proxy.close(0)
  await closed
  t.notOk(log.entries.some(e => e.event === 'connect'), 'no relay was started')
  t.equal(proxy.sessions, 0)
})

t.test('a failed bind releases the listeners already bound', async t => {
  const busy = createServer().listen(0, '127.0.0.1')
  await once(busy, 'listening')
  t.teardown(() => busy.close())
  const busyPort = (busy.address() as { port: number }).port
  const first = await freePort()
  const proxy = new Forwarder([service(first, 9), service(busyPort, 9)], { logger: memoryLogger(), programs })
  await t.rejects(proxy.listen(), { code: 'ERR_BIND', message: `cannot bind 127.0.0.1:${busyPort}: EADDRINUSE` })
  const again = createServer().listen(first, '127.0.0.1')
  await once(again, 'listening')
  t.pass('the first port is free again')
  again.close()
})

t.test('a socket handed over during shutdown, or already gone, is closed at once', async t => {
  const log = memoryLogger()
  const proxy = new Forwarder([service(await freePort(), 9)], { logger: log, programs })
  await proxy.close(0)
  const [outer, inner] = await socketPair()
  const closed = once(outer, 'close')
  outer.on('end', () => outer.end())
  proxy.handle(inner)
  await closed
  t.ok(inner.destroyed)
  const [outer2, inner2] = await socketPair()
  outer2.destroy()
  inner2.destroy()
  proxy.handle(inner2)
  t.same(log.entries, [], 'nothing was logged for either')
})

t.test('with workers sharing the listeners, each enforces its part of the limits, rounded up', async t => {
  const up = await backend(s => s.on('error', () => {}).resume())
  t.teardown(() => up.close())
  const [a, b] = [await freePort(), await freePort()]
  const log = memoryLogger()
  const proxy = new Forwarder([service(a, up.port), service(b, up.port, { maxConnections: 1 })], { logger: log, programs, maxConnections: 3, workers: 2, workerIndex: 1 })
  await proxy.listen()
  t.teardown(() => proxy.close(0))
  t.equal((proxy.listener(`127.0.0.1:${a}`).address() as { port: number }).port, a, 'the listener of a key, to lend to another worker')
  const held = [connect({ port: b, host: '127.0.0.1' }), connect({ port: b, host: '127.0.0.1' })].map(c => c.on('error', () => {}))
  while (!log.entries.some(e => e.event === 'limit')) await new Promise(r => setTimeout(r, 10))
  t.match(log.entries.find(e => e.event === 'limit')?.text, `too many connections (max-connections 1 for 127.0.0.1:${b}, 1 in this worker)`)
  held.push(connect({ port: a, host: '127.0.0.1' }).on('error', () => {}), connect({ port: a, host: '127.0.0.1' }).on('error', () => {}))
  while (log.entries.filter(e => e.event === 'limit').length < 2) await new Promise(r => setTimeout(r, 10))
  t.match(log.entries.filter(e => e.event === 'limit')[1]?.text, 'too many connections (max-connections 3 in all, 2 in this worker)')
  t.same(log.entries.filter(e => e.event === 'connected').map(e => e.id), [2, 4, 6, 8], 'worker 1 of 2 numbers its connections 2, 4, 6, ...')
  held.forEach(c => c.destroy())
})

t.test('max-programs: a connection that would start a program beyond the bound is closed; one line per episode', async t => {
  const port = await freePort()
  const log = memoryLogger()
  const svc = service(port, 9, { exec: ['/bin/cat'] })
  const proxy = new Forwarder([svc], { logger: log, programs: { ...programs, baseEnv: { PATH: '/usr/bin:/bin' }, maxPrograms: 2 }, workers: 2 })
  await proxy.listen()
  t.teardown(() => proxy.close(0))
  const first = connect({ port, host: '127.0.0.1' }).on('error', () => {})
  while (!log.entries.some(e => e.event === 'starting')) await new Promise(r => setTimeout(r, 10))
  // The first handler holds this worker's one place (2 for 2 workers); the next two are refused.
  const refused = [0, 1].map(() => connect({ port, host: '127.0.0.1' }).on('error', () => {}))
  await Promise.all(refused.map(c => once(c, 'close')))
  const limits = log.entries.filter(e => e.event === 'limit')
  t.equal(limits.length, 1, 'one line for the episode')
  t.match(limits[0]?.text, /^too many programs running \(max-programs 2, 1 in this worker\): connection refused, client= 127\.0\.0\.1$/)
  t.same(proxy.sessionRows(performance.now()).map(r => r.state), ['handler'], 'the running handler\'s row')
  t.same(proxy.counters.snapshot().services[`127.0.0.1:${port}`]?.denied, { 'max-programs': 2 })
  first.end('echo')
  const [echo] = (await once(first, 'data')) as [Buffer]
  t.equal(echo.toString(), 'echo', 'the running handler is served')
  await once(first, 'close')
  while (proxy.sessions > 0) await new Promise(r => setTimeout(r, 10))
  const again = connect({ port, host: '127.0.0.1' }).on('error', () => {})
  again.end('again')
  const [reply] = (await once(again, 'data')) as [Buffer]
  t.equal(reply.toString(), 'again', 'its place is free again once it ended')
})

t.test('max-programs null: no bound', async t => {
  const port = await freePort()
  const log = memoryLogger()
  const proxy = new Forwarder([service(port, 9, { exec: ['/bin/cat'] })], { logger: log, programs: { ...programs, maxPrograms: null } })
  await proxy.listen()
  t.teardown(() => proxy.close(0))
  const held = [0, 1, 2].map(() => connect({ port, host: '127.0.0.1' }).on('error', () => {}))
  while (log.entries.filter(e => e.event === 'starting').length < 3) await new Promise(r => setTimeout(r, 10))
  t.notOk(log.entries.some(e => e.event === 'limit'))
  held.forEach(c => c.destroy())
})

t.test('the default bound on programs is DEFAULT_MAX_PROGRAMS', async t => {
  t.equal(DEFAULT_MAX_PROGRAMS, 256)
})

t.test('update() binds the new listeners and closes the old; setServices() leaves the listeners, and a connection no service takes is closed', async t => {
  const up = await backend(s => s.on('error', () => {}).resume().on('end', () => s.end()))
  t.teardown(() => up.close())
  const [a, b] = [await freePort(), await freePort()]
  const log = memoryLogger()
  const proxy = new Forwarder([service(a, up.port)], { logger: log, programs })
  t.teardown(() => proxy.close(0))
  await proxy.listen()
  await proxy.update([service(b, up.port)])
  t.same(proxy.listening, [`127.0.0.1:${b}`])
  t.match(log.entries.map(e => e.text), [`bound to 127.0.0.1:${a}`, `bound to 127.0.0.1:${b}`, `closed 127.0.0.1:${a}`])
  proxy.setServices([service(a, up.port)])
  t.same(proxy.listening, [`127.0.0.1:${b}`], 'the listeners stay as they were')
  const c = connect({ port: b, host: '127.0.0.1' }).on('error', () => {})
  c.resume()
  await once(c, 'close')
  t.match(log.entries.find(e => e.event === 'no-service'), { tag: '-ERR', text: new RegExp(`^no configuration found for interface 127\\.0\\.0\\.1:${b}, client= 127\\.0\\.0\\.1$`) })
})

t.test('a listener\'s error (accept out of descriptors) is one rate-limited line', async t => {
  const log = memoryLogger()
  const port = await freePort()
  const proxy = new Forwarder([service(port, 9)], { logger: log, programs })
  t.teardown(() => proxy.close(0))
  await proxy.listen()
  const emfile = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' })
  proxy.listener(`127.0.0.1:${port}`).emit('error', emfile)
  proxy.listener(`127.0.0.1:${port}`).emit('error', emfile)
  t.same(
    log.entries.filter(e => e.event === 'resource-error').map(e => [e.tag, e.text]),
    [['-ERR', 'accept EMFILE: new connections are refused']],
  )
})

t.test('a TPROXY listener\'s connection is matched by the listener, not by its local address', async t => {
  const up = await backend(s => s.on('error', () => {}).resume().on('end', () => s.end()))
  t.teardown(() => up.close())
  const log = memoryLogger()
  // The service listens on the wildcard at port 7 and on 127.0.0.1 at 8; the connection's own local port is neither.
  const proxy = new Forwarder([{ ...service(7, up.port), iface: null, ifaceText: '*', addresses: null }, service(8, up.port)], { logger: log, programs })
  for (const [listener, event] of [[{ address: null, port: 7, transparent: true }, 'connect'], [{ address: '127.0.0.1', port: 9, transparent: true }, 'no-service']] as const) {
    const [outer, inner] = await socketPair()
    outer.on('error', () => {}).resume()
    const done = proxy.handle(inner, listener)
    outer.end()
    await done
    t.ok(log.entries.some(e => e.event === event), `${listener.address ?? '*'}:${listener.port}: ${event}`)
  }
})

t.test('counters: a relayed session is counted; sessionRows shows it live; killSession ends it with closed-by= killed', async t => {
  const { proxy, log, c } = await oneSession(t)
  const key = proxy.listening[0] as string
  c.write('hello')
  let rows = proxy.sessionRows(performance.now())
  for (let i = 0; i < 200 && rows[0]?.sent !== 5; i++) {
    await new Promise(r => setTimeout(r, 10))
    rows = proxy.sessionRows(performance.now())
  }
  t.match(rows, [{ id: 1, service: key, client: '127.0.0.1', client_port: c.localPort, received: 0, sent: 5, age: 0, state: 'relaying' }])
  t.match(proxy.counters.snapshot().services[key], { connections: 1, active: 1 })
  t.equal(proxy.killSession(99), false, 'no such session')
  t.equal(proxy.killSession(1), true)
  await once(c, 'close')
  while (proxy.sessions > 0) await new Promise(r => setTimeout(r, 10))
  t.match(log.entries.find(e => e.event === 'disconnect')?.text, /send= 5, .*closed-by= killed$/)
  t.same(proxy.sessionRows(performance.now()), [])
  const svc = proxy.counters.snapshot().services[key]
  t.match(svc, { connections: 1, active: 0 })
  t.equal(svc?.duration.counts.reduce((x, y) => x + y, 0), 1, 'its duration is in the histogram')
  t.match(Object.values(svc?.servers ?? {}), [{ connections: 1, active: 0, sent: 5, received: 0, connectFailures: 0 }])
  await proxy.close(0)
})

t.test('counters: refusals by reason (no-service, max-connections) and connect failures', async t => {
  const dead = await freePort()
  const [a, b] = [await freePort(), await freePort()]
  const log = memoryLogger()
  const proxy = new Forwarder([service(a, dead), service(b, dead, { maxConnections: 0 })], { logger: log, programs })
  t.teardown(() => proxy.close(0))
  await proxy.listen()
  const closed = async (port: number): Promise<void> => {
    const c = connect({ port, host: '127.0.0.1' }).on('error', () => {})
    c.resume()
    await once(c, 'close')
    while (proxy.sessions > 0) await new Promise(r => setTimeout(r, 10))
  }
  await closed(a)
  await closed(b)
  proxy.setServices([service(b, dead)])
  await closed(a)
  const services = proxy.counters.snapshot().services
  t.match(services[`127.0.0.1:${a}`], { connections: 2, active: 0, denied: { 'no-service': 1 } })
  t.match(services[`127.0.0.1:${a}`]?.servers[`127.0.0.1:${dead}`], { connectFailures: 1, connections: 0, up: { up: false } })
  t.match(services[`127.0.0.1:${b}`], { connections: 1, active: 0, denied: { 'max-connections': 1 } })
})

t.test('server marks are logged here, or handed to onMark (a worker); refusals counted; disable/enable/serverStates', async t => {
  const dead = await freePort()
  const up = await backend(s => s.on('error', () => {}).end('up'))
  t.teardown(() => up.close())
  const port = await freePort()
  const log = memoryLogger()
  const svc = service(port, dead, { servers: [{ host: '127.0.0.1', port: dead }, { host: '127.0.0.1', port: up.port }], deny: ['127.0.0.2/32'] })
  const proxy = new Forwarder([svc], { logger: log, programs })
  await proxy.listen()
  t.teardown(() => proxy.close(0))
  const ask = async (from = '127.0.0.1'): Promise<string> => {
    const c = connect({ port, host: '127.0.0.1', localAddress: from }).on('error', () => {})
    let got = ''
    c.on('data', d => (got += d))
    await once(c, 'close')
    return got
  }
  t.equal(await ask(), 'up')
  t.match(log.entries.find(e => e.event === 'server-down'), { tag: '-INFO', text: `server 127.0.0.1:${dead} down (connection refused, 1 of 1 failures)` })
  t.same(proxy.serverStates().map(s => [s.service, s.state]), [[`127.0.0.1:${port}`, 'down'], [`127.0.0.1:${port}`, 'up']])
  t.equal(await ask('127.0.0.2'), '')
  t.same(proxy.counters.snapshot().services[`127.0.0.1:${port}`]?.denied, { acl: 1 })
  t.notOk(proxy.disableServer('127.0.0.1:1'), 'no service has that server')
  t.ok(proxy.disableServer(`127.0.0.1:${up.port}`))
  t.notOk(proxy.disableServer(`127.0.0.1:${up.port}`))
  t.same([...proxy.disabledServers], [`127.0.0.1:${up.port}`])
  t.equal(proxy.serverStates()[1]?.state, 'disabled')
  proxy.applyMark(`127.0.0.1:${port}`, { server: `127.0.0.1:${dead}`, state: 'up' })
  t.equal(await ask(), '', 'the disabled server is skipped: only the dead one is tried')
  t.ok(proxy.enableServer(`127.0.0.1:${up.port}`))
  t.notOk(proxy.enableServer(`127.0.0.1:${up.port}`))
  t.equal(await ask(), 'up')
  // A worker: the mark goes to the supervisor instead of the log.
  const marks: string[] = []
  const wlog = memoryLogger()
  const wport = await freePort()
  const worker = new Forwarder([service(wport, dead, { servers: [{ host: '127.0.0.1', port: dead }, { host: '127.0.0.1', port: up.port }] })], {
    logger: wlog,
    programs,
    onMark: (s, m) => void marks.push(`${s} ${m.server} ${m.state}`),
  })
  await worker.listen()
  t.teardown(() => worker.close(0))
  const c = connect({ port: wport, host: '127.0.0.1' }).on('error', () => {})
  c.resume()
  await once(c, 'close')
  t.same(marks, [`127.0.0.1:${wport} 127.0.0.1:${dead} down`])
  t.notOk(wlog.entries.some(e => e.event === 'server-down'), 'not logged by the worker')
  worker.setServices([service(wport, up.port)])
  t.same(worker.serverStates().map(s => s.state), ['up'], 'setServices carries the policy over to the new list')
})

t.test('sessionRows: a session running its access control program is in state acp', async t => {
  const port = await freePort()
  const log = memoryLogger()
  const proxy = new Forwarder([service(port, 9, { acp: ['/bin/sleep', '5'] })], { logger: log, programs: { ...programs, baseEnv: { PATH: '/usr/bin:/bin' } } })
  await proxy.listen()
  const c = connect({ port, host: '127.0.0.1' }).on('error', () => {})
  let rows = proxy.sessionRows(performance.now())
  for (let i = 0; i < 200 && rows.length === 0; i++) rows = (await new Promise(r => setTimeout(r, 10)), proxy.sessionRows(performance.now()))
  t.match(rows, [{ state: 'acp', server: null }])
  c.destroy()
  await proxy.close(0)
})

t.test('a handler service (no server list) is served, whatever servers are disabled', async t => {
  const port = await freePort()
  const other = await freePort()
  const log = memoryLogger()
  const proxy = new Forwarder([service(port, 9, { servers: null, exec: ['/bin/cat'] }), service(other, 9)], { logger: log, programs: { ...programs, baseEnv: { PATH: '/usr/bin:/bin' } } })
  t.teardown(() => proxy.close(0))
  await proxy.listen()
  for (const disabled of [false, true]) {
    if (disabled) t.equal(proxy.disableServer('127.0.0.1:9'), true)
    const c = connect({ port, host: '127.0.0.1' }).on('error', () => {})
    c.end('echo')
    const [reply] = (await once(c, 'data')) as [Buffer]
    t.equal(reply.toString(), 'echo', disabled ? 'with a server disabled' : 'with none disabled')
  }
  t.notOk(log.entries.some(e => e.event === 'no-server'))
})

/* The relay thread accepting (programs.relayThread): lib/server/forwarder.ts's #accepted and #serve with the thread's connection. */

const native = { skip: nativeAvailable() ? false : 'the native addon is not built' }
const threaded: ProgramContext = { ...programs, baseEnv: { PATH: '/usr/bin:/bin' }, relayThread: true }

/** Which of the front's connect and take the forwarder calls (the process's one front, observed, not replaced). */
function frontCalls(t: Test): string[] {
  const calls: string[] = []
  const front = threadFront() as unknown as Record<string, (...args: unknown[]) => unknown>
  for (const m of ['connect', 'adopt', 'take']) {
    const real = front[m] as (...args: unknown[]) => unknown
    front[m] = (...args) => (calls.push(m), real.apply(front, args))
    t.teardown(() => delete front[m])
  }
  return calls
}

/** Until `ok()`, at most 5 s. */
async function until(ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000
  while (!ok() && Date.now() < deadline) await new Promise(r => setTimeout(r, 10))
}

/** A forwarder with the thread accepting for one plain service, its server's connections given to `handler`. */
async function threadProxy(t: Test, handler: (s: Socket) => void) {
  const up = await backend(handler)
  t.teardown(() => up.close())
  const port = await freePort()
  const log = memoryLogger()
  const proxy = new Forwarder([service(port, up.port)], { logger: log, programs: threaded })
  await proxy.listen()
  t.teardown(() => proxy.close(0))
  return { proxy, log, port, up }
}

/** A forwarder whose thread serves one session, relaying to a server that never answers; the client, and its close. */
async function threadSession(t: Test) {
  const { proxy, log, port, up } = await threadProxy(t, s => s.on('error', () => {}).resume())
  const c = connect({ port, host: '127.0.0.1' }).on('error', () => {})
  const closed = once(c, 'close')
  c.resume()
  await until(() => log.entries.some(e => e.event === 'connect'))
  return { proxy, log, c, closed, server: `127.0.0.1:${up.port}` }
}

t.test('thread: a plain service is served by the thread from accept to close, with the lines of Node\'s path', native, async t => {
  const calls = frontCalls(t)
  const { proxy, log, port, up } = await threadProxy(t, echoAfterEnd)
  t.equal(proxy.listener(`127.0.0.1:${port}`).listening, false, 'Node\'s listener is closed: the thread accepts')
  const r = await exchange(port, 'plain')
  t.equal(r.data.toString(), 'plain')
  await until(() => proxy.sessions === 0)
  t.same(calls, ['adopt'], 'connected by the thread, as the listener\'s plan said; no Node socket taken')
  t.same(log.entries.slice(1).map(e => [e.tag, e.event, e.id]), [['+INFO', 'connected', 1], ['+INFO', 'connect', 1], ['+OK', 'disconnect', 1]])
  t.match(log.entries.slice(1).map(e => e.text), [
    /^connected on 127\.0\.0\.1:\d+, client= 127\.0\.0\.1:\d+$/,
    `connect: client= 127.0.0.1, server= 127.0.0.1:${up.port}, timeout= 60`,
    new RegExp(`^disconnect: client= 127\\.0\\.0\\.1, server= 127\\.0\\.0\\.1:${up.port}, received= 5, send= 5, duration= \\d+\\.\\d{3}, closed-by= client$`),
  ])
  t.match(proxy.counters.snapshot().services[`127.0.0.1:${port}`], { connections: 1, active: 0 })
})

t.test('thread: a port whose services need Node\'s socket is Node\'s; a reload moves it; one accepted meanwhile gets Node\'s socket from take()', native, async t => {
  const calls = frontCalls(t)
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const [handler, proxied] = [await freePort(), await freePort()]
  const log = memoryLogger()
  const cat = service(handler, 9, { servers: null, exec: ['/bin/cat'] })
  const proxy = new Forwarder([cat, service(proxied, up.port, { acceptProxy: ['127.0.0.1/32'] })], { logger: log, programs: threaded })
  await proxy.listen()
  t.teardown(() => proxy.close(0))
  t.equal(proxy.listener(`127.0.0.1:${handler}`).listening, true, 'a handler service: Node accepts')
  t.equal((await exchange(handler, 'cat')).data.toString(), 'cat', 'the handler answered')
  t.equal((await exchange(proxied, 'PROXY TCP4 192.0.2.7 127.0.0.1 40000 8025\r\nEHLO')).data.toString(), 'EHLO')
  t.same(calls, [], 'neither went through the thread')
  t.match(log.entries.find(e => e.event === 'disconnect')?.text, /^disconnect: client= 192\.0\.2\.7, .*send= 4, /)
  // The handler's port becomes plain: the thread accepts there from now on
  // (an allow list: each connection waits to be asked, lib/server/plan.ts).
  await proxy.update([service(handler, up.port, { allow: ['127.0.0.0/8'] }), service(proxied, up.port, { acceptProxy: ['127.0.0.1/32'] })])
  t.equal(proxy.listener(`127.0.0.1:${handler}`).listening, false, 'the thread accepts')
  t.equal((await exchange(handler, 'plain')).data.toString(), 'plain')
  t.same(calls, ['connect'])
  // A client the thread accepts just before a reload makes the port a handler's again:
  // its session is the handler's, on the socket the thread gives up.
  const c = connect({ port: handler, host: '127.0.0.1' }).on('error', () => {})
  // Node connects on the next tick; then the thread accepts while this
  // thread sleeps, and the event loop hears of it only after the reload.
  await new Promise(r => process.nextTick(r))
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100)
  proxy.setServices([cat, service(proxied, up.port, { acceptProxy: ['127.0.0.1/32'] })])
  c.end('late')
  let got = ''
  c.on('data', d => (got += d))
  await once(c, 'close')
  t.equal(got, 'late', 'the handler served it')
  t.same(calls, ['connect', 'take'])
  await until(() => proxy.listener(`127.0.0.1:${handler}`).listening)
  t.ok(proxy.listener(`127.0.0.1:${handler}`).listening, 'Node accepts again')
  await until(() => proxy.sessions === 0)
  t.equal(log.entries.filter(e => e.event === 'handler-end').length, 2)
})

t.test('thread: a connection the thread connected by its plan before a reload is served as that plan said, though the reload brings a deny list; the next is refused', native, async t => {
  const calls = frontCalls(t)
  const [one, two] = [await backend(s => s.on('error', () => {}).end('one')), await backend(s => s.on('error', () => {}).end('two'))]
  t.teardown(() => (one.close(), two.close()))
  const port = await freePort()
  const log = memoryLogger()
  const proxy = new Forwarder([service(port, one.port)], { logger: log, programs: threaded })
  await proxy.listen()
  t.teardown(() => proxy.close(0))
  const early = connect({ port, host: '127.0.0.1', allowHalfOpen: true }).on('error', () => {})
  // Node connects on the next tick; the thread accepts and connects it while
  // this thread sleeps, and the event loop hears of it only after the reload.
  await new Promise(r => process.nextTick(r))
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200)
  proxy.setServices([service(port, two.port, { deny: ['127.0.0.0/8'] })])
  let got = ''
  early.on('data', d => (got += d)).end()
  await once(early, 'close')
  t.equal(got, 'one', 'served by the server of the plan it was connected by, not refused')
  t.equal((await exchange(port, 'x')).data.length, 0, 'the next connection: refused by the new deny list')
  await until(() => proxy.sessions === 0)
  t.same(calls, ['adopt'], 'the refused one was not planned (a deny list): nothing connected for it')
  t.same(log.entries.filter(e => e.event === 'connect').map(e => /server= (\S+),/.exec(e.text)?.[1]), [`127.0.0.1:${one.port}`], 'the line says so')
  t.equal(log.entries.filter(e => e.event === 'acl-denied').length, 1)
})

t.test('thread: a listener update() binds is planned by the new services once they are in force', native, async t => {
  const calls = frontCalls(t)
  const up = await backend(s => s.on('error', () => {}).end('up'))
  t.teardown(() => up.close())
  const [a, b] = [await freePort(), await freePort()]
  const proxy = new Forwarder([service(a, up.port)], { logger: memoryLogger(), programs: threaded })
  await proxy.listen()
  t.teardown(() => proxy.close(0))
  await proxy.update([service(a, up.port), service(b, up.port)])
  t.equal((await exchange(b, 'x')).data.toString(), 'up')
  await until(() => proxy.sessions === 0)
  t.same(calls, ['adopt'], 'connected by its plan')
})

t.test('thread: no service, or max-connections: one line, the connection closed, nothing connected', native, async t => {
  const calls = frontCalls(t)
  const [a, b] = [await freePort(), await freePort()]
  const log = memoryLogger()
  const proxy = new Forwarder([service(a, 9, { maxConnections: 0 }), service(b, 9)], { logger: log, programs: threaded })
  await proxy.listen()
  t.teardown(() => proxy.close(0))
  t.equal((await exchange(a, 'x')).data.length, 0)
  proxy.setServices([service(a, 9)])
  t.equal((await exchange(b, 'x')).data.length, 0)
  t.same(log.entries.slice(2).map(e => [e.tag, e.event, e.id]), [['+INFO', 'connected', 1], ['-ERR', 'limit', 1], ['+INFO', 'connected', 2], ['-ERR', 'no-service', 2]])
  t.match(log.entries[3]?.text, `too many connections (max-connections 0 for 127.0.0.1:${a}), client= 127.0.0.1`)
  t.match(log.entries[5]?.text, `no configuration found for interface 127.0.0.1:${b}, client= 127.0.0.1`)
  t.same(calls, [])
  const services = proxy.counters.snapshot().services
  t.match(services[`127.0.0.1:${a}`], { connections: 1, active: 0, denied: { 'max-connections': 1 } })
  t.match(services[`127.0.0.1:${b}`], { connections: 1, active: 0, denied: { 'no-service': 1 } })
})

t.test('thread: close(grace) cuts a session the thread serves after the grace, and resolves', native, async t => {
  const { proxy, log, closed, server } = await threadSession(t)
  t.match(proxy.sessionRows(performance.now()), [{ id: 1, state: 'relaying', server }])
  const start = Date.now()
  await proxy.close(300)
  t.ok(Date.now() - start >= 250, 'waited for the grace period')
  await closed
  t.equal(proxy.sessions, 0)
  t.match(log.entries.find(e => e.event === 'disconnect')?.text, /closed-by= shutdown$/)
})

t.test('thread: kill session ends a session the thread serves, closed-by= killed, its bytes counted', native, async t => {
  const { proxy, log, c, closed } = await threadSession(t)
  c.write('hello')
  await until(() => proxy.sessionRows(performance.now())[0]?.sent === 5)
  t.match(proxy.sessionRows(performance.now()), [{ id: 1, sent: 5, received: 0, state: 'relaying' }], 'the thread\'s live counts')
  t.equal(proxy.killSession(1), true)
  await closed
  await until(() => proxy.sessions === 0)
  t.match(log.entries.find(e => e.event === 'disconnect')?.text, /send= 5, .*closed-by= killed$/)
})

t.test('thread: a listener lent once close() has begun is closed, not served', native, async t => {
  const port = await freePort()
  const log = memoryLogger()
  const proxy = new Forwarder([service(port, 9)], { logger: log, programs: threaded })
  await proxy.close(0)
  // As a supervisor's listener can arrive after the worker began to stop.
  const server = createServer().listen(port, '127.0.0.1')
  await once(server, 'listening')
  proxy.adopt(`127.0.0.1:${port}`, server)
  await once(server, 'close')
  const c = connect({ port, host: '127.0.0.1' })
  const [err] = (await once(c, 'error')) as [NodeJS.ErrnoException]
  t.equal(err.code, 'ECONNREFUSED', 'nothing accepts there')
  t.same(log.entries, [], 'no bound line, no connection')
  t.equal(proxy.sessions, 0)
})

t.test('thread: connections the thread accepted just before close() are served to their end and logged; close() waits for them', native, async t => {
  const { proxy, log, port } = await threadProxy(t, echoAfterEnd)
  const clients = ['a', 'b', 'c'].map(text => {
    const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true }).on('error', () => {})
    t.teardown(() => c.destroy())
    let got = ''
    c.on('data', d => (got += d))
    c.end(text)
    return once(c, 'end').then(() => got)
  })
  // Node connects on the next tick; the event loop then sleeps while the
  // thread accepts them and connects each upstream as the plan says, and
  // close() begins before the event loop has heard of any.
  await new Promise(r => process.nextTick(r))
  blockUntilAccepted(port, 3)
  t.equal(log.entries.filter(e => e.event === 'connected').length, 0, 'none heard of when close() begins')
  const closed = proxy.close(10000)
  t.same(await Promise.all(clients), ['a', 'b', 'c'], 'each client got its echo')
  await closed
  t.equal(proxy.sessions, 0)
  const ends = log.entries.filter(e => e.event === 'disconnect')
  t.equal(log.entries.filter(e => e.event === 'connect').length, 3, 'three connect lines')
  t.equal(ends.length, 3, 'three disconnect lines')
  t.ok(ends.every(e => /received= 1, send= 1, .*closed-by= client$/.test(e.text)), 'ended by their clients, their bytes counted')
})

t.test('out of descriptors in a session\'s upstream connect: the forwarder\'s one line, counted as refused for resources', async t => {
  const emfile = fileURLToPath(new URL('../fixtures/unit-emfile.mjs', import.meta.url))
  const r = spawnSync('/bin/sh', ['-c', `ulimit -n 64 && exec "${process.execPath}" "${emfile}" forwarder`], { encoding: 'utf8', timeout: 20_000 })
  t.equal(r.status, 0, `the process did not crash: ${r.stderr}`)
  const out = JSON.parse(r.stdout) as { logged: string[] }
  t.match(out, { filled: true, denied: { resources: 1 }, closed: [true] })
  t.match(out.logged, [/^connected: /, /^resource-error: connect EMFILE .*: new connections are refused$/])
  t.equal(out.logged.length, 2)
})

t.test('redirect-mode: a destination that is one of the listeners in use is refused as a loop', async t => {
  const [outer, inner] = await socketPair()
  outer.on('error', () => {}).resume()
  // inner arrived on 127.0.0.1:own, now free; the forwarder listens there too.
  const own = inner.localPort as number
  const port = await freePort()
  const log = memoryLogger()
  const proxy = new Forwarder([service(port, 9, { redirectMode: 'forward' }), service(own, 9)], { logger: log, programs })
  await proxy.listen()
  t.teardown(() => proxy.close(0))
  await proxy.handle(inner, { address: '127.0.0.1', port, transparent: true })
  t.match(log.entries.find(e => e.event === 'redirect-loop')?.text, `redirect loop refused: origdst: 127.0.0.1:${own}, client= 127.0.0.1: 127.0.0.1:${own} is this proxy's own listener`)
})

t.test('thread: a server given with a zone (::1%lo) is connected by Node\'s path, its failure logged (the thread takes plain addresses only)', native, async t => {
  const [port, dead] = [await freePort(), await freePort('::1')]
  const log = memoryLogger()
  const proxy = new Forwarder([service(port, dead, { servers: [{ host: '::1%lo', port: dead }] })], { logger: log, programs: threaded })
  await proxy.listen()
  t.teardown(() => proxy.close(0))
  t.equal((await exchange(port, 'x')).data.length, 0)
  await until(() => proxy.sessions === 0)
  t.same(log.entries.slice(1).map(e => e.event), ['connected', 'server-down', 'connect-failed', 'connection-error'])
  t.match(log.entries.at(-1)?.text, `connection error: client= 127.0.0.1, server= [::1%lo]:${dead}, error= connect ECONNREFUSED ::1%lo:${dead}`)
})

