/**
 * tcpproxy.conf: the original grammar (one directive per line, `#` comment
 * lines, case-insensitive keywords, `-` as an empty value). `port P` sets the
 * current port; each `interface I` starts a service for (P, I) that copies
 * the defaults; directives before the first `port` are those defaults.
 * Unlike the original, a per-service directive between `port` and the next
 * `interface` is an error instead of silently changing the previous service.
 *
 * The parser is pure: text in, services out, every error a ConfigError
 * naming FILE:LINE.
 */
import { ConfigError, TcpproxyError } from './errors.js'
import { parseInterface, parseServerList, type Endpoint } from './address.js'
import { parsePort, type PortLookup } from './services.js'

/** Per-service settings; the ones before the first `port` are the defaults. */
export interface ServiceSettings {
  /** Upstreams tried in order, or null when the service has none. */
  servers: Endpoint[] | null
  /** Idle timeout in seconds over both directions; 0 = none. */
  timeout: number
  /** Seconds allowed for each upstream connect attempt. */
  connectTimeout: number
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
  /** Ports in the order of their `port` lines, each once (for `-z`). */
  ports: number[]
}

export const DEFAULT_SETTINGS: ServiceSettings = Object.freeze({
  servers: null,
  timeout: 60,
  connectTimeout: 10,
})

/** A configuration line longer than this is refused rather than split (the original cut at 300 bytes). */
export const MAX_LINE = 4096

type Scope = 'global' | 'service'
interface Keyword {
  /** `word` values are one word; `rest` values take the rest of the line. */
  value: 'word' | 'rest'
  scope: Scope
  /** Applies the value; throws TcpproxyError with a reason on a bad value. */
  apply?: (s: ServiceSettings, value: string, lookup: PortLookup) => void
  /** For keywords a later release implements: parsed, then refused. */
  unsupported?: string
}

/** Seconds: a non-negative decimal number ("30", "0.5"). */
export function parseSeconds(text: string): number {
  if (!/^\d+(\.\d+)?$/.test(text)) throw new TcpproxyError('ERR_CONFIG', `not a number of seconds: ${JSON.stringify(text)}`)
  return Number(text)
}

const later = (what: string): Keyword => ({ value: 'rest', scope: 'service', unsupported: what })

// A Map, not an object literal: a keyword such as "constructor" must not find Object.prototype.
const KEYWORDS = new Map<string, Keyword>(Object.entries({
  server: {
    value: 'rest',
    scope: 'service',
    apply: (s, v, lookup) => {
      if (v.startsWith('/') || v.startsWith('.')) {
        throw new TcpproxyError('ERR_CONFIG', `"server" takes host[:port]; use "exec" for a handler program`)
      }
      s.servers = v === '' ? null : parseServerList(v, lookup)
    },
  },
  timeout: { value: 'word', scope: 'service', apply: (s, v) => void (s.timeout = parseSeconds(v)) },
  'connect-timeout': { value: 'word', scope: 'service', apply: (s, v) => void (s.connectTimeout = parseSeconds(v)) },
  // Parsed so that a file written for a later release fails loudly, never half-works.
  exec: later('handler programs'),
  acp: later('access control programs'),
  'acp-timeout': later('access control programs'),
  setenv: later('handler programs'),
  writefile: later('traffic dumps'),
  'max-connections': later('connection limits'),
  'accept-proxy': later('the PROXY protocol'),
  'send-proxy': later('the PROXY protocol'),
  'proxy-timeout': later('the PROXY protocol'),
  'redirect-mode': later('transparent proxying'),
  srcip: later('transparent proxying'),
  'forge-addr': later('transparent proxying'),
  'forge-port': later('transparent proxying'),
  user: { value: 'rest', scope: 'global', unsupported: 'changing the user' },
  uid: { value: 'word', scope: 'global', unsupported: 'changing the user' },
  gid: { value: 'word', scope: 'global', unsupported: 'changing the user' },
  pidfile: { value: 'word', scope: 'global', unsupported: 'pidfiles' },
  logname: { value: 'rest', scope: 'global', unsupported: 'syslog' },
  standalone: { value: 'word', scope: 'global', unsupported: 'inetd mode' },
  debug: { value: 'word', scope: 'global', unsupported: 'the debug keyword (use -d)' },
} satisfies Record<string, Keyword>))

/** Every keyword the parser knows (implemented or refused as not supported yet). */
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
export function parseConfig(text: string, file: string, lookup: PortLookup, initial: ServiceSettings = DEFAULT_SETTINGS): Config {
  const defaults: ServiceSettings = { ...initial }
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
    const { keyword, value: raw } = splitLine(line)

    if (keyword === 'port' || keyword === 'interface') {
      if (raw === '') fail(`missing value for "${keyword}"`)
      if (/\s/.test(raw)) fail(`unexpected text after "${keyword} ${raw.split(/\s/)[0]}"`)
      if (keyword === 'port') {
        closePort()
        const p = parsePort(raw, lookup)
        if (p === undefined) fail(`unknown port or service name: ${JSON.stringify(raw)}`)
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
    if (k.unsupported !== undefined) fail(`"${keyword}" is not supported yet (${k.unsupported})`)
    if (k.scope === 'service' && port !== null && current === null) {
      fail(`"${keyword}" must follow an "interface" line (after "port ${(port as { value: number }).value}")`)
    }
    const value = raw === '-' ? '' : raw
    try {
      ;(k.apply as NonNullable<Keyword['apply']>)(current ?? defaults, value, lookup)
    } catch (err) {
      fail((err as TcpproxyError).message)
    }
  }
  closePort()

  if (services.length === 0) throw new ConfigError(file, lastLine, 'no service defined (expected "port" and "interface" lines)')
  for (const s of services) {
    if (s.servers === null) {
      throw new ConfigError(file, s.source.line, `service ${s.ifaceText} port ${s.port} has no "server"`)
    }
  }
  return { services, ports }
}
