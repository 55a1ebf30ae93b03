import { SocketAddress } from 'node:net'
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { ProxyHeaderError, TcpproxyError } from '../../lib/errors.js'
import {
  PROXY_V1_MAX,
  crc32c,
  formatProxyV1,
  formatProxyV2,
  parseProxyHeader,
  type ProxyAddresses,
  type ProxyHeader,
} from '../../lib/protocol/proxy-protocol.js'

// Fixed seed and bounded runs: the property tests are reproducible and fast.
const FC = { seed: 42, numRuns: 2000 } as const

const SIGNATURE = '0d0a0d0a000d0a515549540a'
/** HAProxy 2.6 send-proxy-v2 capture: PROXY, TCP4, 127.0.0.1:39780 -> 127.0.0.1:19142 (peers.md §5). */
const HAPROXY_V2 = `${SIGNATURE}2111000c7f0000017f0000019b644ac6`
/** HAProxy 2.6 send-proxy capture (peers.md §5). */
const HAPROXY_V1 = 'PROXY TCP4 127.0.0.1 127.0.0.1 37958 19141\r\n'

const bin = (input: string | Buffer): Buffer => (typeof input === 'string' ? Buffer.from(input, 'latin1') : input)
const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex')

function complete(input: string | Buffer): ProxyHeader {
  const result = parseProxyHeader(bin(input))
  if (result.status !== 'complete') throw new Error(`expected a complete header, got ${result.status}`)
  return result.header
}

/** The ProxyHeaderError parsing `input` throws (fails the test when it does not). */
function rejection(input: string | Buffer): ProxyHeaderError {
  try {
    parseProxyHeader(bin(input))
  } catch (err) {
    if (err instanceof ProxyHeaderError) return err
    throw err
  }
  throw new Error(`expected ${JSON.stringify(bin(input).toString('latin1'))} to be rejected`)
}

function assertRejects(tt: Test, input: string | Buffer, reason: string, offset: number): void {
  const err = rejection(input)
  tt.equal(err.message, `bad PROXY header at byte ${offset}: ${reason}`, JSON.stringify(bin(input).toString('latin1')))
  tt.equal(err.offset, offset)
  tt.equal(err.code, 'ERR_PROXY_HEADER')
}

/** Every proper prefix of a valid header is "incomplete": the parser can be called after each read. */
function assertPrefixesIncomplete(tt: Test, header: Buffer): void {
  const bad = []
  for (let n = 0; n < header.length; n++) {
    if (parseProxyHeader(header.subarray(0, n)).status !== 'incomplete') bad.push(n)
  }
  tt.same(bad, [], 'every prefix is incomplete')
}

const v4 = (s: string, sp: number, d: string, dp: number): ProxyAddresses => ({
  family: 'IPv4',
  sourceAddress: s,
  sourcePort: sp,
  destinationAddress: d,
  destinationPort: dp,
})
const v6 = (s: string, sp: number, d: string, dp: number): ProxyAddresses => ({ ...v4(s, sp, d, dp), family: 'IPv6' })

/** A v2 header: version/command byte, family byte, then the block after the 16-byte fixed part. */
function v2(verCmd: number, fam: number, block: string | Buffer = '', lengthOverride?: number): Buffer {
  const body = typeof block === 'string' ? hex(block) : block
  const fixed = Buffer.alloc(4)
  fixed[0] = verCmd
  fixed[1] = fam
  fixed.writeUInt16BE(lengthOverride ?? body.length, 2)
  return Buffer.concat([hex(SIGNATURE), fixed, body])
}
const TCP4_BLOCK = '7f000001 7f000001 9b64 4ac6'

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

