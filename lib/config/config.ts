/**
 * tcpproxy.conf: the original grammar (one directive per line, `#` comment
 * lines, case-insensitive keywords, `-` as an empty value; a `#` after a value
 * is refused rather than taken as part of it). `port P` sets the
 * current port; each `interface I` starts a service for (P, I) that copies
 * the defaults; directives before the first `port` are those defaults.
 * Unlike the original, a per-service directive between `port` and the next
 * `interface` is an error instead of silently changing the previous service.
 *
 * The parser is pure: text in, services out, every error a ConfigError
 * naming FILE:LINE.
 */
import { ConfigError, TcpproxyError, type ErrorCode } from '../errors.js'
import { isIP } from 'node:net'
import { canonicalIp, parseInterface, parseServerList, type Endpoint } from './address.js'
import { parseCidrList } from './cidr.js'
import { DEFAULT_PIDFILE } from '../daemon/pidfile.js'
import { badPortText, parsePort, type PortLookup } from './port-names.js'

/** Per-service settings; the ones before the first `port` are the defaults. */
export interface ServiceSettings {
  /** Upstreams tried in order, or null when the service has none. */
  servers: Endpoint[] | null
  /** Idle timeout in seconds over both directions; 0 = none. */
  timeout: number
  /** Seconds allowed for each upstream connect attempt. */
  connectTimeout: number
  /** A handler program's command line (words), run instead of connecting to a server. */
  exec: string[] | null
  /** The access control program's command line, or null. */
  acp: string[] | null
  /** Seconds the access control program may run before access is denied. */
  acpTimeout: number
  /** Base name of the per-connection traffic dump files, or null. */
  writefile: string | null
  /** Peers (`address/prefix`) whose connections must start with a PROXY header; null = none. */
  acceptProxy: string[] | null
  /** Seconds a trusted peer has to send the complete PROXY header. */
  proxyTimeout: number
  /** PROXY protocol version sent to upstreams, or null. */
  sendProxy: 'v1' | 'v2' | null
  /** At most this many sessions of this service at once; null = no limit. */
  maxConnections: number | null
  /** What to do with the original destination of a REDIRECTed (or TPROXY'd) connection. */
  redirectMode: RedirectMode
  /** A fixed source address for upstream connections (`srcip`, `-q`), or null. */
  sourceAddress: string | null
  /** Connect upstream from the client's address (Zorp's forge_addr); needs CAP_NET_ADMIN. */
  forgeAddr: boolean
  /** ...and from the client's port too (forge_port). */
  forgePort: boolean
  /** The listener takes TPROXY'd connections (IP_TRANSPARENT); needs CAP_NET_ADMIN. */
  transparent: boolean
}

/**
 * `redirect-mode` (tcpproxy 2.0's `-r`): `none` ignores the original
 * destination; `accept` learns it (log, environment, PROXY header) and still
 * connects to the configured server; `forward` connects to it when the
 * connection was redirected, else to the server; `forward-only` refuses
 * connections that were not redirected.
 */
export type RedirectMode = 'none' | 'accept' | 'forward' | 'forward-only'

/** Settings of the whole program, wherever they appear in the file. */
export interface GlobalSettings {
  /** Prefix of the environment variables given to handlers and ACPs (`setenv`). */
  envPrefix: string
  /** Name in log lines and PROXY_LOGNAME (`logname`); null = the program name. */
  logname: string | null
  /** `standalone yes|no`; null when the file does not say. */
  standalone: boolean | null
  /** Where to write the pid (`pidfile`), or null. */
  pidfile: string | null
  /** `user USER[.GROUP]` to run as when started as root; null = nobody. */
  user: string | null
  /** At most this many sessions at once, all services together; null = no limit. */
  maxConnections: number | null
  /** Worker processes sharing the listeners (`workers`, `--workers`); null = 1. Read at start-up. */
  workers: number | null
}

