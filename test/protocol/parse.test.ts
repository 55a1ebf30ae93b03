import fc from 'fast-check'
import t from 'tap'
import { ProxyHeaderError } from '../../lib/errors.js'
import { parseProxyHeader } from '../../lib/protocol/parse.js'
import { formatProxyV1 } from '../../lib/protocol/v1.js'
import { formatProxyV2 } from '../../lib/protocol/v2.js'
import { FC, HAPROXY_V2, SIGNATURE, TCP4_BLOCK, addresses, assertRejects, bin, canonical, complete, hex, v2 } from '../fixtures/proxy-headers.js'

t.test('the first byte picks the version', async t => {
  t.equal(parseProxyHeader(Buffer.alloc(0)).status, 'incomplete', 'nothing yet')
  t.equal(parseProxyHeader(bin('P')).status, 'incomplete', 'the start of "PROXY"')
  t.equal(parseProxyHeader(hex(SIGNATURE).subarray(0, 1)).status, 'incomplete', 'the start of the signature')
  assertRejects(t, 'GET / HTTP/1.1\r\n', 'not a PROXY header', 0)
  assertRejects(t, Buffer.from([0x00]), 'not a PROXY header', 0)
})

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
