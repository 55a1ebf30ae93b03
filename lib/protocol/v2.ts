/**
 * PROXY protocol version 2, the binary header (proxy-protocol.txt §2.2): a
 * 16-byte fixed part, the address block, then TLVs. Parsing and formatting;
 * pure functions over Buffers.
 */
import { ProxyHeaderError } from '../errors.js'
import { crc32c } from './crc32c.js'
import { INCOMPLETE, startsWithMagic, type ParseResult, type ProxyAddresses, type ProxyTlv } from './header.js'
import { formatIPv6 } from '../config/address.js'
import { sendableEndpoint } from './ip-text.js'

/** §2.2: 12 bytes chosen to be rejected by other protocols; note the NUL. */
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])

// §2.2, the fixed part: the signature, then one byte of version (high 4 bits)
// and command (low 4 bits), one of family and transport, and the 16-bit
// big-endian length of the rest of the header.
const VERSION_COMMAND_AT = 12
const FAMILY_TRANSPORT_AT = 13
const LENGTH_AT = 14
const FIXED_LENGTH = 16

const VERSION = 2
const COMMAND_LOCAL = 0x0
const COMMAND_PROXY = 0x1

// §2.2: family and transport bytes.
const UNSPEC = 0x00
const TCP_OVER_IPV4 = 0x11
const UDP_OVER_IPV4 = 0x12
const TCP_OVER_IPV6 = 0x21
const UDP_OVER_IPV6 = 0x22
const UNIX_STREAM = 0x31
const UNIX_DATAGRAM = 0x32

/** The families we relay: the family byte we send and the size of one address. */
const INET: Readonly<Record<ProxyAddresses['family'], { familyTransport: number; addressSize: number }>> = {
  IPv4: { familyTransport: TCP_OVER_IPV4, addressSize: 4 },
  IPv6: { familyTransport: TCP_OVER_IPV6, addressSize: 16 },
}

interface AddressLayout {
  source: number
  destination: number
  sourcePort: number
  destinationPort: number
}

/** §2.2: an INET address block is source address, destination address, source port, destination port. */
function addressLayout(addressSize: number): AddressLayout {
  const ports = FIXED_LENGTH + 2 * addressSize
  return { source: FIXED_LENGTH, destination: FIXED_LENGTH + addressSize, sourcePort: ports, destinationPort: ports + 2 }
}

/** Two addresses and two 2-byte ports. */
const inetBlockLength = (addressSize: number): number => 2 * addressSize + 4

/** The family/transport bytes a receiver accepts with PROXY, and the address block each implies (§2.2). */
const ADDRESS_BLOCK_LENGTH: ReadonlyMap<number, number> = new Map([
  [UNSPEC, 0],
  [TCP_OVER_IPV4, inetBlockLength(INET.IPv4.addressSize)],
  [TCP_OVER_IPV6, inetBlockLength(INET.IPv6.addressSize)],
  [UNIX_STREAM, 216], // two 108-byte paths
  [UNIX_DATAGRAM, 216],
])

/** §2.2: a TLV is a type byte, a 16-bit big-endian length, then the value. */
const TLV_HEADER_LENGTH = 3
/** §2.2.3: the CRC32C TLV and the size of its value. */
const PP2_TYPE_CRC32C = 0x03
const CRC32C_LENGTH = 4
const CRC32C_ZEROS = Buffer.alloc(CRC32C_LENGTH)

/**
 * The whole length a v2 header announces (the fixed part plus the length in
 * its bytes 15-16), once `buf` holds the fixed part after a valid signature;
 * null before that, and for anything that is not v2.
 */
export function v2HeaderLength(buf: Buffer): number | null {
  if (buf.length < FIXED_LENGTH || !buf.subarray(0, V2_SIGNATURE.length).equals(V2_SIGNATURE)) return null
  return FIXED_LENGTH + buf.readUInt16BE(LENGTH_AT)
}