/** One (port, interface) service. */
export interface ServiceDef extends ServiceSettings {
  port: number
  /** Canonical IP or host name; null = every local address. */
  iface: string | null
  /** The interface as written (`*`, `127.0.0.1`, `mail.example.org`), for PROXY_CONFIG. */
  ifaceText: string
  /** Where it was defined: the file (or `command line`) and line (0 for the command line). */
  source: { file: string; line: number }
}

export interface Config {
  services: ServiceDef[]
  globals: GlobalSettings
  /** Ports in the order of their `port` lines, each once (for `-z`). */
  ports: number[]
}

export const DEFAULT_SETTINGS: ServiceSettings = Object.freeze({
  servers: null,
  timeout: 60,
  connectTimeout: 10,
  exec: null,
  acp: null,
  acpTimeout: 10,
  writefile: null,
  acceptProxy: null,
  // The spec asks receivers to allow at least 3 s, for a TCP retransmit.
  proxyTimeout: 5,
  sendProxy: null,
  maxConnections: null,
  redirectMode: 'none',
  sourceAddress: null,
  forgeAddr: false,
  forgePort: false,
  transparent: false,
})

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
  const mode = REDIRECT_MODES.get(text.toLowerCase())
  if (mode === undefined) {
    throw new TcpproxyError('ERR_CONFIG', `redirect mode must be none, accept, forward or forward-only, not ${JSON.stringify(text)}`)
  }
  return mode
}

/** `yes` or `no` (an empty value, `-`, is no). */
export function parseYesNo(text: string): boolean {
  if (text === 'yes' || text === 'no' || text === '') return text === 'yes'
  throw new TcpproxyError('ERR_CONFIG', `expected yes or no, not ${JSON.stringify(text)}`)
}

/** `srcip ADDRESS`: an IP address (a name could resolve to several, or to none later). */
export function parseSourceAddress(text: string): string | null {
  if (text === '') return null
  const ip = text.replace(/^\[(.*)\]$/, '$1')
  if (isIP(ip) === 0) throw new TcpproxyError('ERR_CONFIG', `source address must be an IPv4 or IPv6 address, not ${JSON.stringify(text)}`)
  return canonicalIp(ip)
}

/** The command-line options of the keywords that errors about a command-line service must name instead. */
export const KEYWORD_OPTIONS: Readonly<Record<string, string>> = Object.freeze({
  'redirect-mode': '-r',
  srcip: '-q',
  'forge-addr': '--forge-addr',
  'forge-port': '--forge-port',
  transparent: '--transparent',
})

/**
 * An error about one setting of service `s`, found after parsing (at
 * start-up or reload): a file's service is named by FILE:LINE and
 * `fileReason`, a command-line service by the option of `keyword` and
 * `cliReason`.
 */
export function settingError(s: ServiceDef, keyword: string, fileReason: string, cliReason: string, code?: ErrorCode): ConfigError {
  if (s.source.line > 0) return new ConfigError(s.source.file, s.source.line, fileReason, code)
  return new ConfigError(`option ${KEYWORD_OPTIONS[keyword] as string}`, 0, cliReason, code)
}

/**
 * What no single keyword can check: settings that only make sense together.
 * Returns the reason a service is unusable, or null.
 */
export function serviceProblem(s: ServiceSettings): string | null {
  if (s.servers === null && s.exec === null && s.redirectMode !== 'forward-only') {
    return 'has no "server" or "exec" (only "redirect-mode forward-only" needs neither)'
  }
  if (s.exec !== null && s.redirectMode === 'forward') {
    return 'has a handler ("exec"), so it cannot forward to the original destination (use redirect-mode accept or forward-only)'
  }
  if (s.forgePort && !s.forgeAddr) return 'sets "forge-port yes" without "forge-addr yes"'
  if (s.forgeAddr && s.sourceAddress !== null) return 'sets both "srcip" and "forge-addr yes"; an upstream connection has one source'
  return null
}

