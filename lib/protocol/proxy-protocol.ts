/**
 * PROXY protocol headers, version 1 (text) and version 2 (binary): parsing and
 * formatting. Pure functions over Buffers; reading a header off a socket lives
 * in proxy-header-reader.ts.
 *
 * Spec: haproxy doc/proxy-protocol.txt (revision 2020/03/05), cited as
 * "proxy-protocol.txt §N". The receiving side is strict on purpose: the spec
 * says any sequence that does not exactly match the protocol must abort the
 * connection (§2.1), and a lenient parser here would let a client spoof its
 * address.
 */
import { ProxyHeaderError, TcpproxyError } from '../errors.js'

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

/** Longest v1 line, CRLF included: "PROXY UNKNOWN" with two full IPv6 addresses (proxy-protocol.txt §2.1). */
export const PROXY_V1_MAX = 107

const INCOMPLETE: ParseResult = Object.freeze({ status: 'incomplete' })

const CR = 0x0d
const LF = 0x0a
const SP = 0x20
const COLON = 0x3a
const DOT = 0x2e

const V1_PREFIX = Buffer.from('PROXY ', 'latin1')

/** proxy-protocol.txt §2.2: 12 bytes chosen to be rejected by other protocols; note the NUL. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
const V2_FIXED_LENGTH = 16
const V2_COMMAND_LOCAL = 0x0
const V2_COMMAND_PROXY = 0x1
const PP2_TYPE_CRC32C = 0x03
const TLV_HEADER_LENGTH = 3

/** The family/transport bytes a receiver accepts with PROXY, and the address block each implies (§2.2). */
const V2_ADDRESS_LENGTH: ReadonlyMap<number, number> = new Map([
  [0x00, 0], // UNSPEC
  [0x11, 12], // TCP over IPv4
  [0x21, 36], // TCP over IPv6
  [0x31, 216], // UNIX stream
  [0x32, 216], // UNIX datagram
])

/**
 * Parse a PROXY header at the start of `buf`. Returns `incomplete` only while
 * more bytes could still make a valid header, so it can be called again after
 * every read; throws ProxyHeaderError as soon as the bytes seen cannot start
 * one, with the offset of the first offending byte.
 */
export function parseProxyHeader(buf: Buffer): ParseResult {
  if (buf.length === 0) return INCOMPLETE
  // §2.2 tells the versions apart by their first bytes: "PROXY" or the signature.
  if (buf[0] === V1_PREFIX[0]) return parseV1(buf)
  if (buf[0] === V2_SIGNATURE[0]) return parseV2(buf)
  throw new ProxyHeaderError('not a PROXY header', 0)
}

// ---------------------------------------------------------------------------
// Version 1

const PROTOCOLS: readonly string[] = ['TCP4', 'TCP6', 'UNKNOWN']
const FIELD_NAMES = ['protocol', 'source address', 'destination address', 'source port', 'destination port'] as const
const LAST_FIELD = FIELD_NAMES.length - 1

/**
 * proxy-protocol.txt §2.1. The line is checked byte by byte: every field text
 * seen so far must be the prefix of a valid field, so a bad byte is reported
 * where it is, without waiting for the CRLF.
 */
