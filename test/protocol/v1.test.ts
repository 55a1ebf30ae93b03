import { SocketAddress } from 'node:net'
import fc from 'fast-check'
import t from 'tap'
import { parseProxyHeader } from '../../lib/protocol/parse.js'
import { PROXY_V1_MAX, formatProxyV1 } from '../../lib/protocol/v1.js'
import { FC, HAPROXY_V1, assertPrefixesIncomplete, assertRejects, bin, complete, v4, v6 } from '../fixtures/proxy-headers.js'

t.test('v1: valid lines', async t => {
  t.test('the HAProxy capture, followed by data', async t => {
    const h = complete(`${HAPROXY_V1}GET / HTTP/1.1\r\n`)
    t.same(h, {
      version: 1,
      command: 'PROXY',
      addresses: v4('127.0.0.1', 37958, '127.0.0.1', 19141),
      tlvs: [],
      length: 44,
    })
    assertPrefixesIncomplete(t, bin(HAPROXY_V1))
  })

  t.test('TCP4 extremes', async t => {
    const line = 'PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n'
    t.same(complete(line).addresses, v4('255.255.255.255', 65535, '0.0.0.0', 0))
    t.equal(complete(line).length, line.length)
    assertPrefixesIncomplete(t, bin(line))
  })

  t.test('TCP6, normalised to Node canonical text', async t => {
    const line = 'PROXY TCP6 FE80:0000:0000:0000:0000:0000:0000:0001 ::FFFF:192.0.2.1 443 8443\r\n'
    const h = complete(line)
    t.same(h.addresses, v6('fe80::1', 443, '::ffff:192.0.2.1', 8443))
    t.equal(h.length, line.length)
    assertPrefixesIncomplete(t, bin(line))
    const cases: Array<[string, string]> = [
      ['0:0:0:0:0:0:0:1', '::1'],
      ['0:0:0:0:0:0:0:0', '::'],
      ['1::', '1::'],
      ['1:0:0:1:0:0:0:1', '1:0:0:1::1'],
      ['1:0:0:1:1:0:0:1', '1::1:1:0:0:1'],
      ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
      ['0:0:0:0:0:ffff:0102:0304', '::ffff:1.2.3.4'],
      ['::1.2.3.4', '::1.2.3.4'],
      ['::0.0.0.1', '::1'],
      ['::ffff:0:1.2.3.4', '::ffff:0:102:304'],
      ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
      ['1:2:3:4:5::1.2.3.4', '1:2:3:4:5:0:102:304'],
      ['::1:2:3:4:5:6:7', '0:1:2:3:4:5:6:7'],
      ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
      ['2001:DB8::A', '2001:db8::a'],
    ]
    for (const [given, canonical] of cases) {
      const got = complete(`PROXY TCP6 ${given} ::1 1 2\r\n`).addresses?.sourceAddress
      t.equal(got, canonical, given)
      t.equal(got, new SocketAddress({ address: given, family: 'ipv6' }).address, `${given} as Node prints it`)
    }
  })

  t.test('UNKNOWN, short form and with ignored addresses', async t => {
    t.same(complete('PROXY UNKNOWN\r\nhello'), { version: 1, command: 'PROXY', addresses: null, tlvs: [], length: 15 })
    const long = 'PROXY UNKNOWN ffff:f:f:f:f:f:f:ffff ffff:f:f:f:f:f:f:ffff 65535 65535\r\n'
    t.same(complete(long), { version: 1, command: 'PROXY', addresses: null, tlvs: [], length: long.length })
    // §2.1: the receiver must ignore anything before the CRLF, even if it is not an address.
    t.equal(complete('PROXY UNKNOWN \r\n').length, 16)
    const junk = 'PROXY UNKNOWN junk \x00\xff  \r\n'
    t.equal(complete(junk).length, junk.length)
    assertPrefixesIncomplete(t, bin(long))
  })

  t.test('the worst case of §2.1 is exactly 107 bytes and accepted', async t => {
    const full = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'
    const line = `PROXY UNKNOWN ${full} ${full} 65535 65535\r\n`
    t.equal(line.length, PROXY_V1_MAX)
    t.equal(complete(line).length, 107)
    assertPrefixesIncomplete(t, bin(line))
  })
})