/**
 * Parse a v2 header at the start of `buf` (§2.2). The fixed part is checked
 * byte by byte and the TLV chain as far as it has arrived, so a bad header
 * fails before its announced length has been received; the addresses and
 * checksums are only read once the whole header is there (§2.2: "must not
 * start to parse an address before the whole address block is received").
 */
export function parseProxyV2(buf: Buffer): ParseResult {
  if (!startsWithMagic(buf, V2_SIGNATURE)) return INCOMPLETE
  if (buf.length <= VERSION_COMMAND_AT) return INCOMPLETE
  const versionCommand = buf[VERSION_COMMAND_AT]!
  const version = versionCommand >> 4
  if (version !== VERSION) throw new ProxyHeaderError(`bad version ${version}`, VERSION_COMMAND_AT)
  // §2.2: "Receivers must drop connections presenting unexpected values here."
  const command = versionCommand & 0x0f
  if (command !== COMMAND_LOCAL && command !== COMMAND_PROXY) {
    throw new ProxyHeaderError(`bad command ${command}`, VERSION_COMMAND_AT)
  }
  if (buf.length <= FAMILY_TRANSPORT_AT) return INCOMPLETE
  const familyTransport = buf[FAMILY_TRANSPORT_AT]!
  // §2.2: with LOCAL the receiver "must use the real connection endpoints and
  // discard the protocol block including the family which is ignored".
  let addressLength = 0
  if (command === COMMAND_PROXY) {
    if (familyTransport === UDP_OVER_IPV4 || familyTransport === UDP_OVER_IPV6) {
      throw new ProxyHeaderError('UDP is not supported: tcpproxy relays TCP only', FAMILY_TRANSPORT_AT)
    }
    const known = ADDRESS_BLOCK_LENGTH.get(familyTransport)
    if (known === undefined) {
      throw new ProxyHeaderError(`bad address family and transport 0x${hex2(familyTransport)}`, FAMILY_TRANSPORT_AT)
    }
    addressLength = known
  }
  if (buf.length < FIXED_LENGTH) return INCOMPLETE
  const blockLength = buf.readUInt16BE(LENGTH_AT)
  // 16 + a 16-bit length: the header can never exceed 65551 bytes.
  const total = FIXED_LENGTH + blockLength
  if (command === COMMAND_LOCAL) {
    // The block is skipped unread, TLVs included, as HAProxy does (§2.2:
    // "Receivers MUST always consider this field to skip the appropriate number of bytes").
    if (buf.length < total) return INCOMPLETE
    return { status: 'complete', header: { version: 2, command: 'LOCAL', addresses: null, tlvs: [], length: total } }
  }
  if (blockLength < addressLength) {
    throw new ProxyHeaderError(`length ${blockLength} too short for the ${addressLength}-byte address block`, LENGTH_AT)
  }
  // §2.2: whatever follows the addresses is a chain of TLVs that must end
  // exactly at the announced length. A length error is reported at the
  // length field that caused it.
  const tlvs: Array<{ type: number; start: number; end: number }> = []
  let at = FIXED_LENGTH + addressLength
  let lengthField = LENGTH_AT
  while (at < total) {
    if (total - at < TLV_HEADER_LENGTH) {
      throw new ProxyHeaderError(`${total - at} byte(s) left after the TLVs, too few for a TLV`, lengthField)
    }
    if (buf.length < at + TLV_HEADER_LENGTH) return INCOMPLETE
    const type = buf[at]!
    const valueLength = buf.readUInt16BE(at + 1)
    const end = at + TLV_HEADER_LENGTH + valueLength
    if (end > total) throw new ProxyHeaderError(`TLV 0x${hex2(type)} overruns the header length`, at + 1)
    if (type === PP2_TYPE_CRC32C && valueLength !== CRC32C_LENGTH) {
      throw new ProxyHeaderError(`CRC32C TLV is not ${CRC32C_LENGTH} bytes long`, at + 1)
    }
    tlvs.push({ type, start: at + TLV_HEADER_LENGTH, end })
    lengthField = at + 1
    at = end
  }
  if (buf.length < total) return INCOMPLETE
  for (const tlv of tlvs) {
    if (tlv.type === PP2_TYPE_CRC32C && !checksumMatches(buf, total, tlv.start)) {
      throw new ProxyHeaderError('bad CRC32C', tlv.start)
    }
  }
  return {
    status: 'complete',
    header: {
      version: 2,
      command: 'PROXY',
      addresses: readAddresses(buf, familyTransport),
      tlvs: tlvs.map(({ type, start, end }): ProxyTlv => ({ type, value: Buffer.from(buf.subarray(start, end)) })),
      length: total,
    },
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0')
}

/** §2.2.3: the CRC32C of the whole header computed with the checksum field zeroed. */
function checksumMatches(buf: Buffer, total: number, field: number): boolean {
  const crc = crc32c(buf.subarray(0, field), CRC32C_ZEROS, buf.subarray(field + CRC32C_LENGTH, total))
  return crc === buf.readUInt32BE(field)
}

/** TCP over IPv4 or IPv6 carry addresses we use; UNSPEC and UNIX fall back to the real endpoints (§2.2). */
function readAddresses(buf: Buffer, familyTransport: number): ProxyAddresses | null {
  const family = familyTransport === TCP_OVER_IPV4 ? 'IPv4' : familyTransport === TCP_OVER_IPV6 ? 'IPv6' : null
  if (family === null) return null
  const layout = addressLayout(INET[family].addressSize)
  const address = (at: number): string =>
    family === 'IPv4'
      ? buf.subarray(at, at + INET.IPv4.addressSize).join('.')
      : formatIPv6(Array.from({ length: 8 }, (_, k) => buf.readUInt16BE(at + 2 * k)))
  return {
    family,
    sourceAddress: address(layout.source),
    sourcePort: buf.readUInt16BE(layout.sourcePort),
    destinationAddress: address(layout.destination),
    destinationPort: buf.readUInt16BE(layout.destinationPort),
  }
}

/**
 * A v2 header with the PROXY command over TCP4 or TCP6, or the LOCAL command
 * with AF_UNSPEC when the addresses are not known (§2.2). With `crc32c` a
 * PP2_TYPE_CRC32C TLV is appended and filled in (§2.2.3).
 */
export function formatProxyV2(a: ProxyAddresses | null, options: { crc32c?: boolean } = {}): Buffer {
  const addressSize = a === null ? 0 : INET[a.family].addressSize
  const addressLength = a === null ? 0 : inetBlockLength(addressSize)
  const tlvLength = options.crc32c === true ? TLV_HEADER_LENGTH + CRC32C_LENGTH : 0
  const out = Buffer.alloc(FIXED_LENGTH + addressLength + tlvLength)
  V2_SIGNATURE.copy(out, 0)
  out[VERSION_COMMAND_AT] = (VERSION << 4) | (a === null ? COMMAND_LOCAL : COMMAND_PROXY)
  out[FAMILY_TRANSPORT_AT] = a === null ? UNSPEC : INET[a.family].familyTransport
  out.writeUInt16BE(addressLength + tlvLength, LENGTH_AT)
  if (a !== null) {
    const layout = addressLayout(addressSize)
    sendableEndpoint(a.family, a.sourceAddress, a.sourcePort).bytes.copy(out, layout.source)
    sendableEndpoint(a.family, a.destinationAddress, a.destinationPort).bytes.copy(out, layout.destination)
    out.writeUInt16BE(a.sourcePort, layout.sourcePort)
    out.writeUInt16BE(a.destinationPort, layout.destinationPort)
  }
  if (tlvLength > 0) {
    const at = FIXED_LENGTH + addressLength
    out[at] = PP2_TYPE_CRC32C
    out.writeUInt16BE(CRC32C_LENGTH, at + 1)
    // §2.2.3: computed over the whole header while the checksum field is still zero.
    out.writeUInt32BE(crc32c(out), at + TLV_HEADER_LENGTH)
  }
  return out
}
