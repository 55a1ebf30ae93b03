/**
 * lib/session/environment.ts: the PROXY_* variables handler and access control
 * programs get, and the client host name that goes into them.
 */
import t from 'tap'
import { ClientNames, NAME_LOOKUPS, connectionEnv, safeHostName, systemForward, systemReverse, type ConnectionFacts } from '../../lib/session/environment.js'

const FACTS: ConnectionFacts = {
  client: '192.0.2.7',
  clientName: 'client.example.org',
  clientPort: 40123,
  iface: '198.51.100.1',
  port: 8025,
  config: '*:8025',
  pid: 4242,
  proxyName: 'tcpproxy',
  logName: 'smtp-proxy',
  started: 1700000000,
}

t.test('connectionEnv names every fact with the default prefix, numbers as decimal text', async t => {
  t.same(connectionEnv('PROXY_', FACTS), {
    PROXY_CLIENT: '192.0.2.7',
    PROXY_CLIENTNAME: 'client.example.org',
    PROXY_CLIENTPORT: '40123',
    PROXY_INTERFACE: '198.51.100.1',
    PROXY_PORT: '8025',
    PROXY_CONFIG: '*:8025',
    PROXY_PID: '4242',
    PROXY_PROXYNAME: 'tcpproxy',
    PROXY_LOGNAME: 'smtp-proxy',
    PROXY_STARTED: '1700000000',
  })
})

t.test('connectionEnv with another prefix (-v, setenv) uses it for every name', async t => {
  const v6 = { ...FACTS, client: '2001:db8::7', clientName: '2001:db8::7', iface: '::1', config: '::1:8025' }
  t.same(connectionEnv('MY_', v6), {
    MY_CLIENT: '2001:db8::7',
    MY_CLIENTNAME: '2001:db8::7',
    MY_CLIENTPORT: '40123',
    MY_INTERFACE: '::1',
    MY_PORT: '8025',
    MY_CONFIG: '::1:8025',
    MY_PID: '4242',
    MY_PROXYNAME: 'tcpproxy',
    MY_LOGNAME: 'smtp-proxy',
    MY_STARTED: '1700000000',
  })
})

t.test('connectionEnv adds PEER, DESTINATION and DESTPORT only for a connection with a PROXY header', async t => {
  const env = connectionEnv('PROXY_', { ...FACTS, peer: '10.0.0.5', destination: { address: '203.0.113.9', port: 25 } })
  t.same(env, {
    ...connectionEnv('PROXY_', FACTS),
    PROXY_PEER: '10.0.0.5',
    PROXY_DESTINATION: '203.0.113.9',
    PROXY_DESTPORT: '25',
  })
  t.notOk('PROXY_PEER' in connectionEnv('PROXY_', FACTS) || 'PROXY_DESTINATION' in connectionEnv('PROXY_', FACTS), 'absent without a header')
})

t.test('safeHostName passes well-formed host names, lower case, without a trailing dot', async t => {
  const cases: [string, string][] = [
    ['localhost', 'localhost'],
    ['Mail.Example.ORG', 'mail.example.org'],
    ['host-1.example.org.', 'host-1.example.org'],
    ['3com.example', '3com.example'],
    ['x', 'x'],
    [`${'a'.repeat(63)}.example`, `${'a'.repeat(63)}.example`],
  ]
  for (const [name, want] of cases) t.equal(safeHostName(name), want, name)
  // 4 labels of 63 plus 3 dots: 255 > 253; 3 labels of 63 and one of 61: exactly 253.
  const max = [63, 63, 63, 61].map(n => 'a'.repeat(n)).join('.')
  t.equal(max.length, 253)
  t.equal(safeHostName(max), max, 'a 253-character name is fine')
  t.equal(safeHostName(max + '.'), max, 'also with its trailing dot')
})

t.test('safeHostName refuses what a hostile reverse zone could put into a variable', async t => {
  const bad = [
    '',
    '.',
    'evil\n.example.org',
    'evil\r\nX-Header: 1',
    'tab\there.example',
    'with space.example',
    'a;rm -rf /.example',
    '$(reboot).example',
    '`id`.example',
    'back\\slash.example',
    'under_score.example',
    '-leading.example',
    'trailing-.example',
    'double..dot.example',
    'nul\u0000.example',
    'ümlaut.example',
    '192.0.2.7',
    '127.0.0.1',
    '::1',
    '2001:db8::1',
    `${'a'.repeat(64)}.example`,
    [63, 63, 63, 62].map(n => 'a'.repeat(n)).join('.'),
  ]
  for (const name of bad) t.equal(safeHostName(name), null, JSON.stringify(name))
})

/** A forward lookup that confirms every name for `ips`. */
const confirms = (...ips: string[]) => async (): Promise<string[]> => ips

/** The name `names` gives for `ip` within `ms`. */
const nameOf = (names: ClientNames, ip: string, ms = 1000): Promise<string> => names.name(ip, ms)

t.test('ClientNames returns a valid, forward-confirmed name the lookup gives, in lower case', async t => {
  const asked: string[] = []
  const forwarded: string[] = []
  const names = new ClientNames(
    async ip => {
      asked.push(ip)
      return 'Client.Example.ORG.'
    },
    async name => {
      forwarded.push(name)
      return ['198.51.100.9', '192.0.2.7']
    },
  )
  t.equal(await nameOf(names, '192.0.2.7'), 'client.example.org')
  t.same(asked, ['192.0.2.7'])
  t.same(forwarded, ['client.example.org'], 'the forward lookup is of the cleaned name')
})

