/** lib/server/policy.ts: per-service admission, order and health, as the forwarder keeps them. */
import t from 'tap'
import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import { DEFAULT_SETTINGS } from '../../lib/config/config.js'
import { hydrateService, type ResolvedService, type ServiceData } from '../../lib/config/resolve.js'
import type { LogEntry } from '../../lib/log/logger.js'
import { Episodes } from '../../lib/server/episodes.js'
import type { Transition } from '../../lib/server/health.js'
import { Policies, ServicePolicy, failureReason, type DenyReason, type PolicyHooks } from '../../lib/server/policy.js'
import type { Attempt } from '../../lib/server/upstream.js'
import { freePort } from '../fixtures/harness.js'

const SERVERS = [
  { host: '10.0.0.5', port: 25 },
  { host: '10.0.0.6', port: null },
  { host: '::1', port: 2525 },
]

function service(extra: Partial<ServiceData> = {}): ResolvedService {
  return hydrateService({ ...DEFAULT_SETTINGS, port: 25, iface: null, ifaceText: '*', addresses: null, servers: SERVERS, source: { file: 'test', line: 1 }, ...extra })
}

function hooks(disabled: Set<string> = new Set()) {
  const logged: LogEntry[] = []
  const marks: Array<[string, Transition]> = []
  const denied: Array<[string, DenyReason]> = []
  const h: PolicyHooks = {
    log: e => void logged.push(e),
    transition: (s, tr) => void marks.push([s, tr]),
    denied: (s, r) => void denied.push([s, r]),
    episodes: () => new Episodes(),
    disabled,
  }
  return { h, logged, marks, denied }
}

const fail = (host: string, port: number, code: string): Attempt => ({ ok: false, host, port, error: Object.assign(new Error(code), { code }) })
const ok = (host: string, port: number): Attempt => ({ ok: true, host, port, socket: null as unknown as Socket })
const hosts = (eps: ReadonlyArray<{ host: string }>): string[] => eps.map(e => e.host)

t.test('only the server\'s failures count', async t => {
  const reason = (code: string): string | null => failureReason(Object.assign(new Error(code), { code }))
  t.same(['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND'].map(reason), ['connection refused', 'connect timed out', 'unreachable', 'unreachable', 'unreachable', 'name not found'])
  t.same(['EMFILE', 'ENFILE', 'EADDRNOTAVAIL', 'EACCES', 'EAI_AGAIN'].map(reason), [null, null, null, null, null], 'ours (and our resolver\'s), not the server\'s')
})

t.test('allow/deny refuse with one rate-limited, counted line; max-per-client counts until release', async t => {
  const { h, logged, denied } = hooks()
  const p = new ServicePolicy(service({ allow: ['127.0.0.0/8'], deny: ['127.0.0.2/32'], maxPerClient: 2 }), h)
  t.notOk(p.admit(1, '127.0.0.2', 4711))
  t.notOk(p.admit(2, '::ffff:127.0.0.2', 4712), 'IPv4-mapped matches its IPv4 form')
  t.notOk(p.admit(3, '192.0.2.1', 1))
  t.same(logged.map(e => [e.tag, e.event, e.id, e.text]), [['-ERR', 'acl-denied', 1, 'access denied by acl: client= 127.0.0.2:4711 (on a deny list)']], 'one line, the rest counted for the next')
  t.same(denied, [['*:25', 'acl'], ['*:25', 'acl'], ['*:25', 'acl']])
  const a = p.ticket(4, 25)
  const b = p.ticket(5, 25)
  const c = p.ticket(6, 25)
  t.ok(a.admit('127.0.0.3', 1))
  t.ok(b.admit('127.0.0.3', 2))
  t.notOk(c.admit('127.0.0.3', 3), 'the third of one client')
  t.match(logged[1], { tag: '-ERR', event: 'client-limit', id: 6, text: 'too many sessions of one client (max-per-client 2), client= 127.0.0.3' })
  t.same(denied.at(-1), ['*:25', 'max-per-client'])
  a.release()
  a.release()
  c.release()
  t.ok(p.ticket(7, 25).admit('127.0.0.3', 4), 'one slot back, released once')
  t.notOk(p.ticket(8, 25).admit('127.0.0.3', 5))
})

