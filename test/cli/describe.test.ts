import t from 'tap'
import { DEFAULT_SETTINGS } from '../../lib/config/config.js'
import { describeService } from '../../lib/cli/describe.js'
import { hydrateService, type ResolvedService } from '../../lib/config/resolve.js'

const base: ResolvedService = hydrateService({
  ...DEFAULT_SETTINGS,
  port: 8025,
  iface: null,
  ifaceText: '*',
  addresses: null,
  servers: [{ host: 'mail.example.org', port: null }, { host: '::1', port: 25 }],
  timeout: 60,
  connectTimeout: 10,
  source: { file: 'f', line: 1 },
})

t.test('the wildcard shows as *:PORT and a missing server port is the listening port', async t => {
  t.equal(describeService(base), '*:8025 -> mail.example.org:8025,[::1]:25 (timeout 60)')
})

t.test('every address of an interface is listed', async t => {
  t.equal(
    describeService({ ...base, addresses: ['127.0.0.1', '::1'], servers: [{ host: 'h', port: 1 }], timeout: 0 }),
    '127.0.0.1:8025 [::1]:8025 -> h:1 (timeout 0)',
  )
})

t.test('transparent proxying settings are shown; forward-only may have no server', async t => {
  t.equal(
    describeService({ ...base, servers: null, redirectMode: 'forward-only', transparent: true, forgeAddr: true, forgePort: true }),
    '*:8025 -> the original destination (timeout 60, redirect-mode forward-only, transparent, forge-addr, forge-port)',
  )
  t.equal(
    describeService({ ...base, redirectMode: 'accept', sourceAddress: '10.0.0.1', forgeAddr: false }),
    '*:8025 -> mail.example.org:8025,[::1]:25 (timeout 60, redirect-mode accept, srcip 10.0.0.1)',
  )
  t.equal(describeService({ ...base, forgeAddr: true }), '*:8025 -> mail.example.org:8025,[::1]:25 (timeout 60, forge-addr)')
})

t.test('a handler, an ACP and the PROXY protocol settings are shown', async t => {
  t.equal(
    describeService({
      ...base,
      servers: null,
      exec: ['/usr/local/sbin/handler', '-v'],
      acp: ['/usr/local/sbin/acp'],
      acceptProxy: ['10.0.0.0/8', '::1/128'],
      sendProxy: 'v2',
      writefile: '/tmp/dump',
    }),
    '*:8025 -> exec /usr/local/sbin/handler -v (timeout 60, acp /usr/local/sbin/acp, accept-proxy 10.0.0.0/8,::1/128, send-proxy v2, writefile /tmp/dump)',
  )
})

t.test('keepalive is shown when on', async t => {
  t.equal(describeService({ ...base, keepalive: 300 }), describeService(base).replace('(timeout 60', '(timeout 60, keepalive 300'))
})

t.test('the other timeouts and max-connections are not shown, set or not', async t => {
  t.equal(
    describeService({ ...base, connectTimeout: 3, acpTimeout: 1, proxyTimeout: 2, maxConnections: 5 }),
    describeService(base),
  )
})

t.test('balance and limits are shown when not at their defaults', async t => {
  const s = hydrateService({ ...base, balance: 'roundrobin', maxFails: 2, failTimeout: 30, checkInterval: 2, allow: ['10.0.0.0/8', '::1/128'], deny: ['10.0.0.9/32'], maxPerClient: 4 })
  t.equal(describeService(s), '*:8025 -> mail.example.org:8025,[::1]:25 (timeout 60, balance roundrobin, max-fails 2, fail-timeout 30, check-interval 2, allow 10.0.0.0/8,::1/128, deny 10.0.0.9/32, max-per-client 4)')
  t.equal(describeService(hydrateService({ ...base, failTimeout: 5 })), '*:8025 -> mail.example.org:8025,[::1]:25 (timeout 60, max-fails 1, fail-timeout 5)')
})
