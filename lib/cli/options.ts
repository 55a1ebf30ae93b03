/**
 * The command line: argv in, typed options out. Nothing else: no files, no
 * sockets, no process.exit. The classic letters keep the original's meaning
 * (tcpproxy(1) 1.x/2.0); long options are ours.
 */
import { Command, CommanderError, Option } from 'commander'
import { TcpproxyError } from '../errors.js'
import { DEFAULT_GLOBALS, DEFAULT_PIDFILE, DEFAULT_SETTINGS } from '../config/config.js'
import { isProgram, parseCount, parseKeepalive, parseSeconds, parseWhole } from '../config/values.js'

export interface CliOptions {
  /** `-b [interface:]port` as written. */
  bind: string | null
  /** `-c`/`-f FILE`. */
  config: string | null
  debug: boolean
  standalone: boolean
  /** `-t SECONDS` (0 = no idle timeout). */
  timeout: number | null
  connectTimeout: number | null
  listPorts: boolean
  check: boolean
  /** `-a PROG`: access control program command line. */
  acp: string | null
  acpTimeout: number | null
  /** `-v PREFIX`: environment variable prefix for handlers and ACPs. */
  envPrefix: string | null
  /** `-n`: no reverse DNS lookup of clients. */
  noResolve: boolean
  /** `-w BASE`: traffic dump file base name. */
  writefile: string | null
  /** `-l NAME`: the name in log lines. */
  logname: string | null
  /** `--accept-proxy CIDR[,CIDR...]` as written. */
  acceptProxy: string | null
  proxyTimeout: number | null
  /** `--keepalive SECONDS` (0 = off). */
  keepalive: number | null
  /** `--send-proxy v1|v2|none` as written. */
  sendProxy: string | null
  /** `-p` (the default pidfile) or `--pidfile FILE`. */
  pidfile: string | null
  /** `-u USER[.GROUP]`. */
  user: string | null
  /** `--foreground`: stay in the foreground (systemd, containers) without -d's debug lines. */
  foreground: boolean
  syslogSocket: string | null
  syslogFacility: string | null
  logFormat: 'text' | 'json' | null
  /** `--grace SECONDS`: how long open sessions may finish after SIGTERM. */
  grace: number | null
  maxConnections: number | null
  /** `--max-programs N`: ACP and handler processes at once (null = the default, DEFAULT_MAX_PROGRAMS). */
  maxPrograms: number | null
  /** `-r MODE` as written. */
  redirectMode: string | null
  /** `-q`/`--source ADDRESS` as written. */
  source: string | null
  forgeAddr: boolean
  forgePort: boolean
  transparent: boolean
  /** `--workers N`: worker processes sharing the listeners (null = 1). */
  workers: number | null
  /** `--balance MODE`, checked with the other settings. */
  balance: string | null
  maxFails: number | null
  failTimeout: number | null
  checkInterval: number | null
  /** `--allow LIST` and `--deny LIST`, each as often as given. */
  allow: string[]
  deny: string[]
  maxPerClient: number | null
  /** `--metrics [ADDR:]PORT` as written: serve GET /metrics there. */
  metrics: string | null
  /** `--no-relay-thread`: relay every connection in the event loop (lib/relay/thread.ts). */
  noRelayThread: boolean
  /** `--control PATH`: the control socket. */
  control: string | null
  /** `--control-group GROUP`: who else may use it. */
  controlGroup: string | null
  /** The server argument: host list, or a handler program and its arguments. */
  server: string[]
}

/** The options of an empty command line. */
export const DEFAULT_OPTIONS: Readonly<CliOptions> = Object.freeze({
  bind: null,
  config: null,
  debug: false,
  standalone: false,
  timeout: null,
  connectTimeout: null,
  listPorts: false,
  check: false,
  acp: null,
  acpTimeout: null,
  envPrefix: null,
  noResolve: false,
  writefile: null,
  logname: null,
  acceptProxy: null,
  proxyTimeout: null,
  keepalive: null,
  sendProxy: null,
  pidfile: null,
  user: null,
  foreground: false,
  syslogSocket: null,
  syslogFacility: null,
  logFormat: null,
  grace: null,
  maxConnections: null,
  maxPrograms: null,
  redirectMode: null,
  source: null,
  forgeAddr: false,
  forgePort: false,
  transparent: false,
  workers: null,
  balance: null,
  maxFails: null,
  failTimeout: null,
  checkInterval: null,
  allow: [],
  deny: [],
  maxPerClient: null,
  metrics: null,
  noRelayThread: false,
  control: null,
  controlGroup: null,
  server: [],
})