/** `send-proxy v1|v2|none`. */
export function parseProxyVersion(text: string): 'v1' | 'v2' | null {
  if (text === 'v1' || text === 'v2') return text
  if (text === 'none' || text === '') return null
  throw new TcpproxyError('ERR_CONFIG', `PROXY protocol version must be v1, v2 or none, not ${JSON.stringify(text)}`)
}

export const DEFAULT_GLOBALS: GlobalSettings = Object.freeze({
  envPrefix: 'PROXY_',
  logname: null,
  standalone: null,
  pidfile: null,
  user: null,
  maxConnections: null,
  workers: null,
})




/** A positive whole number (connection limits). */
export function parseCount(text: string): number {
  if (!/^[1-9]\d*$/.test(text)) throw new TcpproxyError('ERR_CONFIG', `not a positive whole number: ${JSON.stringify(text)}`)
  return Number(text)
}

/**
 * A program's command line: words split on blanks, no quoting and no shell,
 * as the original (nothing a client sends can ever reach a shell).
 */
export function splitCommand(text: string): string[] | null {
  // A control character (NUL above all) can only be a mistake, and exec(2) would refuse it.
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(text)) {
    throw new TcpproxyError('ERR_CONFIG', `control character in program command line ${JSON.stringify(text)}`)
  }
  const words = text.trim().split(/[ \t]+/).filter(w => w !== '')
  return words.length === 0 ? null : words
}

/** True for a server argument that names a handler program rather than a host. */
export function isProgram(text: string): boolean {
  return text.startsWith('/') || text.startsWith('.')
}

/** An environment variable prefix: what a shell accepts in a variable name. */
export function parseEnvPrefix(text: string): string {
  if (text === '') return DEFAULT_GLOBALS.envPrefix
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(text)) throw new TcpproxyError('ERR_CONFIG', `not a variable name prefix: ${JSON.stringify(text)}`)
  return text
}

/** A configuration line longer than this is refused rather than split (the original cut at 300 bytes). */
export const MAX_LINE = 4096

type Scope = 'global' | 'service'
interface Keyword {
  /** `word` values are one word; `rest` values take the rest of the line. */
  value: 'word' | 'rest'
  scope: Scope
  /** Applies the value; throws TcpproxyError with a reason on a bad value. */
  apply?: (s: ServiceSettings, g: GlobalSettings, value: string, lookup: PortLookup, inService: boolean) => void
  /** For keywords of other releases that this one refuses: the reason. */
  unsupported?: string
}

/** Seconds: a non-negative decimal number ("30", "0.5"). */
export function parseSeconds(text: string): number {
  if (!/^\d+(\.\d+)?$/.test(text)) throw new TcpproxyError('ERR_CONFIG', `not a number of seconds: ${JSON.stringify(text)}`)
  return Number(text)
}