t.test('v2: valid headers', async t => {
  t.test('the HAProxy TCP4 capture, followed by data', async t => {
    const wire = hex(HAPROXY_V2)
    const h = complete(Buffer.concat([wire, bin('SSH-2.0-x\r\n')]))
    t.same(h, {
      version: 2,
      command: 'PROXY',
      addresses: v4('127.0.0.1', 39780, '127.0.0.1', 19142),
      tlvs: [],
      length: 28,
    })
    assertPrefixesIncomplete(t, wire)
  })

  t.test('TCP6', async t => {
    const block = '20010db8000000000000000000000001 00000000000000000000ffffc0000201 0050 01bb'
    const wire = v2(0x21, 0x21, block)
    t.same(complete(wire), {
      version: 2,
      command: 'PROXY',
      addresses: v6('2001:db8::1', 80, '::ffff:192.0.2.1', 443),
      tlvs: [],
      length: 52,
    })
    assertPrefixesIncomplete(t, wire)
  })

  t.test('LOCAL: addresses null, the block skipped whatever it holds', async t => {
    t.same(complete(v2(0x20, 0x00)), { version: 2, command: 'LOCAL', addresses: null, tlvs: [], length: 16 })
    // §2.2: with LOCAL the family is ignored and the length still honoured.
    const odd = v2(0x20, 0xff, 'deadbeef 0300 ff')
    t.same(complete(Buffer.concat([odd, bin('data')])), {
      version: 2,
      command: 'LOCAL',
      addresses: null,
      tlvs: [],
      length: 23,
    })
    t.equal(complete(v2(0x20, 0x12)).command, 'LOCAL', 'UDP is ignored with LOCAL')
    assertPrefixesIncomplete(t, odd)
  })

  t.test('UNSPEC and UNIX with PROXY: addresses null', async t => {
    t.same(complete(v2(0x21, 0x00)), { version: 2, command: 'PROXY', addresses: null, tlvs: [], length: 16 })
    const unix = Buffer.alloc(216)
    unix.write('/run/client.sock')
    for (const fam of [0x31, 0x32]) {
      const wire = v2(0x21, fam, unix)
      t.same(complete(wire), { version: 2, command: 'PROXY', addresses: null, tlvs: [], length: 232 })
      assertPrefixesIncomplete(t, wire)
    }
  })

  t.test('TLVs are kept in order, unknown ones included', async t => {
    const wire = v2(0x21, 0x11, `${TCP4_BLOCK} e00003616263 040000 02000b6578616d706c652e636f6d`)
    const h = complete(wire)
    t.same(
      h.tlvs.map(x => [x.type, x.value.toString('latin1')]),
      [
        [0xe0, 'abc'],
        [0x04, ''],
        [0x02, 'example.com'],
      ],
    )
    t.same(h.addresses, v4('127.0.0.1', 39780, '127.0.0.1', 19142))
    t.equal(h.length, wire.length)
    // TLV values are copies: reusing the input buffer does not change them.
    wire.fill(0)
    t.equal(h.tlvs[0]?.value.toString('latin1'), 'abc')
  })

  t.test('TLVs after UNSPEC and UNIX addresses', async t => {
    t.same(complete(v2(0x21, 0x00, 'e1 0001 ff')).tlvs, [{ type: 0xe1, value: hex('ff') }])
    const wire = v2(0x21, 0x31, Buffer.concat([Buffer.alloc(216), hex('e20000')]))
    t.same(complete(wire).tlvs, [{ type: 0xe2, value: Buffer.alloc(0) }])
  })

  t.test('a good CRC32C is accepted and kept', async t => {
    const wire = formatProxyV2(v4('192.0.2.1', 1234, '198.51.100.7', 443), { crc32c: true })
    const h = complete(wire)
    t.equal(h.tlvs.length, 1)
    t.equal(h.tlvs[0]?.type, 0x03)
    t.equal(h.tlvs[0]?.value.readUInt32BE(0), wire.readUInt32BE(wire.length - 4))
    assertPrefixesIncomplete(t, wire)
    // Checksum verified with a TLV after it: the whole header counts.
    const block = Buffer.concat([hex(TCP4_BLOCK), hex('03 0004 00000000 e0 0001 61')])
    const withTail = v2(0x21, 0x11, block)
    withTail.writeUInt32BE(crc32c(withTail), 31)
    t.equal(complete(withTail).tlvs.length, 2)
  })

  t.test('the largest header: 16 + 65535 bytes', async t => {
    const block = Buffer.alloc(0xffff)
    block[0] = 0xee
    block.writeUInt16BE(0xffff - 3, 1)
    const wire = v2(0x21, 0x00, block)
    t.equal(wire.length, 65551)
    const h = complete(Buffer.concat([wire, bin('x')]))
    t.equal(h.length, 65551)
    t.equal(h.tlvs[0]?.value.length, 65532)
    t.equal(parseProxyHeader(wire.subarray(0, 65550)).status, 'incomplete')
  })
})

