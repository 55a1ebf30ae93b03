import fc from 'fast-check'
import t from 'tap'
import { crc32c } from '../../lib/protocol/crc32c.js'
import { parseProxyHeader } from '../../lib/protocol/parse.js'
import { formatProxyV2, v2HeaderLength } from '../../lib/protocol/v2.js'
import {
  FC,
  HAPROXY_V2,
  SIGNATURE,
  TCP4_BLOCK,
  addresses,
  assertPrefixesIncomplete,
  assertRejects,
  bin,
  complete,
  hex,
  rejection,
  v2,
  v4,
  v6,
} from '../fixtures/proxy-headers.js'

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

t.test('v2HeaderLength: the announced length, once the fixed part is in', async t => {
  const wire = hex(HAPROXY_V2)
  t.equal(v2HeaderLength(wire), 28)
  t.equal(v2HeaderLength(Buffer.concat([wire, bin('data')])), 28, 'data after the header does not count')
  t.equal(v2HeaderLength(wire.subarray(0, 16)), 28, 'the fixed part is enough')
  t.equal(v2HeaderLength(wire.subarray(0, 15)), null, 'one byte short of the fixed part')
  t.equal(v2HeaderLength(bin('PROXY TCP4 127.0.0.1 ')), null, 'a v1 line')
  t.equal(v2HeaderLength(v2(0x21, 0x00, Buffer.alloc(0xffff))), 65551, 'the largest')
})
