/**
 * What a PROXY protocol header carries once parsed, shared by the version 1
 * parser (v1.ts) and the version 2 parser (v2.ts); parse.ts tells the two
 * apart.
 *
 * Spec: haproxy doc/proxy-protocol.txt (revision 2020/03/05), cited as
 * "proxy-protocol.txt §N". The receiving side is strict on purpose: the spec
 * says any sequence that does not exactly match the protocol must abort the
 * connection (§2.1), and a lenient parser here would let a client spoof its
 * address.
 */
import { ProxyHeaderError } from '../errors.js'

export interface ProxyAddresses {
  family: 'IPv4' | 'IPv6'
  sourceAddress: string
  sourcePort: number
  destinationAddress: string
  destinationPort: number
}

export interface ProxyTlv {
  type: number
  value: Buffer
}

export interface ProxyHeader {
  version: 1 | 2
  /** v1 is always 'PROXY'. */
  command: 'PROXY' | 'LOCAL'
  /**
   * null for v1 UNKNOWN, v2 LOCAL, and v2 UNSPEC or AF_UNIX: the caller then
   * uses the real connection's addresses (proxy-protocol.txt §2.1, §2.2).
   */
  addresses: ProxyAddresses | null
  /** v2 TLVs in wire order, CRC32C and unknown types included; always empty for v1 and LOCAL. */
  tlvs: ProxyTlv[]
  /** Bytes of the input the header occupies; the connection's data starts there. */
  length: number
}

export type ParseResult = { status: 'incomplete' } | { status: 'complete'; header: ProxyHeader }

export const INCOMPLETE: ParseResult = Object.freeze({ status: 'incomplete' })

/** The error for input that starts neither version's magic; `at` is the first byte that differs. */
export function notAHeader(at: number): ProxyHeaderError {
  return new ProxyHeaderError('not a PROXY header', at)
}

/**
 * Whether `buf` starts with all of `magic` ("PROXY " or the v2 signature):
 * false while `buf` is a proper prefix of it; throws at the first byte that
 * differs.
 */
export function startsWithMagic(buf: Buffer, magic: Buffer): boolean {
  for (let i = 0; i < magic.length; i++) {
    if (i === buf.length) return false
    if (buf[i] !== magic[i]) throw notAHeader(i)
  }
  return true
}