// A Map, not an object literal: a keyword such as "constructor" must not find Object.prototype.
const KEYWORDS = new Map<string, Keyword>(Object.entries({
  server: {
    value: 'rest',
    scope: 'service',
    apply: (s, _g, v, lookup) => {
      if (isProgram(v)) throw new TcpproxyError('ERR_CONFIG', `"server" takes host[:port]; use "exec" for a handler program`)
      s.servers = v === '' ? null : parseServerList(v, lookup)
      // A service's own server replaces a default handler, and vice versa.
      if (s.servers !== null) s.exec = null
    },
  },
  exec: {
    value: 'rest',
    scope: 'service',
    apply: (s, _g, v) => {
      if (v !== '' && !isProgram(v)) throw new TcpproxyError('ERR_CONFIG', `"exec" needs a program path starting with "/" or "."`)
      s.exec = splitCommand(v)
      if (s.exec !== null) s.servers = null
    },
  },
  timeout: { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.timeout = parseSeconds(v)) },
  'connect-timeout': { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.connectTimeout = parseSeconds(v)) },
  acp: { value: 'rest', scope: 'service', apply: (s, _g, v) => void (s.acp = splitCommand(v)) },
  'acp-timeout': { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.acpTimeout = parseSeconds(v)) },
  writefile: { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.writefile = v === '' ? null : v) },
  setenv: { value: 'word', scope: 'global', apply: (_s, g, v) => void (g.envPrefix = parseEnvPrefix(v)) },
  logname: { value: 'word', scope: 'global', apply: (_s, g, v) => void (g.logname = v === '' ? null : v) },
  standalone: {
    value: 'word',
    scope: 'global',
    apply: (_s, g, v) => {
      if (v !== 'yes' && v !== 'no') throw new TcpproxyError('ERR_CONFIG', `"standalone" takes yes or no`)
      g.standalone = v === 'yes'
    },
  },
  // Before the first port the limit of the whole daemon, after an interface that of the service.
  'max-connections': {
    value: 'word',
    scope: 'service',
    apply: (s, g, v, _lookup, inService) => {
      if (inService) s.maxConnections = parseCount(v)
      else g.maxConnections = parseCount(v)
    },
  },
  'accept-proxy': { value: 'rest', scope: 'service', apply: (s, _g, v) => void (s.acceptProxy = v === '' ? null : parseCidrList(v)) },
  'send-proxy': { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.sendProxy = parseProxyVersion(v)) },
  'proxy-timeout': { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.proxyTimeout = parseSeconds(v)) },
  'redirect-mode': { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.redirectMode = parseRedirectMode(v)) },
  srcip: { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.sourceAddress = parseSourceAddress(v)) },
  'forge-addr': { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.forgeAddr = parseYesNo(v)) },
  'forge-port': { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.forgePort = parseYesNo(v)) },
  transparent: { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.transparent = parseYesNo(v)) },
  user: { value: 'word', scope: 'global', apply: (_s, g, v) => void (g.user = v === '' ? null : v) },
  // 1.x spelled the user as numeric uid/gid lines; they become a `user` spec.
  uid: { value: 'word', scope: 'global', apply: (_s, g, v) => void (g.user = `${numeric(v)}${groupPart(g.user)}`) },
  gid: { value: 'word', scope: 'global', apply: (_s, g, v) => void (g.user = `${userPart(g.user)}.${numeric(v)}`) },
  workers: { value: 'word', scope: 'global', apply: (_s, g, v) => void (g.workers = v === '' ? null : parseCount(v)) },
  pidfile: { value: 'word', scope: 'global', apply: (_s, g, v) => void (g.pidfile = v === '' ? DEFAULT_PIDFILE : v) },
  // 2.0's debug keyword: parsed so that such a file fails loudly, never half-works.
  debug: { value: 'word', scope: 'global', unsupported: 'the debug keyword (use -d)' },
} satisfies Record<string, Keyword>))

function numeric(text: string): string {
  if (!/^\d+$/.test(text)) throw new TcpproxyError('ERR_CONFIG', `not a number: ${JSON.stringify(text)}`)
  return text
}
const userPart = (spec: string | null): string => (spec === null ? 'nobody' : (spec.split('.')[0] as string))
const groupPart = (spec: string | null): string => (spec?.includes('.') === true ? spec.slice(spec.indexOf('.')) : '')

/** Every keyword the parser knows (implemented or refused as not supported). */
export const KEYWORD_NAMES: readonly string[] = ['port', 'interface', ...KEYWORDS.keys()]

/** Split a line into keyword and value; the value of `word` keywords must be one word. */
function splitLine(line: string): { keyword: string; value: string } {
  // `s`: the value may hold a lone CR or U+2028, which `.` alone does not match.
  const m = /^(\S+)(?:\s+(.*))?$/s.exec(line) as RegExpExecArray
  return { keyword: (m[1] as string).toLowerCase(), value: m[2] ?? '' }
}

/**
 * Parse configuration text. `file` names it in errors; `lookup` resolves port
 * names; `initial` are the defaults before the file's own (from the command line).
 */
