/**
 * The value parsers: one configuration value (or the same value given as a
 * command-line option) in, a typed setting out. Pure; a bad value throws a
 * TcpproxyError with the reason only, and the caller adds the position
 * (FILE:LINE or the option).
 */
import { isIP } from 'node:net'
import { TcpproxyError } from '../errors.js'
import { hasControl } from '../text.js'
import { canonicalIp } from './address.js'
import { parseCidrList } from './cidr.js'
import { DEFAULT_GLOBALS, type BalanceMode, type RedirectMode } from './config.js'

function bad(reason: string): never {
  throw new TcpproxyError('ERR_CONFIG', reason)
}

/** `yes` and `no`, and nothing else: true, false or undefined. */
export function yesOrNo(text: string): boolean | undefined {
  return text === 'yes' ? true : text === 'no' ? false : undefined
}

/** `yes` or `no` (an empty value, `-`, is no). */
export function parseYesNo(text: string): boolean {
  return yesOrNo(text === '' ? 'no' : text) ?? bad(`expected yes or no, not ${JSON.stringify(text)}`)
}

/** Seconds: a non-negative decimal number ("30", "0.5"). */
export function parseSeconds(text: string): number {
  if (!/^\d+(\.\d+)?$/.test(text)) bad(`not a number of seconds: ${JSON.stringify(text)}`)
  return Number(text)
}

/** TCP_KEEPIDLE's range on Linux (net/ipv4/tcp.c MAX_TCP_KEEPIDLE). */
const MAX_KEEPIDLE = 32767

/** keepalive: whole seconds, 0 (off) to MAX_KEEPIDLE; the kernel counts in seconds. */
export function parseKeepalive(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > MAX_KEEPIDLE) bad(`not a whole number of seconds from 0 to ${MAX_KEEPIDLE}: ${JSON.stringify(text)}`)
  return Number(text)
}

/** A positive whole number (connection limits). */
export function parseCount(text: string): number {
  if (!/^[1-9]\d*$/.test(text)) bad(`not a positive whole number: ${JSON.stringify(text)}`)
  return Number(text)
}

/** A whole number, 0 included (0 turns a limit off). */
export function parseWhole(text: string): number {
  if (!/^(0|[1-9]\d*)$/.test(text)) bad(`not a whole number: ${JSON.stringify(text)}`)
  return Number(text)
}

const BALANCE_MODES: Record<BalanceMode, true> = { first: true, roundrobin: true, leastconn: true, source: true }

/** `balance first|roundrobin|leastconn|source` (an empty value, `-`, is first). */
export function parseBalance(text: string): BalanceMode {
  if (text === '') return 'first'
  return Object.hasOwn(BALANCE_MODES, text) ? (text as BalanceMode) : bad(`balance must be first, roundrobin, leastconn or source, not ${JSON.stringify(text)}`)
}

/** One more `allow` or `deny` line: its addresses and networks added to `list`, each once. */
export function addCidrs(list: readonly string[], text: string): string[] {
  return [...new Set([...list, ...parseCidrList(text)])]
}

/** A numeric user or group id (the 1.x `uid` and `gid` lines). */
export function parseNumericId(text: string): string {
  if (!/^\d+$/.test(text)) bad(`not a number: ${JSON.stringify(text)}`)
  return text
}

/** The 2.0 parser's spellings: `off`/`no` mean none, `redirect` means accept. */
const REDIRECT_MODES = new Map<string, RedirectMode>([
  ['none', 'none'],
  ['off', 'none'],
  ['no', 'none'],
  ['', 'none'],
  ['accept', 'accept'],
  ['redirect', 'accept'],
  ['forward', 'forward'],
  ['forward-only', 'forward-only'],
])

/** `redirect-mode none|accept|forward|forward-only`. */
export function parseRedirectMode(text: string): RedirectMode {
  return REDIRECT_MODES.get(text.toLowerCase()) ?? bad(`redirect mode must be none, accept, forward or forward-only, not ${JSON.stringify(text)}`)
}

/** `send-proxy v1|v2|none`. */
export function parseProxyVersion(text: string): 'v1' | 'v2' | null {
  if (text === 'v1' || text === 'v2') return text
  if (text === 'none' || text === '') return null
  return bad(`PROXY protocol version must be v1, v2 or none, not ${JSON.stringify(text)}`)
}

/** `srcip ADDRESS`: an IP address (a name could resolve to several, or to none later). */
export function parseSourceAddress(text: string): string | null {
  if (text === '') return null
  const ip = text.replace(/^\[(.*)\]$/, '$1')
  if (isIP(ip) === 0) bad(`source address must be an IPv4 or IPv6 address, not ${JSON.stringify(text)}`)
  return canonicalIp(ip)
}

/** An environment variable prefix: what a shell accepts in a variable name. */
export function parseEnvPrefix(text: string): string {
  if (text === '') return DEFAULT_GLOBALS.envPrefix
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(text)) bad(`not a variable name prefix: ${JSON.stringify(text)}`)
  return text
}

/** True for a server argument that names a handler program rather than a host. */
export function isProgram(text: string): boolean {
  return text.startsWith('/') || text.startsWith('.')
}

/**
 * A program's command line: words split on blanks, no quoting and no shell,
 * as the original (nothing a client sends can ever reach a shell).
 */
export function splitCommand(text: string): string[] | null {
  // A control character (NUL above all) can only be a mistake, and exec(2) would
  // refuse NUL; a TAB is a blank between words.
  if (hasControl(text.replaceAll('\t', ' '))) bad(`control character in program command line ${JSON.stringify(text)}`)
  const words = text.trim().split(/[ \t]+/).filter(w => w !== '')
  return words.length === 0 ? null : words
}
