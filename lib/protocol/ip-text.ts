/**
 * Addresses and ports as text, in the strict forms the PROXY protocol allows
 * (proxy-protocol.txt §2.1): the checks the v1 parser runs on every prefix
 * of a field, the canonical IPv6 text both parsers report, and the
 * validation of the addresses a formatter is asked to send.
 *
 * The checks take a prefix (`complete` false) as well as a whole field, so
 * that the v1 parser can reject a bad byte as soon as it arrives. Each
 * returns why the text is refused, or null.
 */
import { formatIPv6, ipv6Groups } from '../config/address.js'
import { TcpproxyError } from '../errors.js'
import type { ProxyAddresses } from './header.js'

const COLON = 0x3a
const DOT = 0x2e

// Reasons given in more than one place.
const IPV6_TOO_LONG = 'IPv6 address longer than 128 bits'
const IPV6_TOO_SHORT = 'IPv6 address shorter than 128 bits'
const IPV6_SINGLE_LEADING_COLON = 'IPv6 address starts with a single ":"'

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

function isHexDigit(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
}

/** §2.1: ports are decimal 0-65535 without leading zeros (no octal confusion). */
export function checkPort(text: string): string | null {
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
export function checkIPv4(text: string, complete: boolean): string | null {
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
export function checkIPv6(text: string, complete: boolean): string | null {
  const dot = text.indexOf('.')
  const colon = dot === -1 ? -1 : text.lastIndexOf(':', dot)
  const hex = dot === -1 ? text : text.slice(0, colon + 1)
  const scan = scanGroups(hex)
  if (typeof scan === 'string') return scan
  if (dot !== -1) {
    if (colon === -1) return 'invalid character in IPv6 address'
    if (hex === ':') return IPV6_SINGLE_LEADING_COLON
    // The IPv4 tail stands for the last two groups.
    if (scan.groups + 2 > (scan.double ? 7 : 8)) return IPV6_TOO_LONG
    if (!scan.double && scan.groups !== 6) return IPV6_TOO_SHORT
    return checkIPv4(text.slice(colon + 1), complete)
  }
  if (complete) {
    if (text.endsWith(':') && !text.endsWith('::')) return 'IPv6 address ends with a single ":"'
    if (!scan.double && scan.groups !== 8) return IPV6_TOO_SHORT
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
      if (i === 1 && text.charCodeAt(0) === COLON) return IPV6_SINGLE_LEADING_COLON
      if (digits === 0 && ++groups > max) return IPV6_TOO_LONG
      if (++digits > 4) return 'IPv6 group longer than 4 hex digits'
    } else if (c === COLON) {
      if (i > 0 && text.charCodeAt(i - 1) === COLON) {
        if (double) return 'more than one "::" in IPv6 address'
        double = true
      } else if (i > 0 && groups + 1 > max) {
        // A single colon after a group promises another group.
        return IPV6_TOO_LONG
      }
      digits = 0
    } else {
      return 'invalid character in IPv6 address'
    }
  }
  return { groups, double }
}

/** Node's canonical form of an IPv6 text already accepted by checkIPv6. */
export function canonicalIPv6(text: string): string {
  return formatIPv6(ipv6Groups(text))
}

/**
 * Validate one endpoint a formatter is to send: its text (canonical for
 * IPv6) and its address bytes in network order. A zone index (fe80::1%eth0,
 * as Node reports link-local peers) is dropped: the protocol has no field
 * for it. Bad input is a bug in the caller, reported rather than sent as a
 * header the peer must reject.
 */
export function sendableEndpoint(
  family: ProxyAddresses['family'],
  address: string,
  port: number,
): { text: string; bytes: Buffer } {
  const invalid = (what: string): TcpproxyError =>
    new TcpproxyError('ERR_RUNTIME', `cannot format a PROXY header: invalid ${what}`)
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw invalid(`port ${port}`)
  if (family === 'IPv4') {
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