function parseV1(buf: Buffer): ParseResult {
  for (let i = 0; i < V1_PREFIX.length; i++) {
    if (i === buf.length) return INCOMPLETE
    if (buf[i] !== V1_PREFIX[i]) throw new ProxyHeaderError('not a PROXY header', i)
  }
  // texts[k] is field k (FIELD_NAMES) as far as it has been read.
  const texts = ['']
  // After "UNKNOWN " the receiver must ignore everything up to the CRLF (§2.1).
  let ignoreRest = false
  for (let i = V1_PREFIX.length; i < buf.length; i++) {
    const c = buf[i]!
    // The CRLF must end by byte 107: a CR is allowed at index 105 at the latest.
    if (i >= PROXY_V1_MAX - 2 && !(c === CR && i === PROXY_V1_MAX - 2)) {
      throw new ProxyHeaderError(`no CRLF within ${PROXY_V1_MAX} bytes`, i)
    }
    // §2.1: a lone CR or LF must not be taken as the end of the line.
    if (c === LF) throw new ProxyHeaderError('LF without CR', i)
    if (c === CR) {
      if (!ignoreRest) endField(texts, i, true)
      if (i + 1 === buf.length) return INCOMPLETE
      if (buf[i + 1] !== LF) throw new ProxyHeaderError('CR not followed by LF', i + 1)
      return { status: 'complete', header: buildV1(texts, i + 2) }
    }
    if (ignoreRest) continue
    if (c === SP) {
      endField(texts, i, false)
      if (texts.length === 1 && texts[0] === 'UNKNOWN') ignoreRest = true
      else texts.push('')
      continue
    }
    const index = texts.length - 1
    const text = texts[index] + String.fromCharCode(c)
    const reason = checkField(texts, index, text, false)
    if (reason !== null) throw new ProxyHeaderError(reason, i)
    texts[index] = text
  }
  return INCOMPLETE
}

/** The field being read ends at byte `at` (a space, or the CR when `atEol`). */
function endField(texts: string[], at: number, atEol: boolean): void {
  const index = texts.length - 1
  const text = texts[index]!
  if (text === '') {
    throw new ProxyHeaderError(atEol ? `missing ${FIELD_NAMES[index]}` : 'more than one space between fields', at)
  }
  const reason = checkField(texts, index, text, true)
  if (reason !== null) throw new ProxyHeaderError(reason, at)
  if (atEol) {
    const last = texts[0] === 'UNKNOWN' ? 0 : LAST_FIELD
    if (index < last) throw new ProxyHeaderError(`missing ${FIELD_NAMES[index + 1]}`, at)
  } else if (index === LAST_FIELD) {
    throw new ProxyHeaderError('expected CRLF after the destination port', at)
  }
}

/** Why `text` cannot be (a prefix of, unless `complete`) field `index`; null when it can. */
function checkField(texts: readonly string[], index: number, text: string, complete: boolean): string | null {
  if (index === 0) {
    const ok = complete ? PROTOCOLS.includes(text) : PROTOCOLS.some(p => p.startsWith(text))
    return ok ? null : 'unknown protocol (expected TCP4, TCP6 or UNKNOWN)'
  }
  if (index >= 3) return checkPort(text)
  return checkAddress(texts[0] === 'TCP4' ? 'TCP4' : 'TCP6', text, complete)
}

function checkAddress(protocol: 'TCP4' | 'TCP6', text: string, complete: boolean): string | null {
  const v4 = protocol === 'TCP4'
  const reason = v4 ? checkIPv4(text, complete) : checkIPv6(text, complete)
  if (reason === null) return null
  // §2.1: "The advertised protocol family dictates what format to use." Name
  // the mismatch only when the text is clearly the other family, so that
  // "01" under TCP4 is still reported as a leading zero.
  const otherFamily = v4
    ? /[^0-9.]/.test(text) && checkIPv6(text, complete) === null
    : !text.includes(':') && checkIPv4(text, complete) === null
  return otherFamily ? `address family does not match ${protocol}` : reason
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

function isHexDigit(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
}

/** §2.1: ports are decimal 0-65535 without leading zeros (no octal confusion). */
function checkPort(text: string): string | null {
  let value = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (!isDigit(c)) return 'invalid character in port'
    if (i === 1 && value === 0) return 'leading zero in port'
    value = value * 10 + (c - 0x30)
    if (value > 0xffff) return 'port greater than 65535'
  }
  return null
}