t.test('planned (connected before a reload brought lists and limits): admitted whatever they say, and counted', async t => {
  const { h, logged, denied } = hooks()
  const p = new ServicePolicy(service({ deny: ['127.0.0.0/8'], maxPerClient: 1 }), h)
  const planned = p.ticket(1, 25)
  t.ok(planned.admit('127.0.0.3', 1, true), 'on the deny list, yet admitted')
  t.ok(p.ticket(2, 25).admit('127.0.0.3', 2, true), 'over max-per-client, yet admitted')
  t.same([logged, denied], [[], []], 'nothing logged or counted as refused')
  p.update(service({ maxPerClient: 2 }))
  t.notOk(p.ticket(3, 25).admit('127.0.0.3', 3), 'the planned sessions count toward the limit')
  planned.release()
  t.ok(p.ticket(4, 25).admit('127.0.0.3', 4), 'and make room when they end')
})

t.test('a failed connect marks its server down once; sessions skip it; a success brings it back', async t => {
  const { h, marks } = hooks()
  const p = new ServicePolicy(service(), h)
  const tk = p.ticket(1, 25)
  t.ok(tk.admit('192.0.2.1', 1))
  t.same(hosts(tk.order(SERVERS)), ['10.0.0.5', '10.0.0.6', '::1'])
  tk.attempted(fail('10.0.0.5', 25, 'EMFILE'))
  t.same(marks, [], 'out of descriptors is ours')
  tk.attempted(fail('10.0.0.5', 25, 'ETIMEDOUT'))
  tk.attempted(ok('10.0.0.6', 25))
  t.same(marks, [['*:25', { server: '10.0.0.5:25', state: 'down', reason: 'connect timed out', failures: 1, maxFails: 1 }]])
  t.same(hosts(p.ticket(2, 25).order(SERVERS)), ['10.0.0.6', '::1'], 'the down server is skipped')
  t.same(p.states().map(s => [s.server, s.state, s.active]), [['10.0.0.5:25', 'down', 0], ['10.0.0.6:25', 'up', 1], ['[::1]:2525', 'up', 0]])
  tk.release()
  t.equal(p.states()[1]?.active, 0, 'the session ended')
  p.apply({ server: '10.0.0.5:25', state: 'up' })
  t.same(hosts(p.ticket(3, 25).order(SERVERS)), ['10.0.0.5', '10.0.0.6', '::1'], 'a mark from elsewhere is taken on')
  p.apply({ server: '[::1]:2525', state: 'down', reason: 'connection refused', failures: 1, maxFails: 1 })
  t.equal(marks.length, 1, 'silently')
  const again = p.ticket(4, 25)
  again.admit('192.0.2.1', 1)
  again.attempted(ok('::1', 2525))
  t.same(marks.at(-1), ['*:25', { server: '[::1]:2525', state: 'up' }])
})

t.test('leastconn and roundrobin follow the sessions; the ports default to the local port', async t => {
  const { h } = hooks()
  const p = new ServicePolicy(service({ balance: 'leastconn', servers: [{ host: '127.0.0.1', port: null }, { host: '127.0.0.2', port: null }] }), h)
  const held = p.ticket(1, 8025)
  held.admit('127.0.0.9', 1)
  t.equal(held.order([{ host: '127.0.0.1', port: null }, { host: '127.0.0.2', port: null }])[0]?.host, '127.0.0.1')
  held.attempted(ok('127.0.0.1', 8025))
  t.same(p.states(8025).map(s => [s.server, s.active]), [['127.0.0.1:8025', 1], ['127.0.0.2:8025', 0]])
  const next = [2, 3, 4, 5].map(id => {
    const tk = p.ticket(id, 8025)
    tk.admit('127.0.0.9', 1)
    return tk.order([{ host: '127.0.0.1', port: null }, { host: '127.0.0.2', port: null }])[0]?.host
  })
  t.same(next, ['127.0.0.2', '127.0.0.2', '127.0.0.2', '127.0.0.2'], 'the held session\'s server is avoided')
  const second = p.ticket(9, 8025)
  second.admit('127.0.0.9', 2)
  second.attempted(ok('127.0.0.1', 8025))
  second.release()
  t.equal(p.states(8025)[0]?.active, 1, 'one of two sessions ended')
})

t.test('known servers: each with its port (the listening port when it has none), but a port-less one of a transparent service has no port until a client brings one', async t => {
  const { h } = hooks()
  const plain = service()
  const tproxy = service({ port: 8080, transparent: true })
  t.same(new Policies([plain], h).knownServers(), ['10.0.0.5:25', '10.0.0.6:25', '[::1]:2525'].map(server => ({ service: '*:25', server })))
  t.same(new Policies([tproxy, service({ servers: null, exec: ['/bin/true'], port: 79 })], h).knownServers(), ['10.0.0.5:25', '[::1]:2525'].map(server => ({ service: '*:8080', server })))
})

