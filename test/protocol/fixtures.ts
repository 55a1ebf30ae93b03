/**
 * Shared by the PROXY protocol tests: captured headers, builders of
 * addresses and v2 headers, the parser assertions, and the fast-check
 * settings and address arbitrary.
 */
import { SocketAddress } from 'node:net'
import fc from 'fast-check'
import type { Test } from 'tap'
import { ProxyHeaderError } from '../../lib/errors.js'
import type { ProxyAddresses, ProxyHeader } from '../../lib/protocol/header.js'
import { parseProxyHeader } from '../../lib/protocol/parse.js'

// Fixed seed and bounded runs: the property tests are reproducible and fast.
export const FC = { seed: 42, numRuns: 2000 } as const

export const SIGNATURE = '0d0a0d0a000d0a515549540a'
/** HAProxy 2.6 send-proxy-v2 capture: PROXY, TCP4, 127.0.0.1:39780 -> 127.0.0.1:19142 (peers.md §5). */
export const HAPROXY_V2 = `${SIGNATURE}2111000c7f0000017f0000019b644ac6`
/** HAProxy 2.6 send-proxy capture (peers.md §5). */
export const HAPROXY_V1 = 'PROXY TCP4 127.0.0.1 127.0.0.1 37958 19141\r\n'

export const bin = (input: string | Buffer): Buffer => (typeof input === 'string' ? Buffer.from(input, 'latin1') : input)
export const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex')

export function complete(input: string | Buffer): ProxyHeader {
  const result = parseProxyHeader(bin(input))
  if (result.status !== 'complete') throw new Error(`expected a complete header, got ${result.status}`)
  return result.header
}

/** The ProxyHeaderError parsing `input` throws (fails the test when it does not). */
export function rejection(input: string | Buffer): ProxyHeaderError {
  try {
    parseProxyHeader(bin(input))
  } catch (err) {
    if (err instanceof ProxyHeaderError) return err
    throw err
  }
  throw new Error(`expected ${JSON.stringify(bin(input).toString('latin1'))} to be rejected`)
}

export function assertRejects(tt: Test, input: string | Buffer, reason: string, offset: number): void {
  const err = rejection(input)
  tt.equal(err.message, `bad PROXY header at byte ${offset}: ${reason}`, JSON.stringify(bin(input).toString('latin1')))
  tt.equal(err.offset, offset)
  tt.equal(err.code, 'ERR_PROXY_HEADER')
}

/** Every proper prefix of a valid header is "incomplete": the parser can be called after each read. */
export function assertPrefixesIncomplete(tt: Test, header: Buffer): void {
  const bad = []
  for (let n = 0; n < header.length; n++) {
    if (parseProxyHeader(header.subarray(0, n)).status !== 'incomplete') bad.push(n)
  }
  tt.same(bad, [], 'every prefix is incomplete')
}

export const v4 = (s: string, sp: number, d: string, dp: number): ProxyAddresses => ({
  family: 'IPv4',
  sourceAddress: s,
  sourcePort: sp,
  destinationAddress: d,
  destinationPort: dp,
})
export const v6 = (s: string, sp: number, d: string, dp: number): ProxyAddresses => ({ ...v4(s, sp, d, dp), family: 'IPv6' })

/** A v2 header: version/command byte, family byte, then the block after the 16-byte fixed part. */
export function v2(verCmd: number, fam: number, block: string | Buffer = '', lengthOverride?: number): Buffer {
  const body = typeof block === 'string' ? hex(block) : block
  const fixed = Buffer.alloc(4)
  fixed[0] = verCmd
  fixed[1] = fam
  fixed.writeUInt16BE(lengthOverride ?? body.length, 2)
  return Buffer.concat([hex(SIGNATURE), fixed, body])
}
export const TCP4_BLOCK = '7f000001 7f000001 9b64 4ac6'

export const port = fc.integer({ min: 0, max: 0xffff })
export const addresses: fc.Arbitrary<ProxyAddresses> = fc.oneof(
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
export function canonical(a: ProxyAddresses): ProxyAddresses {
  if (a.family === 'IPv4') return a
  const node = (address: string): string => new SocketAddress({ address, family: 'ipv6' }).address
  return { ...a, sourceAddress: node(a.sourceAddress), destinationAddress: node(a.destinationAddress) }
}
