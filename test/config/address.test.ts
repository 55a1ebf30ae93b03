/**
 * The address forms a user writes: server lists, listen specs, interfaces,
 * and the canonical IP text selection compares.
 */
import t from 'tap'
import {
  canonicalIp,
  formatIPv6,
  ipv6Groups,
  formatHostPort,
  hostNamePattern,
  isWildcard,
  parseHost,
  parseInterface,
  parseListenSpec,
  parseServerList,
} from '../../lib/config/address.js'
import type { PortLookup } from '../../lib/config/port-names.js'

const lookup: PortLookup = name => ({ smtp: 25, http: 80, 'http-alt': 8080 })[name]

const bad = (message: string) => ({ name: 'TcpproxyError', code: 'ERR_CONFIG', message })

t.test('canonicalIp compresses IPv6 and writes it in lower case', async t => {
  t.equal(canonicalIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1')
  t.equal(canonicalIp('0:0:0:0:0:0:0:1'), '::1')
  t.equal(canonicalIp('FE80:0000::00AB'), 'fe80::ab')
  t.equal(canonicalIp('::'), '::')
})

t.test('canonicalIp turns IPv4-mapped IPv6 into plain IPv4', async t => {
  t.equal(canonicalIp('::ffff:127.0.0.2'), '127.0.0.2')
  t.equal(canonicalIp('::FFFF:7F00:2'), '127.0.0.2')
  t.equal(canonicalIp('0:0:0:0:0:ffff:c0a8:1ff'), '192.168.1.255')
  t.equal(canonicalIp('::ffff:0.0.0.0'), '0.0.0.0')
  t.equal(canonicalIp('::127.0.0.1'), '::127.0.0.1', 'IPv4-compatible (not mapped) stays IPv6, dotted as Node writes it')
})

t.test('canonicalIp writes IPv6 as Node does: the first longest zero run as "::", none for a single zero', async t => {
  t.equal(canonicalIp('1:0:0:0:0:0:0:0'), '1::')
  t.equal(canonicalIp('1:0:1:0:1:0:1:0'), '1:0:1:0:1:0:1:0')
  t.equal(canonicalIp('1:0:0:1:0:0:0:1'), '1:0:0:1::1')
  t.equal(canonicalIp('1:0:0:1:0:0:1:1'), '1::1:0:0:1:1')
  t.equal(canonicalIp('::ffff:0:1.2.3.4'), '::ffff:0:102:304', 'only ::ffff:a.b.c.d is IPv4-mapped')
})

t.test('ipv6Groups and formatIPv6: text to the eight groups and back', async t => {
  t.same(ipv6Groups('2001:DB8::1'), [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1])
  t.same(ipv6Groups('::ffff:192.0.2.1'), [0, 0, 0, 0, 0, 0xffff, 0xc000, 0x201])
  t.same(ipv6Groups('1:2:3:4:5:6:7:8'), [1, 2, 3, 4, 5, 6, 7, 8])
  t.equal(formatIPv6([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x201]), '::ffff:192.0.2.1')
  t.equal(formatIPv6([0, 0, 0, 0, 0, 0, 0, 0]), '::')
})

t.test('canonicalIp keeps the zone of a link-local address as Node reports it', async t => {
  t.equal(canonicalIp('FE80:0:0:0:0:0:0:1%eth0'), 'fe80::1%eth0')
  t.equal(canonicalIp('fe80::1%2'), 'fe80::1%2')
})

t.test('canonicalIp leaves IPv4 addresses and non-addresses unchanged', async t => {
  t.equal(canonicalIp('127.0.0.1'), '127.0.0.1')
  t.equal(canonicalIp('10.1.2.3'), '10.1.2.3')
  t.equal(canonicalIp('mail.example.org'), 'mail.example.org')
})

t.test('formatHostPort brackets IPv6 addresses only', async t => {
  t.equal(formatHostPort('::1', 25), '[::1]:25')
  t.equal(formatHostPort('127.0.0.1', 25), '127.0.0.1:25')
  t.equal(formatHostPort('localhost', 8025), 'localhost:8025')
})

t.test('isWildcard knows every word for "any address"', async t => {
  for (const w of ['', '*', 'any', '0.0.0.0', '::', '[::]']) t.equal(isWildcard(w), true, JSON.stringify(w))
  for (const w of ['127.0.0.1', '::1', 'localhost', 'ANY', '[::1]']) t.equal(isWildcard(w), false, JSON.stringify(w))
})

t.test('parseHost accepts IP addresses, bracketed IPv6 and host names', async t => {
  t.equal(parseHost('127.0.0.1'), '127.0.0.1')
  t.equal(parseHost('[::1]'), '::1')
  t.equal(parseHost('::FFFF:127.0.0.1'), '127.0.0.1')
  t.equal(parseHost('Mail.Example.ORG'), 'mail.example.org')
  t.equal(parseHost('localhost.'), 'localhost.')
  t.equal(parseHost('under_score-1.example'), 'under_score-1.example')
  t.equal(parseHost(`${'a'.repeat(63)}.example`), `${'a'.repeat(63)}.example`, 'a 63-character label')
  const long = Array.from({ length: 4 }, () => 'b'.repeat(62)).join('.') + '.c' // 253 characters
  t.equal(parseHost(long), long)
})

t.test('parseHost refuses what is neither an address nor a host name', async t => {
  t.throws(() => parseHost('bad host'), bad('bad host name or address: "bad host"'))
  t.throws(() => parseHost('-leading.example'), bad('bad host name or address: "-leading.example"'))
  t.throws(() => parseHost('[mail.example.org]'), bad('bad host name or address: "[mail.example.org]"'))
  t.throws(() => parseHost('[]'), bad('bad host name or address: "[]"'))
  t.throws(() => parseHost('a..b'), bad('bad host name or address: "a..b"'))
  t.throws(() => parseHost(`${'a'.repeat(64)}.example`), bad(`bad host name or address: "${'a'.repeat(64)}.example"`))
  t.throws(() => parseHost('1:2:3'), bad('bad host name or address: "1:2:3"'))
  const tooLong = Array.from({ length: 4 }, () => 'b'.repeat(62)).join('.') + '.cd' // 254 characters
  t.throws(() => parseHost(tooLong), bad(`bad host name or address: "${tooLong}"`))
})

t.test('parseServerList reads host, host:port and [v6]:port items', async t => {
  t.same(parseServerList('mail.example.org', lookup), [{ host: 'mail.example.org', port: null }])
  t.same(parseServerList('127.0.0.1:25', lookup), [{ host: '127.0.0.1', port: 25 }])
  t.same(parseServerList('[2001:DB8::1]:8025', lookup), [{ host: '2001:db8::1', port: 8025 }])
  t.same(parseServerList('[::1]', lookup), [{ host: '::1', port: null }])
})

t.test('parseServerList takes a bare IPv6 address as a host without port', async t => {
  t.same(parseServerList('2001:db8::25', lookup), [{ host: '2001:db8::25', port: null }])
  t.same(parseServerList('::ffff:10.0.0.1', lookup), [{ host: '10.0.0.1', port: null }])
})

t.test('parseServerList reads comma lists in order, blanks around commas allowed', async t => {
  t.same(parseServerList('a.example:25, 127.0.0.1 ,[::1]:http,b.example', lookup), [
    { host: 'a.example', port: 25 },
    { host: '127.0.0.1', port: null },
    { host: '::1', port: 80 },
    { host: 'b.example', port: null },
  ])
})

t.test('parseServerList resolves service names as ports', async t => {
  t.same(parseServerList('127.0.0.1:smtp,localhost:http-alt', lookup), [
    { host: '127.0.0.1', port: 25 },
    { host: 'localhost', port: 8080 },
  ])
})

t.test('parseServerList refuses empty items', async t => {
  t.throws(() => parseServerList('', lookup), bad('empty item in server list ""'))
  t.throws(() => parseServerList('a.example,,b.example', lookup), bad('empty item in server list "a.example,,b.example"'))
  t.throws(() => parseServerList('a.example, ', lookup), bad('empty item in server list "a.example, "'))
})

t.test('parseServerList refuses a missing or bad host', async t => {
  t.throws(() => parseServerList(':25', lookup), bad('missing host in ":25"'))
  t.throws(() => parseServerList('ok.example,bad!host:25', lookup), bad('bad host name or address: "bad!host"'))
  t.throws(() => parseServerList('1.2.3.4:25:26', lookup), bad('bad host name or address: "1.2.3.4:25:26"'))
})

t.test('parseServerList refuses bad ports', async t => {
  t.throws(() => parseServerList('127.0.0.1:0', lookup), bad('port 0 is out of range (1-65535)'))
  t.throws(() => parseServerList('127.0.0.1:65536', lookup), bad('port 65536 is out of range (1-65535)'))
  t.throws(() => parseServerList('127.0.0.1:nosuch', lookup), bad('unknown port or service name: "nosuch"'))
  t.throws(() => parseServerList('127.0.0.1:', lookup), bad('unknown port or service name: ""'))
  t.throws(() => parseServerList('[::1]:', lookup), bad('unknown port or service name: ""'))
})

t.test('parseServerList refuses a bracket that is not closed or followed by junk', async t => {
  t.throws(() => parseServerList('[::1:25', lookup), bad('missing "]" in "[::1:25"'))
  t.throws(() => parseServerList('[::1]25', lookup), bad('unexpected text after "]" in "[::1]25"'))
})

t.test('parseInterface maps the wildcard words to null and canonicalises addresses', async t => {
  t.equal(parseInterface('*'), null)
  t.equal(parseInterface('any'), null)
  t.equal(parseInterface('0.0.0.0'), null)
  t.equal(parseInterface('[::]'), null)
  t.equal(parseInterface('::FFFF:127.0.0.2'), '127.0.0.2')
  t.equal(parseInterface('[::1]'), '::1')
  t.equal(parseInterface('Mail.Example.org'), 'mail.example.org')
  t.throws(() => parseInterface('no/such'), bad('bad host name or address: "no/such"'))
})

t.test('parseListenSpec takes a lone port or service name as every interface', async t => {
  t.same(parseListenSpec('8025', lookup), { address: null, port: 8025 })
  t.same(parseListenSpec('smtp', lookup), { address: null, port: 25 })
})

t.test('parseListenSpec reads interface:port with IPv4, [IPv6], names and wildcards', async t => {
  t.same(parseListenSpec('127.0.0.1:8025', lookup), { address: '127.0.0.1', port: 8025 })
  t.same(parseListenSpec('[::1]:8025', lookup), { address: '::1', port: 8025 })
  t.same(parseListenSpec('[::ffff:127.0.0.2]:smtp', lookup), { address: '127.0.0.2', port: 25 })
  t.same(parseListenSpec('localhost:8025', lookup), { address: 'localhost', port: 8025 })
  t.same(parseListenSpec('*:8025', lookup), { address: null, port: 8025 })
  t.same(parseListenSpec('[::]:8025', lookup), { address: null, port: 8025 })
  t.same(parseListenSpec(':8025', lookup), { address: null, port: 8025 })
})

t.test('parseListenSpec needs a port after an IPv6 interface', async t => {
  t.throws(() => parseListenSpec('[::1]', lookup), bad('missing port in "[::1]"'))
  t.throws(() => parseListenSpec('::1', lookup), bad('missing port in "::1"'))
})

t.test('parseListenSpec refuses bad ports and bad interfaces', async t => {
  t.throws(() => parseListenSpec('0', lookup), bad('port 0 is out of range (1-65535)'))
  t.throws(() => parseListenSpec('nosuch', lookup), bad('unknown port or service name: "nosuch"'))
  t.throws(() => parseListenSpec('127.0.0.1:99999', lookup), bad('port 99999 is out of range (1-65535)'))
  t.throws(() => parseListenSpec('127.0.0.1:', lookup), bad('unknown port or service name: ""'))
  t.throws(() => parseListenSpec('bad host:25', lookup), bad('bad host name or address: "bad host"'))
  t.throws(() => parseListenSpec('[::1:25', lookup), bad('missing "]" in "[::1:25"'))
})

t.test('hostNamePattern: "_" and a final dot only when asked; labels of 63, names of 253 either way', async t => {
  const config = hostNamePattern({ underscore: true, finalDot: true })
  const strict = hostNamePattern({ underscore: false, finalDot: false })
  for (const p of [config, strict]) {
    for (const ok of ['a', 'Mail.Example.ORG', 'x-1.example', `${'a'.repeat(63)}.org`, `${'a.'.repeat(126)}a`]) t.ok(p.test(ok), ok)
    for (const no of ['', '-a', 'a-', 'a..b', '.a', `${'a'.repeat(64)}.org`, `${'a.'.repeat(126)}ab`, 'a b', 'a!b']) t.notOk(p.test(no), no)
  }
  t.ok(config.test('_srv._tcp.example'))
  t.notOk(strict.test('_srv._tcp.example'), 'no "_" in a name passed on to programs')
  t.ok(config.test('mail.example.org.'))
  t.notOk(strict.test('mail.example.org.'))
  t.notOk(config.test('mail.example.org..'), 'one final dot at most')
})
