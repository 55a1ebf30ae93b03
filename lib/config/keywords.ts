/**
 * The keyword table of tcpproxy.conf: for each keyword, whether its value is
 * one word or the rest of the line, whether it belongs to a service or to
 * the whole program, and how it applies its value. `port` and `interface`
 * shape the file into services and are handled by the parser (parse.ts).
 */
import { TcpproxyError } from '../errors.js'
import { parseListenSpec, parseServerList } from './address.js'
import { parseCidrList } from './cidr.js'
import { DEFAULT_CONTROL, DEFAULT_PIDFILE, type GlobalSettings, type ServiceSettings } from './config.js'
import type { PortLookup } from './port-names.js'
import {
  addCidrs,
  isProgram,
  parseBalance,
  parseCount,
  parseEnvPrefix,
  parseKeepalive,
  parseNumericId,
  parseProxyVersion,
  parseRedirectMode,
  parseSeconds,
  parseSourceAddress,
  parseWhole,
  parseYesNo,
  splitCommand,
  yesOrNo,
} from './values.js'

export interface Keyword {
  /** `word` values are one word; `rest` values take the rest of the line. */
  value: 'word' | 'rest'
  /** `service` keywords before the first `port` set the defaults of every service. */
  scope: 'global' | 'service'
  /** Applies the value; throws TcpproxyError with a reason on a bad value. */
  apply?: (s: ServiceSettings, g: GlobalSettings, value: string, lookup: PortLookup, inService: boolean) => void
  /** For keywords of other releases that this one refuses: the reason. */
  unsupported?: string
}

const userPart = (spec: string | null): string => (spec === null ? 'nobody' : (spec.split('.')[0] as string))
const groupPart = (spec: string | null): string => (spec?.includes('.') === true ? spec.slice(spec.indexOf('.')) : '')

// A Map, not an object literal: a keyword such as "constructor" must not find Object.prototype.
export const KEYWORDS: ReadonlyMap<string, Keyword> = new Map<string, Keyword>(Object.entries({
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
  keepalive: { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.keepalive = parseKeepalive(v)) },
  acp: { value: 'rest', scope: 'service', apply: (s, _g, v) => void (s.acp = splitCommand(v)) },
  'acp-timeout': { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.acpTimeout = parseSeconds(v)) },
  writefile: { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.writefile = v === '' ? null : v) },
  setenv: { value: 'word', scope: 'global', apply: (_s, g, v) => void (g.envPrefix = parseEnvPrefix(v)) },
  logname: { value: 'word', scope: 'global', apply: (_s, g, v) => void (g.logname = v === '' ? null : v) },
  standalone: {
    value: 'word',
    scope: 'global',
    // Unlike the other yes/no keywords, "-" is no answer here: the file either says or leaves it to the command line.
    apply: (_s, g, v) => {
      const yes = yesOrNo(v)
      if (yes === undefined) throw new TcpproxyError('ERR_CONFIG', `"standalone" takes yes or no`)
      g.standalone = yes
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
  balance: { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.balance = parseBalance(v)) },
  'max-fails': { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.maxFails = parseWhole(v)) },
  'fail-timeout': { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.failTimeout = parseSeconds(v)) },
  'check-interval': { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.checkInterval = parseSeconds(v)) },
  // Repeatable; a service starts from the defaults' lists and its lines add to them.
  allow: { value: 'rest', scope: 'service', apply: (s, _g, v) => void (s.allow = addCidrs(s.allow, v)) },
  deny: { value: 'rest', scope: 'service', apply: (s, _g, v) => void (s.deny = addCidrs(s.deny, v)) },
  'max-per-client': { value: 'word', scope: 'service', apply: (s, _g, v) => void (s.maxPerClient = parseWhole(v)) },
  user: { value: 'word', scope: 'global', apply: (_s, g, v) => void (g.user = v === '' ? null : v) },
  // 1.x spelled the user as numeric uid/gid lines; they become a `user` spec.
  uid: { value: 'word', scope: 'global', apply: (_s, g, v) => void (g.user = `${parseNumericId(v)}${groupPart(g.user)}`) },
  gid: { value: 'word', scope: 'global', apply: (_s, g, v) => void (g.user = `${userPart(g.user)}.${parseNumericId(v)}`) },
  workers: { value: 'word', scope: 'global', apply: (_s, g, v) => void (g.workers = v === '' ? null : parseCount(v)) },
  'max-programs': { value: 'word', scope: 'global', apply: (_s, g, v) => void (g.maxPrograms = v === '' ? null : parseCount(v)) },
  metrics: { value: 'word', scope: 'global', apply: (_s, g, v, lookup) => void (g.metrics = v === '' ? null : parseListenSpec(v, lookup)) },
  pidfile: { value: 'word', scope: 'global', apply: (_s, g, v) => void (g.pidfile = v === '' ? DEFAULT_PIDFILE : v) },
  control: { value: 'word', scope: 'global', apply: (_s, g, v) => void (g.control = v === '' ? DEFAULT_CONTROL : v) },
  'control-group': { value: 'word', scope: 'global', apply: (_s, g, v) => void (g.controlGroup = v === '' ? null : v) },
  // 2.0's debug keyword: parsed so that such a file fails loudly, never half-works.
  debug: { value: 'word', scope: 'global', unsupported: 'the debug keyword (use -d)' },
} satisfies Record<string, Keyword>))

/** Every keyword the parser knows (implemented or refused as not supported). */
export const KEYWORD_NAMES: readonly string[] = ['port', 'interface', ...KEYWORDS.keys()]