t.test('v1: invalid lines are rejected at the offending byte', async t => {
  const cases: Array<[string, string, string, number]> = [
    ['not PROXY at all', 'GET / HTTP/1.1\r\n', 'not a PROXY header', 0],
    ['wrong magic', 'PROXX TCP4', 'not a PROXY header', 4],
    ['no space after PROXY', 'PROXY\r\n', 'not a PROXY header', 5],
    ['double space before protocol', 'PROXY  TCP4', 'more than one space between fields', 6],
    ['lower-case protocol', 'PROXY tcp4 ', 'unknown protocol (expected TCP4, TCP6 or UNKNOWN)', 6],
    ['UDP4', 'PROXY UDP4 ', 'unknown protocol (expected TCP4, TCP6 or UNKNOWN)', 7],
    ['TCP5', 'PROXY TCP5 ', 'unknown protocol (expected TCP4, TCP6 or UNKNOWN)', 9],
    ['truncated protocol', 'PROXY TCP 1.2.3.4', 'unknown protocol (expected TCP4, TCP6 or UNKNOWN)', 9],
    ['UNKNOWN glued to text', 'PROXY UNKNOWNX\r\n', 'unknown protocol (expected TCP4, TCP6 or UNKNOWN)', 13],
    ['missing protocol', 'PROXY \r\n', 'missing protocol', 6],
    ['protocol only', 'PROXY TCP4\r\n', 'missing source address', 10],
    ['leading zero in address', 'PROXY TCP4 127.0.0.01 127.0.0.1 1 2\r\n', 'leading zero in IPv4 address', 20],
    ['leading zero in first octet', 'PROXY TCP4 01.0.0.1 ', 'leading zero in IPv4 address', 12],
    ['leading zero in source port', 'PROXY TCP4 1.2.3.4 5.6.7.8 080 80\r\n', 'leading zero in port', 28],
    ['leading zero in destination port', 'PROXY TCP4 1.2.3.4 5.6.7.8 80 00\r\n', 'leading zero in port', 31],
    ['port 65536', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n', 'port greater than 65535', 33],
    ['port 99999', 'PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n', 'port greater than 65535', 31],
    ['signed port', 'PROXY TCP4 1.2.3.4 5.6.7.8 +1 1\r\n', 'invalid character in port', 27],
    ['octet 256', 'PROXY TCP4 1.2.3.256 ', 'IPv4 octet greater than 255', 19],
    ['three octets', 'PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n', 'IPv4 address needs 4 octets', 16],
    ['trailing dot', 'PROXY TCP4 1.2.3. ', 'IPv4 address needs 4 octets', 17],
    ['five octets', 'PROXY TCP4 1.2.3.4.5 ', 'more than 4 octets in IPv4 address', 18],
    ['empty octet', 'PROXY TCP4 1..2.3 ', 'empty octet in IPv4 address', 13],
    ['leading dot', 'PROXY TCP4 .1.2.3 ', 'empty octet in IPv4 address', 11],
    ['letter in IPv4', 'PROXY TCP4 1.2.3.4x ', 'invalid character in IPv4 address', 18],
    ['TCP4 with IPv6 source', 'PROXY TCP4 ::1 ::1 1 2\r\n', 'address family does not match TCP4', 11],
    ['TCP4 with IPv6 destination', 'PROXY TCP4 1.2.3.4 fe80::1 1 2\r\n', 'address family does not match TCP4', 19],
    ['TCP6 with IPv4 source', 'PROXY TCP6 192.0.2.1 ::1 1 2\r\n', 'address family does not match TCP6', 14],
    ['TCP6 with IPv4 destination', 'PROXY TCP6 ::1 10.0.0.1 1 2\r\n', 'address family does not match TCP6', 17],
    ['TCP6 with a bare number', 'PROXY TCP6 1 ::1 1 2\r\n', 'IPv6 address shorter than 128 bits', 12],
    ['two ::', 'PROXY TCP6 1::2::3 ', 'more than one "::" in IPv6 address', 16],
    [':::', 'PROXY TCP6 ::: ', 'more than one "::" in IPv6 address', 13],
    ['5-digit group', 'PROXY TCP6 12345:: ', 'IPv6 group longer than 4 hex digits', 15],
    ['single leading colon', 'PROXY TCP6 :1::2 ', 'IPv6 address starts with a single ":"', 12],
    ['lone colon', 'PROXY TCP6 : ', 'IPv6 address ends with a single ":"', 12],
    ['single trailing colon', 'PROXY TCP6 1:2:3:4:5:6:7: ', 'IPv6 address ends with a single ":"', 25],
    ['seven groups', 'PROXY TCP6 1:2:3:4:5:6:7 ', 'IPv6 address shorter than 128 bits', 24],
    ['nine groups', 'PROXY TCP6 1:2:3:4:5:6:7:8:9 ', 'IPv6 address longer than 128 bits', 26],
    ['eight groups and ::', 'PROXY TCP6 1:2:3:4:5:6:7::8 ', 'IPv6 address longer than 128 bits', 26],
    ['eight groups and :: (colon)', 'PROXY TCP6 ::1:2:3:4:5:6:7: ', 'IPv6 address longer than 128 bits', 26],
    ['non-hex letter', 'PROXY TCP6 fe80::g ', 'invalid character in IPv6 address', 17],
    ['IPv4 tail after eight groups', 'PROXY TCP6 1:2:3:4:5:6:7:8.', 'IPv6 address longer than 128 bits', 26],
    ['IPv4 tail with :: too long', 'PROXY TCP6 1:2:3:4:5:6::1.', 'IPv6 address longer than 128 bits', 25],
    ['IPv4 tail too short', 'PROXY TCP6 1:2:3:4:5:1.2.3.4 ', 'IPv6 address shorter than 128 bits', 22],
    ['group after a single leading colon', 'PROXY TCP6 :1.2.3.4 ', 'IPv6 address starts with a single ":"', 12],
    ['IPv4 tail after a single leading colon', 'PROXY TCP6 :.', 'IPv6 address starts with a single ":"', 12],
    ['IPv4 tail with leading zero', 'PROXY TCP6 ::ffff:1.2.3.04 ', 'leading zero in IPv4 address', 25],
    ['IPv4 tail too short (3 octets)', 'PROXY TCP6 ::ffff:1.2.3 ', 'IPv4 address needs 4 octets', 23],
    ['IPv4 tail followed by a group', 'PROXY TCP6 ::1.2.3.4:5 ', 'invalid character in IPv4 address', 20],
    ['double space between addresses', 'PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n', 'more than one space between fields', 19],
    ['double space before CRLF', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n', 'missing destination port', 29],
    ['missing destination address', 'PROXY TCP4 1.2.3.4\r\n', 'missing destination address', 18],
    ['missing ports', 'PROXY TCP4 1.2.3.4 5.6.7.8\r\n', 'missing source port', 26],
    ['missing destination port', 'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n', 'missing destination port', 28],
    ['extra field', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n', 'expected CRLF after the destination port', 30],
    ['data without CRLF', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2GET', 'invalid character in port', 30],
    ['lone LF', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\nGET', 'LF without CR', 30],
    ['lone CR', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rGET', 'CR not followed by LF', 31],
    ['CR CR LF', 'PROXY UNKNOWN\r\r\n', 'CR not followed by LF', 14],
    ['lone LF in UNKNOWN', 'PROXY UNKNOWN\n', 'LF without CR', 13],
    ['lone LF inside the ignored UNKNOWN text', 'PROXY UNKNOWN a\nb\r\n', 'LF without CR', 15],
    ['CR inside an address', 'PROXY TCP4 1.2.3.4 5.6\r\n', 'IPv4 address needs 4 octets', 22],
    ['non-ASCII byte', 'PROXY TCP4 1.2.3.\xb9 ', 'invalid character in IPv4 address', 17],
  ]
  for (const [name, input, reason, offset] of cases) {
    t.test(name, async t => {
      assertRejects(t, input, reason, offset)
      // Nothing before the offending byte was wrong.
      t.equal(parseProxyHeader(bin(input).subarray(0, offset)).status, 'incomplete')
    })
  }

  t.test('no CRLF within 107 bytes', async t => {
    // A 108-byte line: its CR would be at index 106, one byte too late.
    const line = `PROXY UNKNOWN ${'x'.repeat(PROXY_V1_MAX + 1 - 16)}\r\n`
    t.equal(line.length, 108)
    assertRejects(t, line, 'no CRLF within 107 bytes', 105)
    assertRejects(t, 'PROXY UNKNOWN '.padEnd(106, 'x') + '\r\n', 'no CRLF within 107 bytes', 105)
    // A CR at index 106 cannot be followed by an LF inside the limit.
    assertRejects(t, 'PROXY UNKNOWN '.padEnd(105, 'x') + ' \r\n', 'no CRLF within 107 bytes', 105)
    // TCP6 with IPv4 tails can be written longer than the spec's 104 bytes; it still has to fit.
    const long = '0000:0000:0000:0000:0000:ffff:255.255.255.255'
    assertRejects(t, `PROXY TCP6 ${long} ${long} 65535 65535\r\n`, 'no CRLF within 107 bytes', 105)
    t.equal(parseProxyHeader(bin(line).subarray(0, 105)).status, 'incomplete')
  })
})

t.test('formatting', async t => {
  t.equal(formatProxyV1(null).toString('latin1'), 'PROXY UNKNOWN\r\n')
  t.equal(formatProxyV1(v4('127.0.0.1', 37958, '127.0.0.1', 19141)).toString('latin1'), HAPROXY_V1)
  t.equal(
    formatProxyV1(v6('FE80:0::0001%eth0', 1, '0:0:0:0:0:ffff:c000:201', 65535)).toString('latin1'),
    'PROXY TCP6 fe80::1 ::ffff:192.0.2.1 1 65535\r\n',
    'IPv6 canonical, zone index dropped',
  )
})

t.test('property: IPv6 text in any valid form normalises like Node', async t => {
  // Groups biased towards 0 and ffff, to exercise "::" placement and the dotted forms.
  const group = fc.oneof(fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff }))
  const spelled = fc
    .tuple(fc.array(group, { minLength: 8, maxLength: 8 }), fc.boolean(), fc.boolean())
    .map(([groups, padded, upper]) => {
      const text = groups.map(g => (padded ? g.toString(16).padStart(4, '0') : g.toString(16))).join(':')
      return upper ? text.toUpperCase() : text
    })
  fc.assert(
    fc.property(fc.oneof(spelled, fc.ipV6()), address => {
      const h = complete(`PROXY TCP6 ${address} ${address} 1 2\r\n`)
      return h.addresses?.sourceAddress === new SocketAddress({ address, family: 'ipv6' }).address
    }),
    FC,
  )
  t.pass('canonical forms agree with Node')
})
