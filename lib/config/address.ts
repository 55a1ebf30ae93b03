/**
 * Pure parsers for the address forms a user writes: server lists
 * (`host[:port][,host[:port]...]`, `[v6addr]:port`), listen specs
 * (`[interface:]port`) and interface names. They throw TcpproxyError with a
 * reason; callers add the position (FILE:LINE or the option).
 */
import { isIP } from 'node:net'
import { TcpproxyError } from '../errors.js'
import { badPortText, parsePort, type PortLookup } from './port-names.js'

/** One upstream: `port` null means "the port the client connected to". */
export interface Endpoint {
  host: string
  port: number | null
}

/** Where to listen: `address` null means every local address, IPv4 and IPv6. */
export interface ListenSpec {
  address: string | null
  port: number
  /** A TPROXY listener (IP_TRANSPARENT): takes connections addressed to any address. */
  transparent?: boolean
}

const WILDCARDS = new Set(['', '*', 'any', '0.0.0.0', '::'])

function bad(reason: string): never {
  throw new TcpproxyError('ERR_CONFIG', reason)
}

/**
 * The eight 16-bit groups of an IPv6 text that isIP accepts (no zone), a
 * dotted IPv4 tail (`::ffff:192.0.2.1`) included.
 */
export function ipv6Groups(text: string): number[] {
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
 * inet_ntop6) of eight 16-bit groups: lower case, no leading zeros, the
 * first longest run of two or more zero groups as "::", and a dotted tail for
 * IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) addresses.
 */
export function formatIPv6(groups: readonly number[]): string {
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

/**
 * The canonical text of an IP address, for comparing addresses: IPv6 as
 * Node reports socket addresses (formatIPv6), its zone kept as written
 * (`fe80::1%eth0`), and IPv4-mapped IPv6 as plain IPv4 (so
 * `::ffff:127.0.0.2` matches an `interface 127.0.0.2` line).
 */
export function canonicalIp(ip: string): string {
  // Every IPv6 address has a colon: the common IPv4 case without isIP's regular expression.
  if (!ip.includes(':') || isIP(ip) !== 6) return ip
  const pct = ip.indexOf('%')
  const zone = pct < 0 ? '' : ip.slice(pct)
  const groups = ipv6Groups(pct < 0 ? ip : ip.slice(0, pct))
  const text = formatIPv6(groups)
  return text.startsWith('::ffff:') && text.includes('.') ? text.slice('::ffff:'.length) : text + zone
}

/** `host` for log lines and URLs: IPv6 addresses in brackets. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') && isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}

/** True for the interface words that mean "any local address". */
export function isWildcard(iface: string): boolean {
  return WILDCARDS.has(iface) || iface === '[::]'
}

/**
 * A DNS host name, in any case: labels of letters, digits and hyphens, no
 * hyphen at either end, at most 63 characters each (RFC 1035, RFC 1123),
 * 253 in all. `underscore`: labels may hold `_` too, as resolvers accept
 * (a host written in the configuration may). `finalDot`: the root's dot
 * may end the name (`mail.example.org.`).
 */
export function hostNamePattern(o: { underscore: boolean; finalDot: boolean }): RegExp {
  const c = o.underscore ? 'a-z0-9_' : 'a-z0-9'
  // First character, up to 61 in the middle, last.
  const label = `[${c}]([${c}-]{0,61}[${c}])?`
  return new RegExp(`^(?=.{1,253}$)${label}(\\.${label})*${o.finalDot ? '\\.?' : ''}$`, 'i')
}

const HOSTNAME = hostNamePattern({ underscore: true, finalDot: true })

/** Validate a host: an IP address (brackets allowed for IPv6) or a DNS name. */
export function parseHost(text: string): string {
  const inner = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text
  if (isIP(inner) !== 0) return canonicalIp(inner)
  if (inner === text && HOSTNAME.test(text)) return text.toLowerCase()
  return bad(`bad host name or address: ${JSON.stringify(text)}`)
}

/**
 * Split `host[:port]` / `[v6]:port` / a bare IPv6 address. The port part is
 * returned as written (a number or a service name) or null.
 */
function splitHostPort(text: string): { host: string; port: string | null } {
  if (text.startsWith('[')) {
    const close = text.indexOf(']')
    if (close < 0) bad(`missing "]" in ${JSON.stringify(text)}`)
    const rest = text.slice(close + 1)
    if (rest !== '' && !rest.startsWith(':')) bad(`unexpected text after "]" in ${JSON.stringify(text)}`)
    return { host: text.slice(0, close + 1), port: rest === '' ? null : rest.slice(1) }
  }
  const colons = text.split(':').length - 1
  // More than one colon without brackets can only be an IPv6 address.
  if (colons > 1) return { host: text, port: null }
  if (colons === 0) return { host: text, port: null }
  const at = text.indexOf(':')
  return { host: text.slice(0, at), port: text.slice(at + 1) }
}

function port(text: string, lookup: PortLookup): number {
  const p = parsePort(text, lookup)
  if (p === undefined) return bad(badPortText(text))
  return p
}

/**
 * A server argument or `server` value: comma-separated `host[:port]` items
 * (blanks around commas allowed), tried in order until one connects.
 */
export function parseServerList(text: string, lookup: PortLookup): Endpoint[] {
  const items = text.split(',').map(s => s.trim())
  if (items.some(s => s === '')) bad(`empty item in server list ${JSON.stringify(text)}`)
  return items.map(item => {
    const hp = splitHostPort(item)
    if (hp.host === '') bad(`missing host in ${JSON.stringify(item)}`)
    return { host: parseHost(hp.host), port: hp.port === null ? null : port(hp.port, lookup) }
  })
}

/** An interface word: null for the wildcard, else a canonical IP or a host name to resolve. */
export function parseInterface(text: string): string | null {
  return isWildcard(text) ? null : parseHost(text)
}

/** `-b [interface:]port`: a port alone means every interface. */
export function parseListenSpec(text: string, lookup: PortLookup): ListenSpec {
  const hp = splitHostPort(text)
  if (hp.port === null) {
    // A lone word is the port (`-b 8025`, `-b smtp`); a bracketed host needs a port.
    if (text.startsWith('[') || hp.host.includes(':')) bad(`missing port in ${JSON.stringify(text)}`)
    return { address: null, port: port(text, lookup) }
  }
  return { address: parseInterface(hp.host), port: port(hp.port, lookup) }
}
