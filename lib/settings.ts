/**
 * From typed command-line options to a configuration: either the file
 * (`-c`/`-f`, or /etc/tcpproxy.conf when neither `-b` nor a server is given)
 * or the one service a command line describes (`-b [interface:]port server`).
 * Command-line `-t` and `--connect-timeout` are the defaults the file starts
 * from, as in the original.
 */
import { parseListenSpec, parseServerList } from './address.js'
import type { CliOptions } from './cli.js'
import { DEFAULT_SETTINGS, parseConfig, type Config, type ServiceSettings } from './config.js'
import { ConfigError, TcpproxyError, errorCode, errorText } from './errors.js'
import type { PortLookup } from './services.js'

export const DEFAULT_CONFIG_FILE = '/etc/tcpproxy.conf'

export interface SettingsDeps {
  readFile: (path: string) => string
  lookup: PortLookup
}

/** Command-line values that become the defaults of every service. */
function cliDefaults(o: CliOptions): ServiceSettings {
  return {
    ...DEFAULT_SETTINGS,
    ...(o.timeout === null ? {} : { timeout: o.timeout }),
    ...(o.connectTimeout === null ? {} : { connectTimeout: o.connectTimeout }),
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

/** The configuration the options describe. Throws TcpproxyError with a one-line message. */
export function buildConfig(o: CliOptions, deps: SettingsDeps): Config {
  const defaults = cliDefaults(o)
  const handler = o.server[0]?.startsWith('/') === true || o.server[0]?.startsWith('.') === true
  if (o.config !== null || (o.bind === null && o.server.length === 0)) {
    if (o.server.length > 0) throw new TcpproxyError('ERR_USAGE', 'a server argument and a configuration file exclude each other')
    if (o.bind !== null) throw new TcpproxyError('ERR_USAGE', '-b and a configuration file exclude each other')
    const file = o.config ?? DEFAULT_CONFIG_FILE
    let text: string
    try {
      text = deps.readFile(file)
    } catch (err) {
      throw new TcpproxyError('ERR_IO', `cannot read configuration file ${file}: ${errorCode(err)}`)
    }
    return parseConfig(text, file, deps.lookup, defaults)
  }
  if (handler) throw new TcpproxyError('ERR_NOT_SUPPORTED', 'handler programs are not supported yet')
  if (o.bind === null) throw new TcpproxyError('ERR_NOT_SUPPORTED', 'a server without -b (inetd mode) is not supported yet')
  const spec = fromOption('option -b', () => parseListenSpec(o.bind as string, deps.lookup))
  if (o.server.length === 0 && !o.listPorts) throw new TcpproxyError('ERR_USAGE', 'missing server argument after -b')
  const servers = o.server.length === 0 ? null : fromOption('server argument', () => parseServerList(o.server[0] as string, deps.lookup))
  return {
    ports: [spec.port],
    services: [
      {
        ...defaults,
        servers,
        port: spec.port,
        iface: spec.address,
        ifaceText: spec.address ?? '*',
        source: { file: 'option -b', line: 0 },
      },
    ],
  }
}
