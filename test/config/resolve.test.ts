/**
 * Interface names to addresses, once at start-up.
 */
import t from 'tap'
import { DEFAULT_SETTINGS, type ServiceDef } from '../../lib/config/config.js'
import { hydrateService, resolveServices, serviceData, serviceKey, systemLookup, type AddressLookup, type ResolvedService } from '../../lib/config/resolve.js'

const service = (iface: string | null, line: number, file = 'test.conf'): ServiceDef => ({
  ...DEFAULT_SETTINGS,
  servers: [{ host: '127.0.0.1', port: 25 }],
  timeout: 60,
  connectTimeout: 10,
  port: 8025,
  iface,
  ifaceText: iface ?? '*',
  source: { file, line },
})

/** DEFAULT_SETTINGS' timeouts with service()'s, in milliseconds. */
const MS = { idleMs: 60_000, connectMs: 10_000, acpMs: DEFAULT_SETTINGS.acpTimeout * 1000, proxyHeaderMs: DEFAULT_SETTINGS.proxyTimeout * 1000, failMs: 10_000, checkMs: 0 }

const never: AddressLookup = async host => {
  throw new Error(`unexpected lookup of ${host}`)
}

t.test('IP interfaces need no lookup and keep every other setting', async t => {
  const r = await resolveServices([service('127.0.0.1', 2), service('::1', 5)], never)
  t.same(r, [
    { ...service('127.0.0.1', 2), addresses: ['127.0.0.1'], trustsProxy: null, timeouts: MS },
    { ...service('::1', 5), addresses: ['::1'], trustsProxy: null, timeouts: MS },
  ])
})

t.test('the timeouts in seconds become milliseconds once, and again after a trip through plain data (IPC)', async t => {
  const [r] = await resolveServices([{ ...service(null, 1), timeout: 2.5, connectTimeout: 0, acpTimeout: 0.25, proxyTimeout: 3, failTimeout: 0.5, checkInterval: 2 }], never)
  const s = r as ResolvedService
  const ms = { idleMs: 2500, connectMs: 0, acpMs: 250, proxyHeaderMs: 3000, failMs: 500, checkMs: 2000 }
  t.same(s.timeouts, ms)
  t.same([s.timeout, s.connectTimeout, s.acpTimeout, s.proxyTimeout, s.failTimeout], [2.5, 0, 0.25, 3, 0.5], 'the settings keep their seconds (describe, --check)')
  const data = serviceData(s)
  t.notOk('timeouts' in data, 'plain data carries the settings only')
  t.same(hydrateService(JSON.parse(JSON.stringify(data))).timeouts, ms)
})

t.test('accept-proxy becomes a matcher, and survives a trip through plain data (IPC)', async t => {
  const [r] = await resolveServices([{ ...service(null, 1), acceptProxy: ['10.0.0.0/8', '::1/128'] }], never)
  const s = r as ResolvedService
  t.equal(s.trustsProxy?.('10.1.2.3'), true)
  t.equal(s.trustsProxy?.('::1'), true)
  t.equal(s.trustsProxy?.('192.0.2.1'), false)
  const data = serviceData(s)
  t.notOk('trustsProxy' in data, 'plain data has no function')
  t.equal(JSON.stringify(JSON.parse(JSON.stringify(data))), JSON.stringify(data))
  t.equal(hydrateService(data).trustsProxy?.('10.9.9.9'), true)
})

t.test('the wildcard resolves to null, every address', async t => {
  const r = await resolveServices([service(null, 3)], never)
  t.equal(r[0]?.addresses, null)
})

t.test('host names resolve through the lookup to canonical addresses, each once', async t => {
  const asked: string[] = []
  const lookup: AddressLookup = async host => {
    asked.push(host)
    return ['127.0.0.1', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1', '::1', '10.0.0.1']
  }
  const r = await resolveServices([service('mail.example.org', 4)], lookup)
  t.same(asked, ['mail.example.org'])
  t.same(r[0]?.addresses, ['127.0.0.1', '::1', '10.0.0.1'])
})

t.test('a name that does not resolve is a ConfigError at the service line', async t => {
  const lookup: AddressLookup = async host => {
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' })
  }
  await t.rejects(resolveServices([service('127.0.0.1', 2), service('nosuch.invalid', 7)], lookup), {
    name: 'ConfigError',
    code: 'ERR_CONFIG',
    message: 'test.conf:7: cannot resolve interface "nosuch.invalid": getaddrinfo ENOTFOUND nosuch.invalid',
  })
})

t.test('a name from -b that does not resolve names the option', async t => {
  const lookup: AddressLookup = async () => {
    throw 'no network'
  }
  await t.rejects(resolveServices([service('mail.example.org', 0, 'option -b')], lookup), {
    name: 'ConfigError',
    message: 'option -b: cannot resolve interface "mail.example.org": no network',
  })
})

t.test('a name that resolves to no address at all is an error too', async t => {
  await t.rejects(resolveServices([service('empty.example', 9)], async () => []), {
    name: 'ConfigError',
    message: 'test.conf:9: cannot resolve interface "empty.example": no addresses',
  })
})

t.test('the system lookup resolves localhost to loopback addresses', async t => {
  const r = await resolveServices([service('localhost', 1)])
  const addresses = r[0]?.addresses ?? []
  t.ok(addresses.length > 0, 'at least one address')
  for (const a of addresses) t.match(a, /^(127\.\d+\.\d+\.\d+|::1)$/, `${a} is loopback`)
  t.same(await systemLookup('127.0.0.1'), ['127.0.0.1'], 'an address looks up to itself')
})

t.test('serviceKey: a service is known by its canonical interface and port, the same across a reload', async t => {
  t.equal(serviceKey({ iface: null, port: 25 }), '*:25')
  t.equal(serviceKey({ iface: '::1', port: 25 }), '[::1]:25')
  t.equal(serviceKey({ iface: '127.0.0.1', port: 8025 }), '127.0.0.1:8025')
})
