/**
 * `tcpproxy ctl [--control PATH | -c FILE] [--json] COMMAND...`: one
 * command to the control socket of a running tcpproxy
 * (lib/control/server.ts), its answer on standard output. The command is
 * checked here first, so a typo gets its usage error without a daemon.
 * `-c FILE` finds the socket where the daemon started with that file
 * serves it (its `control` line), so the path is written once. Exit
 * status: 0 for an answer, 1 for an error answer, an unreachable socket
 * (one line naming the path) or an unreadable file, 2 for a usage error or
 * a file without a (valid) control line.
 */
import { readFileSync } from 'node:fs'
import { Command, type CommanderError } from 'commander'
import { DEFAULT_CONTROL } from '../config/config.js'
import { checkValue, directives } from '../config/grammar.js'
import { TcpproxyError, errnoText, errorCode, errorText } from '../errors.js'
import { request } from '../control/client.js'
import { formatCommand, parseCommand, HELP_TEXT } from '../control/protocol.js'

/** `path`: the socket; `config`: the file whose `control` line names it (instead of `path`). */
export type CtlArgs = { kind: 'run'; path: string; config: string | null; line: string; json: boolean } | { kind: 'exit'; code: number; output: string }

/** Parse the words after `ctl`. Throws ERR_USAGE. */
export function parseCtlArgs(argv: readonly string[]): CtlArgs {
  let output = ''
  const cmd = new Command('tcpproxy ctl')
    .description(`Ask a running tcpproxy through its control socket. Commands:\n${HELP_TEXT}`)
    .usage('[--control PATH | -c FILE] [--json] COMMAND...')
    .argument('<command...>')
    .option('--control <path>', `the control socket (default ${DEFAULT_CONTROL})`)
    .option('-c, --config <file>', "the socket named by this configuration file's control line")
    .option('--json', 'the answer as one line of JSON')
    .helpOption('-h, --help', 'print this help and exit')
    .exitOverride()
    .configureOutput({ writeOut: s => void (output += s), outputError: () => {} })
  try {
    cmd.parse(argv as string[], { from: 'user' })
  } catch (err) {
    const e = err as CommanderError
    if (e.code === 'commander.helpDisplayed') return { kind: 'exit', code: 0, output }
    throw new TcpproxyError('ERR_USAGE', `ctl: ${e.message.replace(/^error: /, '')}`)
  }
  const o = cmd.opts<{ control?: string; config?: string; json?: boolean }>()
  if (o.control !== undefined && o.config !== undefined) throw new TcpproxyError('ERR_USAGE', 'ctl: --control and -c exclude each other')
  const json = o.json === true
  const parsed = parseCommand([...(cmd.processedArgs[0] as string[]), ...(json ? ['json'] : [])].join(' '))
  if (!parsed.ok) throw new TcpproxyError('ERR_USAGE', `ctl: ${parsed.error}`)
  return { kind: 'run', path: o.control ?? DEFAULT_CONTROL, config: o.config ?? null, line: formatCommand(parsed.command), json: parsed.command.json }
}

/**
 * The control socket that configuration file `file` names: its last
 * `control` line, read as the daemon reads it (lib/config/parse.ts: one
 * word, `-` for the default). Only that line is read, so
 * ctl still finds the socket while another part of the file is being
 * edited, or is valid only with the daemon's command-line options. Throws
 * TcpproxyError.
 */
export function controlOf(file: string): string {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new TcpproxyError('ERR_IO', `cannot read configuration file ${file}: ${errnoText(errorCode(err))}`)
  }
  let control: string | null = null
  for (const d of directives(text, file)) {
    if (d.keyword !== 'control') continue
    checkValue(d, file, true)
    control = d.value === '-' ? DEFAULT_CONTROL : d.value
  }
  if (control === null) throw new TcpproxyError('ERR_CONFIG', `${file} has no control line; name the socket with --control PATH`)
  return control
}

interface Out {
  write(text: string): unknown
}

/** Run `tcpproxy ctl` with the words after `ctl`; resolves with the exit status. */
export async function runCtl(argv: readonly string[], stdout: Out, stderr: Out): Promise<number> {
  try {
    const a = parseCtlArgs(argv)
    if (a.kind === 'exit') {
      stdout.write(a.output)
      return a.code
    }
    const answer = await request(a.config === null ? a.path : controlOf(a.config), a.line)
    // The empty line that ends an answer is the protocol's, not the reader's.
    const text = answer.text.slice(0, -1)
    if (answer.error && !a.json) stderr.write(`tcpproxy: ${text.replace(/^error: /, '')}`)
    else stdout.write(text)
    return answer.error ? 1 : 0
  } catch (err) {
    stderr.write(`tcpproxy: ${errorText(err)}\n`)
    return (err as TcpproxyError).exitCode
  }
}
