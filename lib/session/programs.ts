/**
 * Running the external programs of a connection: the access control program
 * (ACP, tcpproxy 1.1.3) and the handler program (service routing). Command
 * lines are word lists run without a shell, so nothing a client controls is
 * ever interpreted by one.
 */
import { ChildProcess, spawn, type StdioOptions } from 'node:child_process'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import type { Readable, Writable } from 'node:stream'
import split2 from 'split2'
import { blankControls } from '../text.js'

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
  const flat = blankControls(text).trim()
  return flat.length > max ? `${flat.slice(0, max)}...` : flat
}

/**
 * Every program runs in a process group of its own (it is started as the
 * leader of a new session), and tcpproxy ends the whole group: an ACP that
 * is a shell script running `sleep`, a handler `sh -c 'cat | cat'`, leave
 * nothing behind when they are timed out or stopped at shutdown.
 */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    // A negative pid signals the group (kill(2)); child.kill() would reach the leader only.
    process.kill(-pid, signal)
  } catch {
    // The group is gone already (ESRCH).
  }
}

/**
 * Spawn `cmd` as a group leader. A program that cannot be started is an
 * error, never an exception: Node throws some spawn failures (a NUL byte,
 * a destroyed socket as stdio) and reports others with 'error' on the next
 * tick (ENOENT, EACCES, and EMFILE/ENFILE, after which the child has no
 * stdio at all); then the returned child has no pid (see whyNotStarted).
 */
function spawnGroup(cmd: readonly string[], env: Record<string, string>, stdio: StdioOptions, as: RunAs): ChildProcess | NodeJS.ErrnoException {
  try {
    return spawn(cmd[0] as string, cmd.slice(1), { env, stdio, detached: true, ...as })
  } catch (err) {
    return err as NodeJS.ErrnoException
  }
}

/** Why a child without a pid never ran (Node says so on the next tick); its stdio, if any, is released. */
async function whyNotStarted(child: ChildProcess): Promise<string> {
  const [error] = (await once(child, 'error')) as [NodeJS.ErrnoException]
  for (const s of child.stdio ?? []) s?.destroy()
  return String(error.code)
}

/**
 * Run the ACP with stdin on /dev/null, stdout and stderr collected. Exit 0
 * grants; any other status, a signal, a failure to start, too much output,
 * or running past `timeoutMs` denies. `signal` aborts it (the session was
 * stopped): its group is killed and access denied. Once the ACP has exited,
 * whatever it left running in its group is killed too.
 */
export async function runAcp(
  cmd: readonly string[],
  env: Record<string, string>,
  timeoutMs: number,
  as: RunAs = {},
  signal?: AbortSignal,
): Promise<AcpResult> {
  const child = spawnGroup(cmd, env, ['ignore', 'pipe', 'pipe'], as)
  if (!(child instanceof ChildProcess)) return acpResult(String(child.code), '', Buffer.alloc(0))
  if (child.pid === undefined) return acpResult(await whyNotStarted(child), '', Buffer.alloc(0))
  const pid = child.pid
  let why: string | null = null
  const stop = (reason: string): void => {
    why ??= reason
    killGroup(pid, 'SIGKILL')
  }
  const collect = (stream: Readable): Buffer[] => {
    const chunks: Buffer[] = []
    let size = 0
    stream.on('data', (c: Buffer) => {
      if (size + c.length > ACP_MAX_OUTPUT) {
        chunks.push(c.subarray(0, ACP_MAX_OUTPUT - size))
        size = ACP_MAX_OUTPUT
        stream.destroy()
        stop('too much output')
        return
      }
      chunks.push(c)
      size += c.length
    })
    return chunks
  }
  const out = collect(child.stdout as Readable)
  const err = collect(child.stderr as Readable)
  const timer = setTimeout(() => stop('timeout'), timeoutMs)
  const onAbort = (): void => stop('aborted')
  signal?.addEventListener('abort', onAbort)
  if (signal?.aborted === true) onAbort()
  // Once it runs, Node reports errors of a child only for its own kill() and
  // IPC, neither of which is used here; should one come, the ACP is stopped.
  child.on('error', onAbort)
  // Its exit ends the group: nothing an ACP starts may outlive it (and keep
  // its output pipe open, which would hold the connection).
  child.once('exit', () => killGroup(pid, 'SIGKILL'))
  const [code, sig] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null]
  clearTimeout(timer)
  signal?.removeEventListener('abort', onAbort)
  const rc = why ?? sig ?? String(code)
  return acpResult(rc, Buffer.concat(err).toString(), Buffer.concat(out))
}