t.test('disabled servers are skipped by new sessions, unless every one is', async t => {
  const { h } = hooks()
  const policies = new Policies([service()], h)
  const p = policies.of(service())
  t.ok(policies.disable('10.0.0.5:25'))
  t.notOk(policies.disable('10.0.0.5:25'), 'once')
  t.same(hosts(p.ticket(1, 25).order(SERVERS)), ['10.0.0.6', '::1'])
  t.same(policies.states().map(s => s.state), ['disabled', 'up', 'up'])
  policies.disable('10.0.0.6:25')
  policies.disable('[::1]:2525')
  t.same(hosts(p.ticket(2, 25).order(SERVERS)), ['10.0.0.5', '10.0.0.6', '::1'], 'a disable never refuses a client on its own')
  t.ok(policies.enable('10.0.0.6:25'))
  t.notOk(policies.enable('10.0.0.6:25'))
  t.same([...policies.disabled], ['10.0.0.5:25', '[::1]:2525'])
})

t.test('a reload keeps a service\'s counts and marks, unless max-fails or fail-timeout changed; gone services are dropped', async t => {
  const { h, logged } = hooks()
  const policies = new Policies([service({ maxPerClient: 1 })], h)
  const p = policies.of(service())
  const tk = p.ticket(1, 25)
  t.ok(tk.admit('192.0.2.1', 1))
  tk.attempted(fail('10.0.0.5', 25, 'ECONNREFUSED'))
  policies.set([service({ maxPerClient: 1, deny: ['192.0.2.2/32'] })])
  t.equal(policies.of(service()), p, 'the same state')
  t.notOk(p.ticket(2, 25).admit('192.0.2.1', 1), 'the open session still counts')
  t.notOk(p.ticket(3, 25).admit('192.0.2.2', 1), 'the new deny line applies')
  t.equal(logged.length, 2)
  t.equal(p.states()[0]?.state, 'down', 'the mark stays')
  policies.set([service({ maxPerClient: 1, maxFails: 3 })])
  t.equal(p.states()[0]?.state, 'up', 'new health settings start afresh')
  policies.apply('*:25', { server: '10.0.0.5:25', state: 'down', reason: 'x', failures: 1, maxFails: 1 })
  policies.apply('*:99', { server: '10.0.0.5:25', state: 'up' })
  t.equal(p.states()[0]?.state, 'down')
  policies.set([service({ port: 26 })])
  t.not(policies.of(service({ port: 26 })), p)
  t.same(policies.states().map(s => s.service), ['*:26', '*:26', '*:26'])
  tk.release()
  t.same(new ServicePolicy(service({ servers: null, exec: ['/bin/true'] }), h).states(), [], 'a handler service has no servers')
})

t.test('check-interval probes servers marked down: one that listens again comes up, a dead one stays down', async t => {
  const { h, marks } = hooks()
  const back = await freePort()
  const dead = await freePort()
  const servers = [{ host: '127.0.0.1', port: back }, { host: '127.0.0.1', port: dead }, { host: '127.0.0.1', port: null }]
  const policies = new Policies([service({ servers, checkInterval: 0.05, connectTimeout: 1 })], h)
  t.teardown(() => policies.stop())
  const p = policies.of(service())
  const tk = p.ticket(1, 25)
  tk.admit('192.0.2.1', 1)
  tk.attempted(fail('127.0.0.1', back, 'ECONNREFUSED'))
  tk.attempted(fail('127.0.0.1', dead, 'ECONNREFUSED'))
  const up = createServer(s => s.destroy()).listen(back, '127.0.0.1')
  t.teardown(() => up.close())
  await once(up, 'listening')
  for (let i = 0; i < 100 && marks.length < 3; i++) await new Promise(r => setTimeout(r, 20))
  t.same(marks.map(([, m]) => `${m.server} ${m.state}`), [`127.0.0.1:${back} down`, `127.0.0.1:${dead} down`, `127.0.0.1:${back} up`])
  t.same(p.states().map(s => [s.state, s.active]), [['up', 0], ['down', 0], ['up', 0]], 'a probe is no session')
  policies.set([service({ servers, sourceAddress: '127.0.0.1', checkInterval: 0.05 })])
  await new Promise(r => setTimeout(r, 150))
  t.equal(p.states()[1]?.state, 'down', 'probes from srcip fail too')
  policies.set([])
  p.probe(0)
  t.pass('a probe of a policy whose service is gone starts nothing new')
  const handler = new Policies([service({ servers: null, exec: ['/bin/true'], checkInterval: 0.05 })], h)
  handler.of(service()).probe(0)
  handler.stop()
  t.equal(marks.length, 3, 'a handler service has nothing to probe')
})