t.test('ClientNames: a PTR name whose addresses do not include the client is not taken (FCrDNS)', async t => {
  const names = new ClientNames(async () => 'www.bank.example', confirms('203.0.113.1'))
  t.equal(await nameOf(names, '192.0.2.7'), '192.0.2.7')
  const failing = new ClientNames(async () => 'gone.example', async () => {
    throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' })
  })
  t.equal(await nameOf(failing, '192.0.2.7'), '192.0.2.7', 'a name without addresses neither')
  const v6 = new ClientNames(async () => 'six.example', confirms('2001:DB8:0::7'))
  t.equal(await nameOf(v6, '2001:db8::7'), 'six.example', 'addresses compare in canonical form')
})

t.test('ClientNames falls back to the IP for an invalid name or a failed lookup', async t => {
  const all = confirms('192.0.2.7', '2001:db8::7')
  t.equal(await nameOf(new ClientNames(async () => 'evil;$(id)', all), '192.0.2.7'), '192.0.2.7')
  t.equal(await nameOf(new ClientNames(async () => '10.0.0.1', all), '192.0.2.7'), '192.0.2.7', 'an address is no name')
  const notFound = new ClientNames(async () => {
    throw Object.assign(new Error('getnameinfo ENOTFOUND'), { code: 'ENOTFOUND' })
  }, all)
  t.equal(await nameOf(notFound, '2001:db8::7'), '2001:db8::7')
})

t.test('ClientNames gives the IP when the lookup is slower than the timeout, within about the timeout', async t => {
  let timer: NodeJS.Timeout | undefined
  t.teardown(() => clearTimeout(timer))
  const start = performance.now()
  const slow = new ClientNames(() => new Promise(resolve => (timer = setTimeout(() => resolve('late.example'), 3000))), confirms('192.0.2.7'))
  const name = await nameOf(slow, '192.0.2.7', 200)
  const ms = performance.now() - start
  t.equal(name, '192.0.2.7')
  t.ok(ms >= 190 && ms < 1000, `answered after ${Math.round(ms)} ms`)
})

t.test('ClientNames does not keep the process waiting once it has an answer', async t => {
  // A fast answer clears the timer: with a 60 s timeout left running, this
  // test file would not exit until tap's own timeout killed it.
  t.equal(await nameOf(new ClientNames(async () => 'fast.example', confirms('192.0.2.7')), '192.0.2.7', 60_000), 'fast.example')
})

t.test('ClientNames runs at most `concurrency` lookups; one that waited too long is dropped, a hung one keeps its place', async t => {
  t.equal(NAME_LOOKUPS, 2)
  const hung: Array<(name: string) => void> = []
  const asked: string[] = []
  const names = new ClientNames(
    ip => {
      asked.push(ip)
      // The first two never answer in time (a PTR query into the void), the rest at once.
      return asked.length <= 2 ? new Promise(resolve => hung.push(resolve)) : Promise.resolve(`h${ip.split('.')[3]}.example`)
    },
    async name => [`192.0.2.${name.slice(1, name.indexOf('.'))}`],
  )
  const start = performance.now()
  // Forty clients at once, each allowed 300 ms.
  const got = await Promise.all(Array.from({ length: 40 }, (_, i) => nameOf(names, `192.0.2.${i + 1}`, 300)))
  const ms = performance.now() - start
  t.same(got, Array.from({ length: 40 }, (_, i) => `192.0.2.${i + 1}`), 'every client went on with its IP')
  t.ok(ms < 1500, `all within about the bound (${Math.round(ms)} ms)`)
  t.same(asked, ['192.0.2.1', '192.0.2.2'], 'only two lookups ever ran: the others waited, then were dropped')
  // The hung lookups answer at last: their places are free again.
  for (const h of hung) h('late.example')
  t.equal(await nameOf(names, '192.0.2.77'), 'h77.example', 'a later client gets its name')
  t.same(asked.length, 3)
})

t.test('ClientNames: a waiting lookup runs when a place frees up within its bound', async t => {
  let release!: (name: string) => void
  const names = new ClientNames(
    ip => (ip === '192.0.2.1' ? new Promise<string>(resolve => (release = resolve)) : Promise.resolve('second.example')),
    async name => (name === 'first.example' ? ['192.0.2.1'] : ['192.0.2.2']),
    1,
  )
  const first = nameOf(names, '192.0.2.1', 5000)
  const second = nameOf(names, '192.0.2.2', 5000)
  await new Promise(r => setTimeout(r, 50))
  release('first.example')
  t.same(await Promise.all([first, second]), ['first.example', 'second.example'])
})

t.test('the system lookup (getnameinfo, then getaddrinfo) answers for 127.0.0.1 with localhost or the address', async t => {
  const name = await nameOf(new ClientNames(systemReverse, systemForward), '127.0.0.1', 2000)
  t.ok(name === 'localhost' || name === '127.0.0.1', `got ${name}`)
  t.equal(await nameOf(new ClientNames(), '127.0.0.1', 2000), name, 'it is the default lookup')
})
