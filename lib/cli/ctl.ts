/**
 * `tcpproxy ctl [--control PATH] [--json] COMMAND...`: one command to the
 * control socket of a running tcpproxy (lib/control/server.ts), its answer
 * on standard output. The command is checked here first, so a typo gets
 * its usage error without a daemon. Exit status: 0 for an answer, 1 for an
 * error answer or an unreachable socket (one line naming the path), 2 for
 * a usage error.
 */
import { Command, type CommanderError } from 'commander'
import { DEFAULT_CONTROL } from '../config/config.js'
import { TcpproxyError, errorText } from '../errors.js'
import { request } from '../control/client.js'
import { formatCommand, parseCommand, HELP_TEXT } from '../control/protocol.js'

export type CtlArgs = { kind: 'run'; path: string; line: string; json: boolean } | { kind: 'exit'; code: number; output: string }

/** Parse the words after `ctl`. Throws ERR_USAGE. */
export function parseCtlArgs(argv: readonly string[]): CtlArgs {
  let output = ''
  const cmd = new Command('tcpproxy ctl')
    .description(`Ask a running tcpproxy through its control socket. Commands:\n${HELP_TEXT}`)
    .usage('[--control PATH] [--json] COMMAND...')
    .argument('<command...>')
    .option('--control <path>', `the control socket (default ${DEFAULT_CONTROL})`)
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
  const o = cmd.opts<{ control?: string; json?: boolean }>()
  const json = o.json === true
  const parsed = parseCommand([...(cmd.processedArgs[0] as string[]), ...(json ? ['json'] : [])].join(' '))
  if (!parsed.ok) throw new TcpproxyError('ERR_USAGE', `ctl: ${parsed.error}`)
  return { kind: 'run', path: o.control ?? DEFAULT_CONTROL, line: formatCommand(parsed.command), json: parsed.command.json }
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
    const answer = await request(a.path, a.line)
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
