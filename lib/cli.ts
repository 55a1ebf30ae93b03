/**
 * The command line: argv in, typed options out. Nothing else: no files, no
 * sockets, no process.exit. The classic letters keep the original's meaning
 * (tcpproxy(1) 1.x/2.0); long options are ours.
 */
import { Command, CommanderError, Option } from 'commander'
import { TcpproxyError } from './errors.js'
import { parseSeconds } from './config.js'

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
  server: [],
})

export type CliResult = { kind: 'run'; options: CliOptions } | { kind: 'exit'; code: number; output: string }

function seconds(option: string) {
  return (value: string): number => {
    try {
      return parseSeconds(value)
    } catch (err) {
      throw new TcpproxyError('ERR_USAGE', `option ${option}: ${(err as Error).message}`)
    }
  }
}

function program(version: string): Command {
  return new Command('tcpproxy')
    .description('Forward TCP connections to a server chosen by the local interface.')
    .usage('[options] [server]')
    .argument('[server...]', 'host[:port][,host[:port]...] or [v6addr]:port (default port: the listening port)')
    .addOption(new Option('-b, --bind <[interface:]port>', 'listen on this port (interface: IPv4, [IPv6] or host name; none = all)'))
    .addOption(new Option('-c, --config <file>', 'configuration file (default /etc/tcpproxy.conf without -b and server)'))
    .addOption(new Option('-f <file>', 'the same as -c').hideHelp())
    .option('-d, --debug', 'stay in the foreground and log to stderr')
    .option('-s, --standalone', 'listen on the configured ports (implied by -b)')
    .addOption(new Option('-t, --timeout <seconds>', 'idle timeout, 0 = none (default 60)').argParser(seconds('-t')))
    .addOption(
      new Option('--connect-timeout <seconds>', 'timeout of each upstream connect (default 10)').argParser(seconds('--connect-timeout')),
    )
    .option('-z, --list-ports', 'print the configured ports, one per line, and exit')
    .option('--check', 'validate the configuration, print its services, and exit')
    .version(`tcpproxy ${version}`, '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
}

/** Parse argv (without node and script). Throws TcpproxyError ERR_USAGE on bad input. */
export function parseArgs(argv: readonly string[], version: string): CliResult {
  let output = ''
  // Help and version text is returned, never written: one collector serves both streams.
  const collect = (s: string): void => void (output += s)
  const cmd = program(version)
    .exitOverride()
    .configureOutput({ writeOut: collect, writeErr: collect, outputError: () => {} })
  try {
    cmd.parse(argv as string[], { from: 'user' })
  } catch (err) {
    if (err instanceof TcpproxyError) throw err
    const e = err as CommanderError
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return { kind: 'exit', code: 0, output }
    // commander's messages start with "error: "; ours are prefixed by the caller.
    throw new TcpproxyError('ERR_USAGE', e.message.replace(/^error: /, ''))
  }
  const o = cmd.opts<Record<string, unknown>>()
  const server = cmd.processedArgs[0] as string[]
  const first = server[0]
  // Only a handler program takes further words (its arguments).
  if (server.length > 1 && !(first?.startsWith('/') || first?.startsWith('.'))) {
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
      server,
    },
  }
}
