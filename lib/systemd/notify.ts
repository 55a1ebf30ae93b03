/**
 * sd_notify(3) messages for `Type=notify` units, and where to send them.
 *
 * A message is newline-separated `NAME=value` assignments in one datagram
 * on the unix socket NOTIFY_SOCKET names (a path, or `@name` for the
 * abstract namespace). The reload protocol (systemd 253+,
 * `Type=notify-reload` and `Type=notify` with RELOADING=1) wants
 * MONOTONIC_USEC, CLOCK_MONOTONIC in microseconds, beside RELOADING=1;
 * Node's process.hrtime.bigint() reads that clock on Linux. Pure: the
 * caller passes pid, time and text, and sends the bytes (lib/native).
 */
import { TcpproxyError } from '../errors.js'

/** Where the messages go: a socket path, or a name in the abstract namespace (without the leading NUL). */
export type NotifyTarget = { kind: 'path'; path: string } | { kind: 'abstract'; name: string }

/** sun_path is 108 bytes on Linux, one of them the terminating NUL (a path) or the leading NUL (abstract). */
const SUN_PATH_MAX = 107

/** A value on one line: a STATUS text cannot add assignments of its own. */
function oneLine(value: string): string {
  return value.replace(/[\r\n]+/g, ' ')
}

/** `READY=1` with the main pid (so systemd follows the supervisor, not whoever sent it). */
export function readyMessage(mainPid: number, status?: string): string {
  return assignments([['READY', '1'], ['MAINPID', String(mainPid)], ...statusPair(status)])
}

/** `RELOADING=1` with the monotonic time of the reload's start (microseconds). */
export function reloadingMessage(monotonicUsec: bigint, status?: string): string {
  return assignments([['RELOADING', '1'], ['MONOTONIC_USEC', monotonicUsec.toString()], ...statusPair(status)])
}

/** `STOPPING=1`, with what is left to do (`stopping: 3 sessions open`). */
export function stoppingMessage(status?: string): string {
  return assignments([['STOPPING', '1'], ...statusPair(status)])
}

/** A bare `STATUS=` line, shown by `systemctl status`. */
export function statusMessage(status: string): string {
  return assignments(statusPair(status))
}

/** The STATUS text of a running tcpproxy: what `systemctl status` should say at a glance. */
export function sessionsStatus(sessions: number, workers: number): string {
  const s = `${sessions} session${sessions === 1 ? '' : 's'} open`
  return workers > 1 ? `${s}, ${workers} workers` : s
}

function statusPair(status: string | undefined): [string, string][] {
  return status === undefined ? [] : [['STATUS', oneLine(status)]]
}

function assignments(pairs: readonly [string, string][]): string {
  return pairs.map(([k, v]) => `${k}=${v}\n`).join('')
}

/**
 * NOTIFY_SOCKET's value: null when unset or empty (not started by systemd
 * with Type=notify). Anything else unusable is a one-line ERR_CONFIG: a
 * relative path, a path too long for a socket address, a vsock address
 * (this build speaks unix sockets only).
 */
export function parseNotifySocket(value: string | undefined): NotifyTarget | null {
  if (value === undefined || value === '') return null
  const bad = (why: string): never => {
    throw new TcpproxyError('ERR_CONFIG', `NOTIFY_SOCKET=${JSON.stringify(value)}: ${why}`)
  }
  if (Buffer.byteLength(value) > SUN_PATH_MAX) bad(`longer than ${SUN_PATH_MAX} bytes`)
  if (value.startsWith('@')) return value.length > 1 ? { kind: 'abstract', name: value.slice(1) } : bad('an abstract name must follow @')
  if (value.startsWith('/')) return { kind: 'path', path: value }
  return bad(value.startsWith('vsock:') ? 'vsock is not supported, only unix sockets' : 'not an absolute path or @name')
}