/** The result for exit status (or reason) `rc`: granted only for "0". */
function acpResult(rc: string, stderr: string, output: Buffer): AcpResult {
  return {
    granted: rc === '0',
    rc,
    message: oneLine(stderr === '' ? (rc === '0' ? 'access granted' : 'access denied') : stderr),
    output,
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
  const child = spawnGroup(cmd, env, stdio as StdioOptions, as)
  const pid = child instanceof ChildProcess ? child.pid : undefined
  if (pid === undefined) {
    client.destroy()
    const rc = child instanceof ChildProcess ? whyNotStarted(child) : Promise.resolve(String(child.code))
    return { pid, kill: () => {}, exited: rc.then(code => ({ rc: code, started: false })) }
  }
  const c = child as ChildProcess & { stdin: Writable; stdout: Readable; stderr: Readable }
  if (preread === null) {
    // The child has its own copy of the descriptor now.
    client.destroy()
  } else {
    relayPipes(client, c.stdin, c.stdout, preread)
  }
  c.stderr.pipe(split2(STDERR_LINES)).on('data', (line: string) => onStderr(oneLine(line)))
  let escalate: NodeJS.Timeout | undefined
  let killed = false
  const kill = (): void => {
    if (killed) return
    killed = true
    killGroup(pid, 'SIGTERM')
    // A program that ignores SIGTERM must not hold the shutdown forever.
    escalate = setTimeout(() => killGroup(pid, 'SIGKILL'), HANDLER_KILL_MS)
  }
  // Once it runs, Node reports errors of a child only for its own kill() and
  // IPC, neither of which is used here; should one come, the handler is stopped.
  c.on('error', kill)
  const exited = new Promise<HandlerExit>(resolve => {
    c.once('close', (code, signal) => {
      clearTimeout(escalate)
      // Stopped: whatever is left of its group goes too.
      if (killed) killGroup(pid, 'SIGKILL')
      const result = { rc: signal ?? String(code), started: true }
      // The session ends with the handler: the client socket it relays for must not outlive it.
      if (preread === null) resolve(result)
      else void closeClient(client).then(() => resolve(result))
    })
  })
  return { pid, kill, exited }
}

/** How long a handler has between SIGTERM and SIGKILL (its whole group) when the session is stopped. */
export const HANDLER_KILL_MS = 2000
/** How long the handler's last output may take to reach the client once the handler is gone. */
const FLUSH_MS = 2000

/** End `client` (its pending output flushed, for FLUSH_MS at most) and destroy it; resolves once it is closed. */
function closeClient(client: Socket): Promise<void> {
  if (client.destroyed) return Promise.resolve()
  return new Promise(resolve => {
    const timer = setTimeout(() => client.destroy(), FLUSH_MS)
    client.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
    client.end(() => client.destroy())
  })
}

/** Client <-> handler pipes, half-close both ways; `preread` goes first. */
function relayPipes(client: Socket, toChild: Writable, fromChild: Readable, preread: Buffer): void {
  // Both pipes go: a handler blocked writing to a client that is gone must
  // see EPIPE (its output has nowhere to go), not wait on a full pipe.
  const cut = (): void => {
    client.destroy()
    toChild.destroy()
    fromChild.destroy()
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
