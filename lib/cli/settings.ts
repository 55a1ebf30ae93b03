/**
 * From typed command-line options to a configuration: either the file
 * (`-c`/`-f`, or /etc/tcpproxy.conf when neither `-b` nor a server is given)
 * or the one service a command line describes (`-b [interface:]port server`).
 * Command-line `-t` and `--connect-timeout` are the defaults the file starts
 * from, as in the original.
 */
import { parseListenSpec, parseServerList } from '../config/address.js'
import type { CliOptions } from './options.js'
import { DEFAULT_GLOBALS, DEFAULT_SETTINGS, type Config, type GlobalSettings, type ServiceSettings } from '../config/config.js'
import { parseConfig } from '../config/parse.js'
import { problemError } from '../config/problem.js'
import { serviceProblem } from '../config/rules.js'
import { addCidrs, isProgram, parseBalance, parseEnvPrefix, parseProxyVersion, parseRedirectMode, parseSourceAddress, splitCommand } from '../config/values.js'
import { ConfigError, TcpproxyError, errnoText, errorCode, errorText } from '../errors.js'
import { parseCidrList } from '../config/cidr.js'
import type { PortLookup } from '../config/port-names.js'

export const DEFAULT_CONFIG_FILE = '/etc/tcpproxy.conf'

export interface SettingsDeps {
  readFile: (path: string) => string
  lookup: PortLookup
  /** The local port of a connection on standard input (inetd mode), else null. */
  inetdPort: number | null
  /** Why standard input is a socket but no TCP connection (lib/server/inetd.ts notTcpConnection), null when it is no socket. */
  stdinProblem?: () => string | null
}

/** Command-line values that become the defaults of every service. */
function cliDefaults(o: CliOptions): ServiceSettings {
  return {
    ...DEFAULT_SETTINGS,
    ...(o.timeout === null ? {} : { timeout: o.timeout }),
    ...(o.connectTimeout === null ? {} : { connectTimeout: o.connectTimeout }),
    ...(o.acp === null ? {} : { acp: splitCommand(o.acp) }),
    ...(o.acpTimeout === null ? {} : { acpTimeout: o.acpTimeout }),
    ...(o.writefile === null ? {} : { writefile: o.writefile }),
    ...(o.acceptProxy === null ? {} : { acceptProxy: fromOption('option --accept-proxy', () => parseCidrList(o.acceptProxy as string)) }),
    ...(o.proxyTimeout === null ? {} : { proxyTimeout: o.proxyTimeout }),
    ...(o.keepalive === null ? {} : { keepalive: o.keepalive }),
    ...(o.sendProxy === null ? {} : { sendProxy: fromOption('option --send-proxy', () => parseProxyVersion(o.sendProxy as string)) }),
    ...(o.redirectMode === null ? {} : { redirectMode: fromOption('option -r', () => parseRedirectMode(o.redirectMode as string)) }),
    ...(o.source === null ? {} : { sourceAddress: fromOption('option -q', () => parseSourceAddress(o.source as string)) }),
    ...(o.forgeAddr ? { forgeAddr: true } : {}),
    ...(o.forgePort ? { forgePort: true } : {}),
    ...(o.transparent ? { transparent: true } : {}),
    ...(o.balance === null ? {} : { balance: fromOption('option --balance', () => parseBalance(o.balance as string)) }),
    ...(o.maxFails === null ? {} : { maxFails: o.maxFails }),
    ...(o.failTimeout === null ? {} : { failTimeout: o.failTimeout }),
    ...(o.checkInterval === null ? {} : { checkInterval: o.checkInterval }),
    allow: fromOption('option --allow', () => o.allow.reduce(addCidrs, DEFAULT_SETTINGS.allow)),
    deny: fromOption('option --deny', () => o.deny.reduce(addCidrs, DEFAULT_SETTINGS.deny)),
    ...(o.maxPerClient === null ? {} : { maxPerClient: o.maxPerClient }),
  }
}