t.test('v2: invalid headers', async t => {
  t.test('bad signature, at each byte', async t => {
    const good = hex(HAPROXY_V2)
    for (let i = 0; i < 12; i++) {
      const bad = Buffer.from(good)
      bad[i] = bad[i]! ^ 0x40
      // A changed first byte may even read as neither version.
      assertRejects(t, bad, 'not a PROXY header', i)
    }
  })

  const cases: Array<[string, Buffer, string, number]> = [
    ['version 1', v2(0x11, 0x11, TCP4_BLOCK), 'bad version 1', 12],
    ['version 3', v2(0x31, 0x11, TCP4_BLOCK), 'bad version 3', 12],
    ['version 0', v2(0x01, 0x11, TCP4_BLOCK), 'bad version 0', 12],
    ['command 2', v2(0x22, 0x11, TCP4_BLOCK), 'bad command 2', 12],
    ['command 15', v2(0x2f, 0x11, TCP4_BLOCK), 'bad command 15', 12],
    ['UDP over IPv4', v2(0x21, 0x12, TCP4_BLOCK), 'UDP is not supported: tcpproxy relays TCP only', 13],
    ['UDP over IPv6', v2(0x21, 0x22, Buffer.alloc(36)), 'UDP is not supported: tcpproxy relays TCP only', 13],
    ['family 4', v2(0x21, 0x41, TCP4_BLOCK), 'bad address family and transport 0x41', 13],
    ['transport 3', v2(0x21, 0x13, TCP4_BLOCK), 'bad address family and transport 0x13', 13],
    ['UNSPEC family, STREAM transport', v2(0x21, 0x01, ''), 'bad address family and transport 0x01', 13],
    ['INET, UNSPEC transport', v2(0x21, 0x10, TCP4_BLOCK), 'bad address family and transport 0x10', 13],
    ['length too short for TCP4', v2(0x21, 0x11, TCP4_BLOCK, 11), 'length 11 too short for the 12-byte address block', 14],
    ['length too short for TCP6', v2(0x21, 0x21, Buffer.alloc(36), 35), 'length 35 too short for the 36-byte address block', 14],
    ['length too short for UNIX', v2(0x21, 0x31, Buffer.alloc(216), 0), 'length 0 too short for the 216-byte address block', 14],
    [
      'TLV overrunning the length',
      v2(0x21, 0x11, `${TCP4_BLOCK} e00004 616263`),
      'TLV 0xe0 overruns the header length',
      29,
    ],
    [
      'second TLV overrunning the length',
      v2(0x21, 0x11, `${TCP4_BLOCK} 040000 e0ffff 00`),
      'TLV 0xe0 overruns the header length',
      32,
    ],
    ['2 bytes after the addresses', v2(0x21, 0x11, `${TCP4_BLOCK} 0400`), '2 byte(s) left after the TLVs, too few for a TLV', 14],
    [
      '1 byte after a TLV',
      v2(0x21, 0x11, `${TCP4_BLOCK} 040001 00 04`),
      '1 byte(s) left after the TLVs, too few for a TLV',
      29,
    ],
    ['CRC32C TLV of 3 bytes', v2(0x21, 0x11, `${TCP4_BLOCK} 030003 000000`), 'CRC32C TLV is not 4 bytes long', 29],
  ]
  for (const [name, input, reason, offset] of cases) {
    t.test(name, async t => {
      assertRejects(t, input, reason, offset)
      t.equal(parseProxyHeader(input.subarray(0, offset)).status, 'incomplete')
    })
  }

  t.test('an overrunning TLV is rejected before the announced length has arrived', async t => {
    const wire = v2(0x21, 0x11, Buffer.concat([hex(`${TCP4_BLOCK} e0 ffff`), Buffer.alloc(1000)]))
    assertRejects(t, wire.subarray(0, 31), 'TLV 0xe0 overruns the header length', 29)
    t.equal(parseProxyHeader(wire.subarray(0, 30)).status, 'incomplete')
  })

  t.test('bad CRC32C', async t => {
    const good = formatProxyV2(v4('192.0.2.1', 1234, '198.51.100.7', 443), { crc32c: true })
    const crcAt = good.length - 4
    const tampered = Buffer.from(good)
    tampered[16] = 10 // 10.0.2.1: a spoofed source
    assertRejects(t, tampered, 'bad CRC32C', crcAt)
    const wrong = Buffer.from(good)
    wrong.writeUInt32BE((good.readUInt32BE(crcAt) + 1) >>> 0, crcAt)
    assertRejects(t, wrong, 'bad CRC32C', crcAt)
  })
})