export function parseConfig(
  text: string,
  file: string,
  lookup: PortLookup,
  initial: ServiceSettings = DEFAULT_SETTINGS,
  initialGlobals: GlobalSettings = DEFAULT_GLOBALS,
): Config {
  const defaults: ServiceSettings = { ...initial }
  const globals: GlobalSettings = { ...initialGlobals }
  const services: ServiceDef[] = []
  const ports: number[] = []
  const seen = new Map<string, number>()
  let port: { value: number; line: number; used: boolean } | null = null
  let current: ServiceDef | null = null

  const closePort = (): void => {
    if (port !== null && !port.used) {
      throw new ConfigError(file, port.line, `"port ${port.value}" has no "interface" line (use "interface *" for every address)`)
    }
  }

  // CRLF files parse too: the CR goes with the line end.
  const lines = text.split(/\r?\n/)
  // A final newline ends the last line rather than starting another.
  const lastLine = Math.max(1, lines.length - (lines[lines.length - 1] === '' ? 1 : 0))
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1
    const line = (lines[i] as string).trim()
    if (line === '' || line.startsWith('#')) continue
    const fail = (reason: string): never => {
      throw new ConfigError(file, lineNo, reason)
    }
    if (line.length > MAX_LINE) fail(`line longer than ${MAX_LINE} characters`)
    // `#` starts a comment only at the start of a line (as in the original):
    // after a value it would become part of it, in an `exec` line program arguments.
    const comment = /\s#/.exec(line)
    if (comment !== null) fail(`a comment must be on a line of its own, not after a value: "${line.slice(comment.index).trim()}"`)
    const { keyword, value: raw } = splitLine(line)

    if (keyword === 'port' || keyword === 'interface') {
      if (raw === '') fail(`missing value for "${keyword}"`)
      if (/\s/.test(raw)) fail(`unexpected text after "${keyword} ${raw.split(/\s/)[0]}"`)
      if (keyword === 'port') {
        closePort()
        const p = parsePort(raw, lookup)
        if (p === undefined) fail(badPortText(raw))
        port = { value: p as number, line: lineNo, used: false }
        if (!ports.includes(port.value)) ports.push(port.value)
        current = null
        continue
      }
      if (port === null) fail(`"interface" before any "port" line`)
      const p = port as { value: number; line: number; used: boolean }
      let iface: string | null = null
      try {
        iface = parseInterface(raw)
      } catch (err) {
        fail((err as TcpproxyError).message)
      }
      const key = `${iface ?? '*'} ${p.value}`
      const first = seen.get(key)
      if (first !== undefined) fail(`duplicate service ${iface ?? '*'} port ${p.value} (first defined at line ${first})`)
      seen.set(key, lineNo)
      p.used = true
      current = { ...defaults, port: p.value, iface, ifaceText: raw, source: { file, line: lineNo } }
      services.push(current)
      continue
    }

    const kw = KEYWORDS.get(keyword)
    if (kw === undefined) fail(`unknown keyword ${JSON.stringify(keyword)}`)
    const k = kw as Keyword
    if (raw === '') fail(`missing value for "${keyword}"`)
    if (k.value === 'word' && /\s/.test(raw)) fail(`unexpected text after "${keyword} ${raw.split(/\s/)[0]}"`)
    if (k.unsupported !== undefined) fail(`"${keyword}" is not supported (${k.unsupported})`)
    if (k.scope === 'service' && port !== null && current === null) {
      fail(`"${keyword}" must follow an "interface" line (after "port ${(port as { value: number }).value}")`)
    }
    const value = raw === '-' ? '' : raw
    try {
      ;(k.apply as NonNullable<Keyword['apply']>)(current ?? defaults, globals, value, lookup, current !== null)
    } catch (err) {
      fail((err as TcpproxyError).message)
    }
  }
  closePort()

  if (services.length === 0) throw new ConfigError(file, lastLine, 'no service defined (expected "port" and "interface" lines)')
  for (const s of services) {
    const problem = serviceProblem(s)
    if (problem !== null) throw new ConfigError(file, s.source.line, `service ${s.ifaceText} port ${s.port} ${problem}`)
  }
  return { services, ports, globals }
}