/** Command-line values of program-wide settings. */
function cliGlobals(o: CliOptions, lookup: PortLookup): GlobalSettings {
  return {
    ...DEFAULT_GLOBALS,
    ...(o.envPrefix === null ? {} : { envPrefix: fromOption('option -v', () => parseEnvPrefix(o.envPrefix as string)) }),
    ...(o.logname === null ? {} : { logname: o.logname }),
    ...(o.pidfile === null ? {} : { pidfile: o.pidfile }),
    ...(o.user === null ? {} : { user: o.user }),
    ...(o.maxConnections === null ? {} : { maxConnections: o.maxConnections }),
    ...(o.maxPrograms === null ? {} : { maxPrograms: o.maxPrograms }),
    ...(o.workers === null ? {} : { workers: o.workers }),
    ...(o.metrics === null ? {} : { metrics: fromOption('option --metrics', () => parseListenSpec(o.metrics as string, lookup)) }),
    ...(o.control === null ? {} : { control: o.control }),
    ...(o.controlGroup === null ? {} : { controlGroup: o.controlGroup }),
  }
}

/** Run a pure parser on a command-line value, naming the option in its error. */
function fromOption<T>(option: string, parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    throw new ConfigError(option, 0, errorText(err))
  }
}

/**
 * Whether to listen (standalone) or serve the one connection on standard
 * input (inetd). `-b` and `-s` mean standalone, a server without `-b`
 * means inetd; with a file, `standalone yes|no` decides, else whether
 * standard input is a socket (as tcpproxy 2.0).
 */
export function chooseMode(o: CliOptions, config: Config, stdinIsSocket: boolean): 'standalone' | 'inetd' {
  if (o.bind !== null || o.standalone) return 'standalone'
  if (o.server.length > 0) return 'inetd'
  const s = config.globals.standalone
  if (s !== null) return s ? 'standalone' : 'inetd'
  return stdinIsSocket ? 'inetd' : 'standalone'
}

/** The configuration the options describe. Throws TcpproxyError with a one-line message. */
export function buildConfig(o: CliOptions, deps: SettingsDeps): Config {
  const defaults = cliDefaults(o)
  const globals = cliGlobals(o, deps.lookup)
  if (o.config !== null || (o.bind === null && o.server.length === 0)) {
    if (o.server.length > 0) throw new TcpproxyError('ERR_USAGE', 'a server argument and a configuration file exclude each other')
    if (o.bind !== null) throw new TcpproxyError('ERR_USAGE', '-b and a configuration file exclude each other')
    const file = o.config ?? DEFAULT_CONFIG_FILE
    let text: string
    try {
      text = deps.readFile(file)
    } catch (err) {
      throw new TcpproxyError('ERR_IO', `cannot read configuration file ${file}: ${errnoText(errorCode(err))}`)
    }
    return parseConfig(text, file, deps.lookup, defaults, globals)
  }
  let port: number
  let iface: string | null = null
  let where = 'option -b'
  if (o.bind === null) {
    // A server without -b: the connection on standard input (inetd mode, or
    // a handler that exec'd tcpproxy); a missing server port is its local port.
    if (deps.inetdPort === null) {
      const problem = deps.stdinProblem?.() ?? null
      throw new TcpproxyError(
        'ERR_USAGE',
        problem === null
          ? 'a server without -b needs a connection on standard input (inetd mode); use -b PORT to listen'
          : `a server without -b needs a TCP connection on standard input (inetd mode), but ${problem}`,
      )
    }
    port = deps.inetdPort
    where = 'server argument'
  } else {
    const spec = fromOption('option -b', () => parseListenSpec(o.bind as string, deps.lookup))
    port = spec.port
    iface = spec.address
  }
  // forward-only connects to the original destination: no server needed.
  if (o.server.length === 0 && !o.listPorts && defaults.redirectMode !== 'forward-only') {
    throw new TcpproxyError('ERR_USAGE', 'missing server argument after -b')
  }
  const first = o.server[0]
  const handler = first !== undefined && isProgram(first)
  const servers = first === undefined || handler ? null : fromOption('server argument', () => parseServerList(first, deps.lookup))
  const service = {
    ...defaults,
    servers,
    // A handler's arguments are the further words of the command line.
    exec: handler ? o.server.flatMap(w => splitCommand(w) ?? []) : null,
    port,
    iface,
    ifaceText: iface ?? '*',
    source: { file: where, line: 0 },
  }
  const problem = o.listPorts ? null : serviceProblem(service)
  if (problem !== null) throw problemError(service, problem)
  return { ports: [port], globals, services: [service] }
}
