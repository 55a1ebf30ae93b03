/**
 * Running the external programs of a connection: the access control program
 * (ACP, tcpproxy 1.1.3) and the handler program (service routing). Command
 * lines are word lists run without a shell, so nothing a client controls is
 * ever interpreted by one.
 */
import { spawn } from 'node:child_process'
import type { Socket } from 'node:net'
import type { Readable, Writable } from 'node:stream'
import { execa } from 'execa'
import split2 from 'split2'

/** Identity the programs run as (numbers); omitted = the proxy's own. */
export interface RunAs {
  uid?: number
  gid?: number
}

export interface AcpResult {
  granted: boolean
  /** `0`, `1`, ... the exit status, or `SIGTERM`, `timeout`, `ENOENT`, ... why there is none. */
  rc: string
  /** The program's stderr, one line, bounded: the reason it gives. */
  message: string
  /** What it wrote to stdout: the text for the client (a refusal banner). */
  output: Buffer
}

/** ACP output beyond this is a misbehaving program: it is stopped and access denied. */
export const ACP_MAX_OUTPUT = 64 * 1024
/** A logged message is cut here; the log is no place for a program's whole output. */
export const MESSAGE_MAX = 512

/** One printable line: control characters become blanks, length bounded. */
export function oneLine(text: string, max = MESSAGE_MAX): string {
  // eslint-style control-character class: C0, DEL and C1.
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim()
  return flat.length > max ? `${flat.slice(0, max)}...` : flat
}

/**
 * Run the ACP with stdin on /dev/null, stdout and stderr collected. Exit 0
 * grants; any other status, a signal, a failure to start, too much output,
 * or running past `timeoutMs` denies.
 */
export async function runAcp(cmd: readonly string[], env: Record<string, string>, timeoutMs: number, as: RunAs = {}): Promise<AcpResult> {
  const r = await execa(cmd[0] as string, cmd.slice(1), {
    env,
    extendEnv: false,
    stdin: 'ignore',
    encoding: 'buffer',
    stripFinalNewline: false,
    reject: false,
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: ACP_MAX_OUTPUT,
    ...as,
  })
  const rc = r.timedOut
    ? 'timeout'
    : r.isMaxBuffer
      ? 'too much output'
      : r.signal !== undefined
        ? r.signal
        : r.exitCode !== undefined
          ? String(r.exitCode)
          : // No status and no signal: it never ran; execa keeps the spawn error as the cause.
            String((r.cause as NodeJS.ErrnoException).code)
  const stderr = Buffer.from(r.stderr).toString()
  return {
    granted: rc === '0',
    rc,
    message: oneLine(stderr === '' ? (rc === '0' ? 'access granted' : 'access denied') : stderr),
    output: Buffer.from(r.stdout),
  }
}

/** Handler stderr lines longer than this are dropped (split2's skipOverflow), not buffered. */
const STDERR_LINES = { maxLength: 4096, skipOverflow: true }

export interface HandlerExit {
  /** Exit status, signal name, or the error code when it could not be started. */
  rc: string
  started: boolean
}

/**
 * Start a handler with the client socket itself as stdin and stdout (a real
 * TCP socket: getpeername() works in it, it may exec another program) and
 * stderr read line by line into `onStderr`. The caller must not touch the
 * socket afterwards: this destroys the proxy's own copy once the child has
 * its descriptor, so the client sees EOF exactly when the handler and its
 * children close theirs.
 *
 * `preread` is for connections whose first bytes the proxy had to read (a
 * PROXY header): those bytes cannot be put back into the kernel, so the
 * handler then gets pipes, fed with `preread` and then the socket's data,
 * and its output is relayed back.
 */
export function runHandler(
  cmd: readonly string[],
  env: Record<string, string>,
  client: Socket,
  preread: Buffer | null,
  onStderr: (line: string) => void,
  as: RunAs = {},
): { pid: number | undefined; kill(): void; exited: Promise<HandlerExit> } {
  const stdio = preread === null ? [client, client, 'pipe'] : ['pipe', 'pipe', 'pipe']
  const child = spawn(cmd[0] as string, cmd.slice(1), { env, stdio: stdio as ['pipe', 'pipe', 'pipe'], ...as })
  if (preread === null) {
    // The child has its own copy of the descriptor now (or failed to start).
    client.destroy()
  } else {
    relayPipes(client, child.stdin, child.stdout, preread)
  }
  child.stderr.pipe(split2(STDERR_LINES)).on('data', (line: string) => onStderr(oneLine(line)))
  const exited = new Promise<HandlerExit>(resolve => {
    child.once('error', (err: NodeJS.ErrnoException) => resolve({ rc: err.code as string, started: false }))
    child.once('close', (code, signal) => resolve({ rc: signal ?? String(code), started: true }))
  })
  return { pid: child.pid, kill: () => void child.kill('SIGTERM'), exited }
}

/** Client <-> handler pipes, half-close both ways; `preread` goes first. */
function relayPipes(client: Socket, toChild: Writable, fromChild: Readable, preread: Buffer): void {
  const cut = (): void => {
    client.destroy()
    toChild.destroy()
  }
  client.on('error', cut)
  // A handler that closes its stdin (EPIPE) may still be answering: stop
  // feeding it, keep its output flowing to the client.
  // (Only when the handler exits before its pipe drained: timing no test can hold.)
  /* c8 ignore start */
  toChild.on('error', () => {
    client.unpipe(toChild)
    client.resume()
  })
  /* c8 ignore stop */
  toChild.write(preread)
  // The client's EOF may have been seen already (while the header was read).
  if (client.readableEnded) toChild.end()
  else client.pipe(toChild)
  fromChild.pipe(client)
}
