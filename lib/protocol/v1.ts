/**
 * PROXY protocol version 1, the human-readable header (proxy-protocol.txt
 * §2.1): one text line such as "PROXY TCP4 192.0.2.1 198.51.100.7 1234 443\r\n".
 * Parsing and formatting; pure functions over Buffers.
 */
import { ProxyHeaderError } from '../errors.js'
import { INCOMPLETE, startsWithMagic, type ParseResult, type ProxyAddresses, type ProxyHeader } from './header.js'
import { canonicalIPv6, checkIPv4, checkIPv6, checkPort, sendableEndpoint } from './ip-text.js'

/** Longest v1 line, CRLF included: "PROXY UNKNOWN" with two full IPv6 addresses (proxy-protocol.txt §2.1). */
export const PROXY_V1_MAX = 107

const MAGIC_TEXT = 'PROXY '
/** §2.1: every v1 line starts with "PROXY" and a single space. */
export const V1_MAGIC = Buffer.from(MAGIC_TEXT, 'latin1')

const CR = 0x0d
const LF = 0x0a
const SP = 0x20

const PROTOCOLS: readonly string[] = ['TCP4', 'TCP6', 'UNKNOWN']
const UNKNOWN_PROTOCOL = `unknown protocol (expected ${PROTOCOLS.slice(0, -1).join(', ')} or ${PROTOCOLS.at(-1)})`
const FIELD_NAMES = ['protocol', 'source address', 'destination address', 'source port', 'destination port'] as const
const LAST_FIELD = FIELD_NAMES.length - 1

/**
 * Parse a v1 line at the start of `buf` (§2.1). The line is checked byte by
 * byte: every field text seen so far must be the prefix of a valid field, so
 * a bad byte is reported where it is, without waiting for the CRLF.
 */
export function parseProxyV1(buf: Buffer): ParseResult {
  if (!startsWithMagic(buf, V1_MAGIC)) return INCOMPLETE
  // texts[k] is field k (FIELD_NAMES) as far as it has been read.
  const texts = ['']
  // After "UNKNOWN " the receiver must ignore everything up to the CRLF (§2.1).
  let ignoreRest = false
  for (let i = V1_MAGIC.length; i < buf.length; i++) {
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
      return { status: 'complete', header: buildHeader(texts, i + 2) }
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
    return ok ? null : UNKNOWN_PROTOCOL
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

function buildHeader(texts: readonly string[], length: number): ProxyHeader {
  const [protocol, source = '', destination = '', sourcePort = '', destinationPort = ''] = texts
  let addresses: ProxyAddresses | null = null
  if (protocol !== 'UNKNOWN') {
    const v6 = protocol === 'TCP6'
    addresses = {
      family: v6 ? 'IPv6' : 'IPv4',
      sourceAddress: v6 ? canonicalIPv6(source) : source,
      sourcePort: Number(sourcePort),
      destinationAddress: v6 ? canonicalIPv6(destination) : destination,
      destinationPort: Number(destinationPort),
    }
  }
  return { version: 1, command: 'PROXY', addresses, tlvs: [], length }
}

/** `PROXY TCP4|TCP6 ...\r\n`, or `PROXY UNKNOWN\r\n` when the addresses are not known (§2.1). */
export function formatProxyV1(a: ProxyAddresses | null): Buffer {
  if (a === null) return Buffer.from(`${MAGIC_TEXT}UNKNOWN\r\n`, 'latin1')
  const source = sendableEndpoint(a.family, a.sourceAddress, a.sourcePort).text
  const destination = sendableEndpoint(a.family, a.destinationAddress, a.destinationPort).text
  const protocol = a.family === 'IPv4' ? 'TCP4' : 'TCP6'
  return Buffer.from(`${MAGIC_TEXT}${protocol} ${source} ${destination} ${a.sourcePort} ${a.destinationPort}\r\n`, 'latin1')
}