t.test('formatting', async t => {
  t.test('v1', async t => {
    t.equal(formatProxyV1(null).toString('latin1'), 'PROXY UNKNOWN\r\n')
    t.equal(formatProxyV1(v4('127.0.0.1', 37958, '127.0.0.1', 19141)).toString('latin1'), HAPROXY_V1)
    t.equal(
      formatProxyV1(v6('FE80:0::0001%eth0', 1, '0:0:0:0:0:ffff:c000:201', 65535)).toString('latin1'),
      'PROXY TCP6 fe80::1 ::ffff:192.0.2.1 1 65535\r\n',
      'IPv6 canonical, zone index dropped',
    )
  })

  t.test('v2', async t => {
    t.equal(formatProxyV2(v4('127.0.0.1', 39780, '127.0.0.1', 19142)).toString('hex'), HAPROXY_V2)
    t.equal(formatProxyV2(null).toString('hex'), `${SIGNATURE}20000000`, 'LOCAL, UNSPEC, no block')
    const localCrc = formatProxyV2(null, { crc32c: true })
    t.equal(localCrc.length, 23)
    t.equal(localCrc.subarray(12, 19).toString('hex'), '20000007030004')
    t.same(complete(localCrc), { version: 2, command: 'LOCAL', addresses: null, tlvs: [], length: 23 })
    t.equal(formatProxyV2(v4('1.2.3.4', 1, '5.6.7.8', 2), { crc32c: false }).length, 28)
    t.equal(
      formatProxyV2(v6('2001:db8::1', 80, '::ffff:192.0.2.1', 443)).toString('hex'),
      `${SIGNATURE}21210024 20010db8000000000000000000000001 00000000000000000000ffffc0000201 0050 01bb`.replace(/ /g, ''),
    )
  })

  t.test('bad input is a caller bug, reported as a TcpproxyError', async t => {
    const bad: ProxyAddresses[] = [
      v4('1.2.3', 1, '5.6.7.8', 2),
      v4('1.2.3.4', 1, '::1', 2),
      v6('1.2.3.4', 1, '::1', 2),
      v6('::1', 1, 'fe80::1::2', 2),
      v4('1.2.3.4', 65536, '5.6.7.8', 2),
      v4('1.2.3.4', 1, '5.6.7.8', -1),
      v4('1.2.3.4', 1.5, '5.6.7.8', 2),
    ]
    for (const a of bad) {
      for (const format of [formatProxyV1, (x: ProxyAddresses) => formatProxyV2(x)]) {
        t.throws(() => format(a), { name: 'TcpproxyError', code: 'ERR_RUNTIME', message: /^cannot format a PROXY header: invalid / })
      }
    }
    t.ok(new TcpproxyError('ERR_RUNTIME', 'x') instanceof Error)
  })
})

t.test('crc32c', async t => {
  t.equal(crc32c(Buffer.from('123456789')), 0xe3069283, 'the standard check value')
  t.equal(crc32c(Buffer.alloc(0)), 0)
  t.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa, 'RFC 3720 B.4: 32 bytes of zeros')
  t.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43, 'RFC 3720 B.4: 32 bytes of 0xff')
})

// ---------------------------------------------------------------------------
// Properties

const port = fc.integer({ min: 0, max: 0xffff })
const addresses: fc.Arbitrary<ProxyAddresses> = fc.oneof(
  fc.record({
    family: fc.constant('IPv4' as const),
    sourceAddress: fc.ipV4(),
    sourcePort: port,
    destinationAddress: fc.ipV4(),
    destinationPort: port,
  }),
  fc.record({
    family: fc.constant('IPv6' as const),
    sourceAddress: fc.ipV6(),
    sourcePort: port,
    destinationAddress: fc.ipV6(),
    destinationPort: port,
  }),
)

/** What a parsed header should say for `a`: IPv6 text in Node's canonical form. */
function canonical(a: ProxyAddresses): ProxyAddresses {
  if (a.family === 'IPv4') return a
  const node = (address: string): string => new SocketAddress({ address, family: 'ipv6' }).address
  return { ...a, sourceAddress: node(a.sourceAddress), destinationAddress: node(a.destinationAddress) }
}

/** Headers of every kind, as the starting point for mutations. */
const validHeader: fc.Arbitrary<Buffer> = fc.oneof(
  addresses.map(a => formatProxyV1(a)),
  fc.tuple(addresses, fc.boolean()).map(([a, crc]) => formatProxyV2(a, { crc32c: crc })),
  fc.constantFrom(
    formatProxyV1(null),
    formatProxyV2(null),
    hex(HAPROXY_V2),
    v2(0x21, 0x11, `${TCP4_BLOCK} e00003616263 040000`),
    bin('PROXY UNKNOWN ::1 ::1 1 2\r\n'),
  ),
)

type Mutation = { kind: 'set' | 'insert' | 'delete' | 'truncate'; at: number; byte: number }
const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('set', 'insert', 'delete', 'truncate'),
  at: fc.nat(),
  byte: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x0d, 0x0a, 0x20, 0x3a, 0x2e, 0x30)),
})