export type CliResult = { kind: 'run'; options: CliOptions } | { kind: 'exit'; code: number; output: string } | { kind: 'ctl'; argv: string[] }

/** An option value through one of the configuration file's value parsers, the error naming the option. */
function via(parse: (text: string) => number, option: string) {
  return (value: string): number => {
    try {
      return parse(value)
    } catch (err) {
      throw new TcpproxyError('ERR_USAGE', `option ${option}: ${(err as Error).message}`)
    }
  }
}
const seconds = (option: string) => via(parseSeconds, option)
const count = (option: string) => via(parseCount, option)
const whole = (option: string) => via(parseWhole, option)
/** A repeatable option's values, in order. */
const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value]

function program(): Command {
  return new Command('tcpproxy')
    .description('Forward TCP connections to a server chosen by the local interface.')
    .usage('[options] [server]')
    .argument('[server...]', 'host[:port][,host[:port]...] or [v6addr]:port (default port: the listening port)')
    .addOption(new Option('-b, --bind <[interface:]port>', 'listen on this port (interface: IPv4, [IPv6] or host name; none = all)'))
    .addOption(new Option('-c, --config <file>', 'configuration file (default /etc/tcpproxy.conf without -b and server)'))
    .addOption(new Option('-f <file>', 'the same as -c (tcpproxy 2.0)'))
    .option('-d, --debug', 'stay in the foreground and log to stderr')
    .option('-s, --standalone', 'listen on the configured ports (implied by -b)')
    .addOption(new Option('-t, --timeout <seconds>', `idle timeout, 0 = none (default ${DEFAULT_SETTINGS.timeout})`).argParser(seconds('-t')))
    .addOption(
      new Option('--connect-timeout <seconds>', `timeout of each upstream connect (default ${DEFAULT_SETTINGS.connectTimeout})`).argParser(seconds('--connect-timeout')),
    )
    .addOption(new Option('-a, --acp <program>', 'access control program run per connection (exit 0 grants)'))
    .addOption(new Option('--acp-timeout <seconds>', `deny when the access control program runs longer (default ${DEFAULT_SETTINGS.acpTimeout})`).argParser(seconds('--acp-timeout')))
    .addOption(new Option('-v, --env-prefix <prefix>', `prefix of the variables given to programs (default ${DEFAULT_GLOBALS.envPrefix})`))
    .option('-n, --no-resolve', 'do not look up client host names (PROXY_CLIENTNAME is the IP)')
    .addOption(new Option('-w, --writefile <base>', 'append each connection\'s traffic to BASE.ID.log'))
    .addOption(new Option('-l, --logname <name>', 'the name in log lines and PROXY_LOGNAME'))
    .addOption(new Option('--accept-proxy <cidrs>', 'peers (address[/bits],...) whose connections start with a PROXY header'))
    .addOption(new Option('--proxy-timeout <seconds>', `time a trusted peer has to send the PROXY header (default ${DEFAULT_SETTINGS.proxyTimeout})`).argParser(seconds('--proxy-timeout')))
    .addOption(new Option('--keepalive <seconds>', 'TCP keepalive on relayed connections: first probe after this many idle seconds, 0 = off (default)').argParser(via(parseKeepalive, '--keepalive')))
    .addOption(new Option('--send-proxy <version>', 'start upstream connections with a PROXY header (v1 or v2)'))
    .option('--foreground', 'stay in the foreground, logging to stderr (systemd, containers)')
    .option('-p', `write the pid to ${DEFAULT_PIDFILE}`)
    .addOption(new Option('--pidfile <file>', 'write the pid to this file'))
    .addOption(new Option('-u, --user <user[.group]>', 'run as this user when started as root (default nobody)'))
    .addOption(new Option('--syslog-socket <path>', 'syslog socket (default /dev/log)'))
    .addOption(new Option('--syslog-facility <name>', 'syslog facility (default mail)'))
    .addOption(new Option('--log-format <format>', 'text (default) or json').choices(['text', 'json']))
    .addOption(new Option('--grace <seconds>', 'time open sessions get after SIGTERM (default 10)').argParser(seconds('--grace')))
    .addOption(new Option('--max-connections <n>', 'close connections beyond this many at once').argParser(count('--max-connections')))
    .addOption(new Option('--max-programs <n>', 'close connections that would run more ACPs and handlers at once (default 256)').argParser(count('--max-programs')))
    .addOption(new Option('-r, --redirect-mode <mode>', 'original destination of redirected connections: none, accept, forward, forward-only'))
    .addOption(new Option('-q, --source <address>', 'connect upstream from this local address'))
    .option('--forge-addr', "connect upstream from the client's address (needs CAP_NET_ADMIN)")
    .option('--forge-port', "...and from the client's port (with --forge-addr)")
    .option('--transparent', "accept TPROXY'd connections on the listener (needs CAP_NET_ADMIN)")
    .addOption(new Option('--balance <mode>', 'how sessions pick a server: first (default), roundrobin, leastconn, source'))
    .addOption(new Option('--max-fails <n>', `failed connects that mark a server down, 0 = never (default ${DEFAULT_SETTINGS.maxFails})`).argParser(whole('--max-fails')))
    .addOption(new Option('--fail-timeout <seconds>', `window of --max-fails and how long a server stays down (default ${DEFAULT_SETTINGS.failTimeout})`).argParser(seconds('--fail-timeout')))
    .addOption(new Option('--check-interval <seconds>', 'probe servers marked down this often with a TCP connect, 0 = never (default 0)').argParser(seconds('--check-interval')))
    .addOption(new Option('--allow <cidrs>', 'only clients in these networks (address[/bits],...) may connect; repeatable').argParser(collect))
    .addOption(new Option('--deny <cidrs>', 'refuse clients in these networks; repeatable').argParser(collect))
    .addOption(new Option('--max-per-client <n>', 'sessions at once per client address, 0 = no limit').argParser(whole('--max-per-client')))
    .addOption(new Option('--workers <n>', 'worker processes sharing the listeners, one per core (default 1)').argParser(count('--workers')))
    .addOption(new Option('--metrics <[addr:]port>', 'serve Prometheus metrics (GET /metrics) on this address'))
    .option('--no-relay-thread', 'relay connections in the event loop, not in the native relay thread')
    .addOption(new Option('--control <path>', 'serve the control socket (tcpproxy ctl) at this path'))
    .addOption(new Option('--control-group <group>', 'let this group use the control socket (mode 0660)'))
    .option('-z, --list-ports', 'print the configured ports, one per line, and exit')
    .option('--check', 'validate the configuration, print its services, and exit')
    .version('', '-V, --version', 'print the version and the native addon in use, and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .addHelpText('after', '\nAsk a running tcpproxy through its control socket: tcpproxy ctl [--control PATH | -c FILE] [--json] COMMAND (tcpproxy ctl --help).')
}

/**
 * Parse argv (without node and script). Throws TcpproxyError ERR_USAGE on bad
 * input. `version` is the version number, or what -V prints (called only then:
 * it loads the native addon).
 */
export function parseArgs(argv: readonly string[], version: string | (() => string)): CliResult {
  // `tcpproxy ctl ...` talks to a running tcpproxy: its words are lib/cli/ctl.ts's.
  if (argv[0] === 'ctl') return { kind: 'ctl', argv: argv.slice(1) }
  let output = ''
  // Help and version text is returned, never written: one collector serves both streams.
  const collect = (s: string): void => void (output += s)
  const cmd = program()
    .exitOverride()
    .configureOutput({ writeOut: collect, writeErr: collect, outputError: () => {} })
  try {
    cmd.parse(argv as string[], { from: 'user' })
  } catch (err) {
    if (err instanceof TcpproxyError) throw err
    const e = err as CommanderError
    if (e.code === 'commander.version') return { kind: 'exit', code: 0, output: `${typeof version === 'string' ? `tcpproxy ${version}` : version()}\n` }
    if (e.code === 'commander.helpDisplayed') return { kind: 'exit', code: 0, output }
    // commander's messages start with "error: "; ours are prefixed by the caller.
    throw new TcpproxyError('ERR_USAGE', e.message.replace(/^error: /, ''))
  }
  const o = cmd.opts<Record<string, unknown>>()
  const server = cmd.processedArgs[0] as string[]
  // Only a handler program takes further words (its arguments).
  if (server.length > 1 && !isProgram(server[0] as string)) {
    throw new TcpproxyError('ERR_USAGE', `extra arguments after server: ${server.slice(1).join(' ')}`)
  }
  if (o['config'] !== undefined && o['f'] !== undefined) {
    throw new TcpproxyError('ERR_USAGE', 'give the configuration file once (-c or -f)')
  }
  return {
    kind: 'run',
    options: {
      bind: (o['bind'] as string | undefined) ?? null,
      config: ((o['config'] ?? o['f']) as string | undefined) ?? null,
      debug: o['debug'] === true,
      standalone: o['standalone'] === true,
      timeout: (o['timeout'] as number | undefined) ?? null,
      connectTimeout: (o['connectTimeout'] as number | undefined) ?? null,
      listPorts: o['listPorts'] === true,
      check: o['check'] === true,
      acp: (o['acp'] as string | undefined) ?? null,
      acpTimeout: (o['acpTimeout'] as number | undefined) ?? null,
      envPrefix: (o['envPrefix'] as string | undefined) ?? null,
      // commander turns --no-resolve into resolve: false
      noResolve: o['resolve'] === false,
      writefile: (o['writefile'] as string | undefined) ?? null,
      logname: (o['logname'] as string | undefined) ?? null,
      acceptProxy: (o['acceptProxy'] as string | undefined) ?? null,
      proxyTimeout: (o['proxyTimeout'] as number | undefined) ?? null,
      keepalive: (o['keepalive'] as number | undefined) ?? null,
      sendProxy: (o['sendProxy'] as string | undefined) ?? null,
      pidfile: (o['pidfile'] as string | undefined) ?? (o['p'] === true ? DEFAULT_PIDFILE : null),
      user: (o['user'] as string | undefined) ?? null,
      foreground: o['foreground'] === true,
      syslogSocket: (o['syslogSocket'] as string | undefined) ?? null,
      syslogFacility: (o['syslogFacility'] as string | undefined) ?? null,
      logFormat: (o['logFormat'] as 'text' | 'json' | undefined) ?? null,
      grace: (o['grace'] as number | undefined) ?? null,
      maxConnections: (o['maxConnections'] as number | undefined) ?? null,
      maxPrograms: (o['maxPrograms'] as number | undefined) ?? null,
      redirectMode: (o['redirectMode'] as string | undefined) ?? null,
      source: (o['source'] as string | undefined) ?? null,
      forgeAddr: o['forgeAddr'] === true,
      forgePort: o['forgePort'] === true,
      transparent: o['transparent'] === true,
      workers: (o['workers'] as number | undefined) ?? null,
      balance: (o['balance'] as string | undefined) ?? null,
      maxFails: (o['maxFails'] as number | undefined) ?? null,
      failTimeout: (o['failTimeout'] as number | undefined) ?? null,
      checkInterval: (o['checkInterval'] as number | undefined) ?? null,
      allow: (o['allow'] as string[] | undefined) ?? [],
      deny: (o['deny'] as string[] | undefined) ?? [],
      maxPerClient: (o['maxPerClient'] as number | undefined) ?? null,
      metrics: (o['metrics'] as string | undefined) ?? null,
      noRelayThread: o['relayThread'] === false,
      control: (o['control'] as string | undefined) ?? null,
      controlGroup: (o['controlGroup'] as string | undefined) ?? null,
      server,
    },
  }
}
