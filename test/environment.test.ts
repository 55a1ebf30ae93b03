/**
 * lib/environment.ts: the PROXY_* variables handler and access control
 * programs get, and the client host name that goes into them.
 */
import t from 'tap'
import { clientName, connectionEnv, safeHostName, systemReverse, type ConnectionFacts } from '../lib/environment.js'

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

t.test('clientName returns a valid name the lookup gives, in lower case', async t => {
  const asked: string[] = []
  const name = await clientName('192.0.2.7', 1000, async ip => {
    asked.push(ip)
    return 'Client.Example.ORG.'
  })
  t.equal(name, 'client.example.org')
  t.same(asked, ['192.0.2.7'])
})

t.test('clientName falls back to the IP for an invalid name or a failed lookup', async t => {
  t.equal(await clientName('192.0.2.7', 1000, async () => 'evil;$(id)'), '192.0.2.7')
  t.equal(await clientName('192.0.2.7', 1000, async () => '10.0.0.1'), '192.0.2.7', 'an address is no name')
  t.equal(
    await clientName('2001:db8::7', 1000, async () => {
      throw Object.assign(new Error('getnameinfo ENOTFOUND'), { code: 'ENOTFOUND' })
    }),
    '2001:db8::7',
  )
})

t.test('clientName gives the IP when the lookup is slower than the timeout, within about the timeout', async t => {
  let timer: NodeJS.Timeout | undefined
  t.teardown(() => clearTimeout(timer))
  const start = performance.now()
  const name = await clientName('192.0.2.7', 200, () => new Promise(resolve => (timer = setTimeout(() => resolve('late.example'), 3000))))
  const ms = performance.now() - start
  t.equal(name, '192.0.2.7')
  t.ok(ms >= 190 && ms < 1000, `answered after ${Math.round(ms)} ms`)
})

t.test('clientName does not keep the process waiting once it has an answer', async t => {
  // A fast answer clears the timer: with a 60 s timeout left running, this
  // test file would not exit until tap's own timeout killed it.
  t.equal(await clientName('192.0.2.7', 60_000, async () => 'fast.example'), 'fast.example')
})

t.test('the system lookup (getnameinfo) answers for 127.0.0.1 with localhost or the address', async t => {
  const name = await clientName('127.0.0.1', 2000, systemReverse)
  t.ok(name === 'localhost' || name === '127.0.0.1', `got ${name}`)
  t.equal(await clientName('127.0.0.1', 2000), name, 'it is the default lookup')
})