function mutate(buf: Buffer, mutations: readonly Mutation[]): Buffer {
  let out = Buffer.from(buf)
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.at % out.length
    if (m.kind === 'set' && out.length > 0) out[at] = m.byte
    else if (m.kind === 'insert') out = Buffer.concat([out.subarray(0, at), Buffer.from([m.byte]), out.subarray(at)])
    else if (m.kind === 'delete') out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)])
    else out = out.subarray(0, at)
  }
  return out
}

/**
 * The parser's contract on any input: it returns or throws a ProxyHeaderError
 * whose offset lies inside the input, with everything before that offset
 * still a valid beginning; a complete header only depends on its own bytes,
 * and every proper prefix of it is incomplete.
 */
function checkContract(input: Buffer): void {
  let result
  try {
    result = parseProxyHeader(input)
  } catch (err) {
    if (!(err instanceof ProxyHeaderError)) throw err
    if (!(err.offset >= 0 && err.offset < input.length)) throw new Error(`offset ${err.offset} outside ${input.length} bytes`)
    if (parseProxyHeader(input.subarray(0, err.offset)).status !== 'incomplete') {
      throw new Error(`the ${err.offset} bytes before the error are not a valid beginning`)
    }
    return
  }
  if (result.status === 'incomplete') return
  const { length } = result.header
  if (length > input.length) throw new Error('header longer than its input')
  const again = parseProxyHeader(input.subarray(0, length))
  if (JSON.stringify(again) !== JSON.stringify(result)) throw new Error('header depends on the bytes after it')
  if (parseProxyHeader(input.subarray(0, length - 1)).status !== 'incomplete') throw new Error('a prefix is not incomplete')
}

t.test('property: random bytes only ever give ProxyHeaderError', async t => {
  const input = fc.oneof(
    fc.uint8Array({ maxLength: 140 }).map(a => Buffer.from(a)),
    fc.uint8Array({ maxLength: 140 }).map(a => Buffer.concat([bin('PROXY '), Buffer.from(a)])),
    fc.uint8Array({ maxLength: 140 }).map(a => Buffer.concat([hex(SIGNATURE), Buffer.from(a)])),
    fc
      .array(fc.constantFrom(...'PROXY TCP4 TCP6 UNKNOWN 0123456789abcdefABCDEF:.\r\n'), { maxLength: 120 })
      .map(cs => bin(`PROXY ${cs.join('')}`)),
  )
  fc.assert(fc.property(input, checkContract), FC)
  t.pass('contract held')
})

t.test('property: mutated valid headers only ever give ProxyHeaderError', async t => {
  fc.assert(
    fc.property(validHeader, fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.uint8Array({ maxLength: 8 }), (h, ms, tail) =>
      checkContract(Buffer.concat([mutate(h, ms), Buffer.from(tail)])),
    ),
    FC,
  )
  t.pass('contract held')
})

t.test('property: a CRC32C catches any corruption of the addresses or the checksum', async t => {
  fc.assert(
    fc.property(addresses, fc.nat(), fc.integer({ min: 1, max: 255 }), (a, where, flip) => {
      const wire = formatProxyV2(a, { crc32c: true })
      const blockEnd = wire.length - 7
      // The address block (bytes 16..blockEnd) and the checksum value (the last 4 bytes).
      const candidates = [...Array.from({ length: blockEnd - 16 }, (_, k) => 16 + k), ...[4, 3, 2, 1].map(k => wire.length - k)]
      const at = candidates[where % candidates.length]!
      wire[at] = wire[at]! ^ flip
      return rejection(wire).message.endsWith('bad CRC32C')
    }),
    FC,
  )
  t.pass('every corruption detected')
})

t.test('property: formatted headers parse back to the same addresses', async t => {
  fc.assert(
    fc.property(addresses, fc.boolean(), fc.uint8Array({ maxLength: 16 }), (a, crc, data) => {
      const after = Buffer.from(data)
      const expected = canonical(a)
      const one = formatProxyV1(a)
      const h1 = complete(Buffer.concat([one, after]))
      const wire = formatProxyV2(a, { crc32c: crc })
      const h2 = complete(Buffer.concat([wire, after]))
      return (
        JSON.stringify(h1.addresses) === JSON.stringify(expected) &&
        h1.length === one.length &&
        JSON.stringify(h2.addresses) === JSON.stringify(expected) &&
        h2.length === wire.length &&
        h2.tlvs.length === (crc ? 1 : 0)
      )
    }),
    FC,
  )
  t.pass('round trips held')
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