/** §2.1: exactly four decimal octets 0-255, no leading zeros. */
function checkIPv4(text: string, complete: boolean): string | null {
  let octets = 1
  let digits = 0
  let value = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === DOT) {
      if (digits === 0) return 'empty octet in IPv4 address'
      if (octets === 4) return 'more than 4 octets in IPv4 address'
      octets++
      digits = 0
      value = 0
    } else if (isDigit(c)) {
      if (digits === 1 && value === 0) return 'leading zero in IPv4 address'
      value = value * 10 + (c - 0x30)
      digits++
      if (value > 255) return 'IPv4 octet greater than 255'
    } else {
      return 'invalid character in IPv4 address'
    }
  }
  return complete && (octets !== 4 || digits === 0) ? 'IPv4 address needs 4 octets' : null
}

/**
 * §2.1: IPv6 text is colon-separated groups of hex digits with at most one
 * "::", decoding to exactly 128 bits. The dotted IPv4 tail of RFC 4291 §2.2
 * (form 3, e.g. ::ffff:192.0.2.1) is accepted too: Node reports IPv4 clients
 * of dual-stack sockets that way, so senders written in Node produce it.
 */
function checkIPv6(text: string, complete: boolean): string | null {
  const dot = text.indexOf('.')
  const colon = dot === -1 ? -1 : text.lastIndexOf(':', dot)
  const hex = dot === -1 ? text : text.slice(0, colon + 1)
  const scan = scanGroups(hex)
  if (typeof scan === 'string') return scan
  if (dot !== -1) {
    if (colon === -1) return 'invalid character in IPv6 address'
    if (hex === ':') return 'IPv6 address starts with a single ":"'
    // The IPv4 tail stands for the last two groups.
    if (scan.groups + 2 > (scan.double ? 7 : 8)) return 'IPv6 address longer than 128 bits'
    if (!scan.double && scan.groups !== 6) return 'IPv6 address shorter than 128 bits'
    return checkIPv4(text.slice(colon + 1), complete)
  }
  if (complete) {
    if (text.endsWith(':') && !text.endsWith('::')) return 'IPv6 address ends with a single ":"'
    if (!scan.double && scan.groups !== 8) return 'IPv6 address shorter than 128 bits'
  }
  return null
}

/** Walk the hex-group part of an IPv6 text, rejecting it as soon as no completion could be valid. */
function scanGroups(text: string): { groups: number; double: boolean } | string {
  let groups = 0
  let digits = 0
  let double = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    // "::" stands for at least one group, so with it at most 7 may be explicit.
    const max = double ? 7 : 8
    if (isHexDigit(c)) {
      if (i === 1 && text.charCodeAt(0) === COLON) return 'IPv6 address starts with a single ":"'
      if (digits === 0 && ++groups > max) return 'IPv6 address longer than 128 bits'
      if (++digits > 4) return 'IPv6 group longer than 4 hex digits'
    } else if (c === COLON) {
      if (i > 0 && text.charCodeAt(i - 1) === COLON) {
        if (double) return 'more than one "::" in IPv6 address'
        double = true
      } else if (i > 0 && groups + 1 > max) {
        // A single colon after a group promises another group.
        return 'IPv6 address longer than 128 bits'
      }
      digits = 0
    } else {
      return 'invalid character in IPv6 address'
    }
  }
  return { groups, double }
}

