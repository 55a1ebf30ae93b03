/**
 * lib/server/plan.ts: which listeners' connections the relay thread may
 * connect at once, and the attempt it is given.
 */
import t from 'tap'
import { DEFAULT_SETTINGS } from '../../lib/config/config.js'
import { hydrateService, type ResolvedService, type ServiceData } from '../../lib/config/resolve.js'
import { planFor } from '../../lib/server/plan.js'

function service(extra: Partial<ServiceData> = {}): ResolvedService {
  return hydrateService({
    ...DEFAULT_SETTINGS,
    port: 8025,
    iface: null,
    ifaceText: '*',
    addresses: null,
    servers: [{ host: '127.0.0.1', port: 25 }],
    timeout: 60,
    connectTimeout: 5,
    keepalive: 30,
    source: { file: 'test', line: 1 },
    ...extra,
  })
}

t.test('one plain service with one server: its attempt, with its timeouts and keepalive, no bytes first', async t => {
  const s = service()
  const p = planFor([s, service({ port: 9000 })], 8025, null, null)
  t.equal(p?.service, s, 'the service it was made for')
  t.same(p?.request, { address: '127.0.0.1', family: 4, port: 25, timeoutMs: 5000, idleMs: 60000, keepalive: 30, first: null })
})

t.test('a server without a port gets the listener\'s; an IPv6 server family 6', async t => {
  t.match(planFor([service({ servers: [{ host: '::1', port: null }] })], 8025, '::1', null)?.request, { address: '::1', family: 6, port: 8025 })
})

t.test('a service of one address: planned on a socket bound to it; not on a wildcard socket (systemd\'s), where the local address chooses', async t => {
  const s = service({ iface: '127.0.0.1', ifaceText: '127.0.0.1', addresses: ['127.0.0.1'] })
  t.equal(planFor([s], 8025, '127.0.0.1', null)?.service, s)
  t.equal(planFor([s], 8025, null, null), null, 'a wildcard socket')
  t.equal(planFor([s], 8025, '127.0.0.2', null), null, 'bound to another address')
  t.equal(planFor([service()], 8025, '127.0.0.2', null)?.request.port, 25, 'a wildcard service: any socket')
})

t.test('no plan where a connection could get another answer than the next one', async t => {
  const none: Array<[string, ResolvedService[], number | null]> = [
    ['no service on the port', [service({ port: 9000 })], null],
    ['two services share the port (the local address chooses)', [service({ iface: '127.0.0.1', ifaceText: '127.0.0.1', addresses: ['127.0.0.1'] }), service()], null],
    ['max-connections for all (--max-connections)', [service()], 100],
    ['max-connections for the service', [service({ maxConnections: 10 })], null],
    ['an allow list', [service({ allow: ['10.0.0.0/8'] })], null],
    ['a deny list', [service({ deny: ['10.0.0.0/8'] })], null],
    ['max-per-client', [service({ maxPerClient: 2 })], null],
    ['a PROXY header to send (it names each client)', [service({ sendProxy: 'v1' })], null],
    ['two servers (balance and marks choose)', [service({ servers: [{ host: '127.0.0.1', port: 25 }, { host: '127.0.0.2', port: 25 }] })], null],
    ['a server given by name (resolved per attempt)', [service({ servers: [{ host: 'localhost', port: 25 }] })], null],
    ['a handler program', [service({ servers: null, exec: ['/bin/cat'] })], null],
    ['no server at all', [service({ servers: null })], null],
    ['an access control program', [service({ acp: ['/bin/true'] })], null],
    ['PROXY headers accepted from some peers', [service({ acceptProxy: ['127.0.0.1/32'] })], null],
  ]
  for (const [why, services, max] of none) t.equal(planFor(services, 8025, null, max), null, why)
})