/** The eight 16-bit groups of an IPv6 text already accepted by checkIPv6. */
function ipv6Groups(text: string): number[] {
  let hex = text
  const colon = text.lastIndexOf(':')
  if (text.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = text.slice(colon + 1).split('.').map(Number)
    hex = `${text.slice(0, colon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map(g => parseInt(g, 16)))
  const [head = '', tail] = hex.split('::')
  if (tail === undefined) return parse(head)
  const left = parse(head)
  const right = parse(tail)
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right]
}

/**
 * Node's canonical IPv6 text (what socket.remoteAddress shows, libuv's
 * inet_ntop6): lower case, no leading zeros, the first longest run of two or
 * more zero groups as "::", and a dotted tail for IPv4-mapped (::ffff:a.b.c.d)
 * and IPv4-compatible (::a.b.c.d) addresses.
 */
function formatIPv6(groups: readonly number[]): string {
  let bestStart = -1
  let bestLength = 0
  for (let i = 0; i < 8; ) {
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j === i ? i + 1 : j
  }
  if (bestLength < 2) bestStart = -1
  let out = ''
  for (let i = 0; i < 8; i++) {
    if (bestStart !== -1 && i >= bestStart && i < bestStart + bestLength) {
      if (i === bestStart) out += ':'
      continue
    }
    if (i !== 0) out += ':'
    const g = groups[i]!
    if (i === 6 && bestStart === 0 && (bestLength === 6 || (bestLength === 5 && groups[5] === 0xffff))) {
      out += `${g >> 8}.${g & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`
      return out
    }
    out += g.toString(16)
  }
  return bestStart !== -1 && bestStart + bestLength === 8 ? `${out}:` : out
}

function buildV1(texts: readonly string[], length: number): ProxyHeader {
  const [protocol, source = '', destination = '', sourcePort = '', destinationPort = ''] = texts
  let addresses: ProxyAddresses | null = null
  if (protocol !== 'UNKNOWN') {
    const v6 = protocol === 'TCP6'
    addresses = {
      family: v6 ? 'IPv6' : 'IPv4',
      sourceAddress: v6 ? formatIPv6(ipv6Groups(source)) : source,
      sourcePort: Number(sourcePort),
      destinationAddress: v6 ? formatIPv6(ipv6Groups(destination)) : destination,
      destinationPort: Number(destinationPort),
    }
  }
  return { version: 1, command: 'PROXY', addresses, tlvs: [], length }
}

// ---------------------------------------------------------------------------
// Version 2

/**
 * proxy-protocol.txt §2.2. The fixed part is checked byte by byte and the
 * TLV chain as far as it has arrived, so a bad header fails before its
 * announced length has been received; the addresses and checksums are only
 * read once the whole header is there (§2.2: "must not start to parse an
 * address before the whole address block is received").
 */
function parseV2(buf: Buffer): ParseResult {
  for (let i = 0; i < V2_SIGNATURE.length; i++) {
    if (i === buf.length) return INCOMPLETE
    if (buf[i] !== V2_SIGNATURE[i]) throw new ProxyHeaderError('not a PROXY header', i)
  }
  if (buf.length < 13) return INCOMPLETE
  const versionCommand = buf[12]!
  const version = versionCommand >> 4
  if (version !== 2) throw new ProxyHeaderError(`bad version ${version}`, 12)
  // §2.2: "Receivers must drop connections presenting unexpected values here."
  const command = versionCommand & 0x0f
  if (command !== V2_COMMAND_LOCAL && command !== V2_COMMAND_PROXY) {
    throw new ProxyHeaderError(`bad command ${command}`, 12)
  }
  if (buf.length < 14) return INCOMPLETE
  const familyTransport = buf[13]!
  // §2.2: with LOCAL the receiver "must use the real connection endpoints and
  // discard the protocol block including the family which is ignored".
  let addressLength = 0
  if (command === V2_COMMAND_PROXY) {
    if (familyTransport === 0x12 || familyTransport === 0x22) {
      throw new ProxyHeaderError('UDP is not supported: tcpproxy relays TCP only', 13)
    }
    const known = V2_ADDRESS_LENGTH.get(familyTransport)
    if (known === undefined) {
      throw new ProxyHeaderError(`bad address family and transport 0x${hex2(familyTransport)}`, 13)
    }
    addressLength = known
  }
  if (buf.length < V2_FIXED_LENGTH) return INCOMPLETE
  const blockLength = buf.readUInt16BE(14)
  // 16 + a 16-bit length: the header can never exceed 65551 bytes.
  const total = V2_FIXED_LENGTH + blockLength
  if (command === V2_COMMAND_LOCAL) {
    // The block is skipped unread, TLVs included, as HAProxy does (§2.2:
    // "Receivers MUST always consider this field to skip the appropriate number of bytes").
    if (buf.length < total) return INCOMPLETE
    return { status: 'complete', header: { version: 2, command: 'LOCAL', addresses: null, tlvs: [], length: total } }
  }
  if (blockLength < addressLength) {
    throw new ProxyHeaderError(`length ${blockLength} too short for the ${addressLength}-byte address block`, 14)
  }
  // §2.2: whatever follows the addresses is a chain of TLVs that must end
  // exactly at the announced length. A length error is reported at the
  // length field that caused it.
  const tlvs: Array<{ type: number; start: number; end: number }> = []
  let at = V2_FIXED_LENGTH + addressLength
  let lengthField = 14
  while (at < total) {
    if (total - at < TLV_HEADER_LENGTH) {
      throw new ProxyHeaderError(`${total - at} byte(s) left after the TLVs, too few for a TLV`, lengthField)
    }
    if (buf.length < at + TLV_HEADER_LENGTH) return INCOMPLETE
    const type = buf[at]!
    const valueLength = buf.readUInt16BE(at + 1)
    const end = at + TLV_HEADER_LENGTH + valueLength
    if (end > total) throw new ProxyHeaderError(`TLV 0x${hex2(type)} overruns the header length`, at + 1)
    if (type === PP2_TYPE_CRC32C && valueLength !== 4) {
      throw new ProxyHeaderError('CRC32C TLV is not 4 bytes long', at + 1)
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
      addresses: v2Addresses(buf, familyTransport),
      tlvs: tlvs.map(({ type, start, end }) => ({ type, value: Buffer.from(buf.subarray(start, end)) })),
      length: total,
    },
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0')
}

/** §2.2.3: the CRC32C of the whole header computed with the checksum field zeroed. */
function checksumMatches(buf: Buffer, total: number, field: number): boolean {
  let crc = crc32cUpdate(0xffffffff, buf, 0, field)
  crc = crc32cUpdate(crc, FOUR_ZEROS, 0, 4)
  crc = crc32cUpdate(crc, buf, field + 4, total)
  return (crc ^ 0xffffffff) >>> 0 === buf.readUInt32BE(field)
}

const FOUR_ZEROS = Buffer.alloc(4)

/** TCP over IPv4 or IPv6 carry addresses we use; UNSPEC and UNIX fall back to the real endpoints (§2.2). */
function v2Addresses(buf: Buffer, familyTransport: number): ProxyAddresses | null {
  if (familyTransport === 0x11) {
    return {
      family: 'IPv4',
      sourceAddress: buf.subarray(16, 20).join('.'),
      sourcePort: buf.readUInt16BE(24),
      destinationAddress: buf.subarray(20, 24).join('.'),
      destinationPort: buf.readUInt16BE(26),
    }
  }
  if (familyTransport === 0x21) {
    const groups = (from: number): number[] => Array.from({ length: 8 }, (_, k) => buf.readUInt16BE(from + 2 * k))
    return {
      family: 'IPv6',
      sourceAddress: formatIPv6(groups(16)),
      sourcePort: buf.readUInt16BE(48),
      destinationAddress: formatIPv6(groups(32)),
      destinationPort: buf.readUInt16BE(50),
    }
  }
  return null
}

// ---------------------------------------------------------------------------
// Formatting

/** `PROXY TCP4|TCP6 ...\r\n`, or `PROXY UNKNOWN\r\n` when the addresses are not known (§2.1). */
export function formatProxyV1(a: ProxyAddresses | null): Buffer {
  if (a === null) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1')
  const source = sendable(a, a.sourceAddress, a.sourcePort).text
  const destination = sendable(a, a.destinationAddress, a.destinationPort).text
  const protocol = a.family === 'IPv4' ? 'TCP4' : 'TCP6'
  return Buffer.from(`PROXY ${protocol} ${source} ${destination} ${a.sourcePort} ${a.destinationPort}\r\n`, 'latin1')
}

/**
 * A v2 header with the PROXY command over TCP4 or TCP6, or the LOCAL command
 * with AF_UNSPEC when the addresses are not known (§2.2). With `crc32c` a
 * PP2_TYPE_CRC32C TLV is appended and filled in (§2.2.3).
 */
export function formatProxyV2(a: ProxyAddresses | null, options: { crc32c?: boolean } = {}): Buffer {
  const addressLength = a === null ? 0 : a.family === 'IPv4' ? 12 : 36
  const tlvLength = options.crc32c === true ? TLV_HEADER_LENGTH + 4 : 0
  const out = Buffer.alloc(V2_FIXED_LENGTH + addressLength + tlvLength)
  V2_SIGNATURE.copy(out, 0)
  out[12] = 0x20 | (a === null ? V2_COMMAND_LOCAL : V2_COMMAND_PROXY)
  out[13] = a === null ? 0x00 : a.family === 'IPv4' ? 0x11 : 0x21
  out.writeUInt16BE(addressLength + tlvLength, 14)
  if (a !== null) {
    // Two addresses then two 2-byte ports: 4-byte IPv4 or 16-byte IPv6 addresses.
    const size = (addressLength - 4) / 2
    sendable(a, a.sourceAddress, a.sourcePort).bytes.copy(out, 16)
    sendable(a, a.destinationAddress, a.destinationPort).bytes.copy(out, 16 + size)
    out.writeUInt16BE(a.sourcePort, 16 + 2 * size)
    out.writeUInt16BE(a.destinationPort, 18 + 2 * size)
  }
  if (tlvLength > 0) {
    const at = V2_FIXED_LENGTH + addressLength
    out[at] = PP2_TYPE_CRC32C
    out.writeUInt16BE(4, at + 1)
    out.writeUInt32BE(crc32c(out), at + TLV_HEADER_LENGTH)
  }
  return out
}

/**
 * Validate one endpoint for sending: the text (canonical for IPv6) and the
 * address bytes. A zone index (fe80::1%eth0, as Node reports link-local
 * peers) is dropped: the protocol has no field for it. Bad input is a bug in
 * the caller, reported rather than sent as a header the peer must reject.
 */
function sendable(a: ProxyAddresses, address: string, port: number): { text: string; bytes: Buffer } {
  const invalid = (what: string): TcpproxyError =>
    new TcpproxyError('ERR_RUNTIME', `cannot format a PROXY header: invalid ${what}`)
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw invalid(`port ${port}`)
  if (a.family === 'IPv4') {
    if (checkIPv4(address, true) !== null) throw invalid(`IPv4 address "${address}"`)
    return { text: address, bytes: Buffer.from(address.split('.').map(Number)) }
  }
  const bare = address.replace(/%.*$/s, '')
  if (checkIPv6(bare, true) !== null) throw invalid(`IPv6 address "${address}"`)
  const groups = ipv6Groups(bare)
  const bytes = Buffer.alloc(16)
  groups.forEach((g, k) => bytes.writeUInt16BE(g, 2 * k))
  return { text: formatIPv6(groups), bytes }
}

// ---------------------------------------------------------------------------
// CRC32C

/** Castagnoli polynomial, bit-reflected (RFC 4960 Appendix B, which §2.2.3 cites). */
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    table[n] = c
  }
  return table
})()

function crc32cUpdate(crc: number, buf: Buffer, from: number, to: number): number {
  let c = crc
  for (let i = from; i < to; i++) c = CRC32C_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8)
  return c
}

/** CRC32C (Castagnoli) of `buf`, as an unsigned 32-bit number. */
export function crc32c(buf: Buffer): number {
  return (crc32cUpdate(0xffffffff, buf, 0, buf.length) ^ 0xffffffff) >>> 0
}
