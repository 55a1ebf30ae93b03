/**
 * The pidfile: `"%d\n"` written by the daemon, removed at exit by the process
 * whose pid it holds (tcpproxy(1): --pidfile, the pidfile keyword, FILES).
 *
 * It is written as root, possibly into a world-writable directory, so:
 * - a symbolic link at the path is refused, never followed (lstat first, then
 *   every open carries O_NOFOLLOW);
 * - anything that is not a regular file (directory, fifo, device...) is refused;
 * - an existing file is never truncated in place: a stale one is unlinked and a
 *   new file is created with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0644 (fchmod'ed, so
 *   the umask does not matter); if someone recreates the path in between, the
 *   O_EXCL open fails instead of writing through their file;
 * - an existing file is read through a bounded read (at most 64 bytes) and
 *   anything but a decimal pid counts as garbage, that is as stale.
 *
 * A pidfile is stale unless the pid in it is another live tcpproxy process: a
 * dead pid, a live pid whose /proc/PID/cmdline does not contain "tcpproxy" (the
 * pid was reused), garbage, and our own pid (a leftover from an earlier process
 * that had the pid we have now) are all replaced.
 */
import fs from 'node:fs'
import { TcpproxyError, errorCode, errorText } from '../errors.js'

export { DEFAULT_PIDFILE } from '../config/config.js'

/** The most bytes read from an existing pidfile. */
const MAX_PIDFILE_READ = 64

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants

export interface Pidfile {
  /** The path as given to writePidfile. */
  readonly path: string
  /** The pid written into it. */
  readonly pid: number
  /**
   * Unlink the file, but only if it still holds our pid: a file someone else
   * wrote since (another pid, garbage, a symlink, a directory) is left alone,
   * and a missing file is no error. Other failures throw ERR_IO.
   */
  remove(): void
}

/** Whether `pid` is a live process whose command line contains "tcpproxy" (Linux /proc). */
export function isTcpproxyProcess(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`).includes('tcpproxy')
  } catch {
    return false // no such process (or /proc unreadable): not a running tcpproxy
  }
}

/** The pid a pidfile's text names, or null when it is garbage. */
export function parsePid(text: string): number | null {
  const m = /^\s*(\d{1,10})\s*$/.exec(text)
  if (m === null) return null
  const pid = Number(m[1])
  return pid > 0 && pid <= 0x7fffffff ? pid : null
}

/**
 * Read the pid in an existing pidfile: undefined when there is no file, null
 * when it holds garbage. Throws ERR_IO for a symlink or a non-regular file.
 */
function readPidfile(path: string): number | null | undefined {
  const st = fs.lstatSync(path, { throwIfNoEntry: false })
  if (st === undefined) return undefined
  if (st.isSymbolicLink()) {
    throw new TcpproxyError('ERR_IO', `refusing pidfile ${path}: it is a symbolic link`)
  }
  if (!st.isFile()) {
    throw new TcpproxyError('ERR_IO', `refusing pidfile ${path}: not a regular file`)
  }
  // O_NOFOLLOW and O_NONBLOCK: should the path be swapped for a symlink or a
  // fifo after the lstat, the open fails or returns at once instead of
  // following the link or hanging.
  const fd = fs.openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
  try {
    const buf = Buffer.alloc(MAX_PIDFILE_READ)
    const n = fs.readSync(fd, buf, 0, MAX_PIDFILE_READ, 0)
    return parsePid(buf.toString('latin1', 0, n))
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Write our pid (`"%d\n"`) into `path`. Refuses (ERR_IO, naming the file and the
 * pid) when the file names another live tcpproxy process; a stale file is
 * replaced. `isTcpproxy` decides whether a pid is a live tcpproxy (default:
 * isTcpproxyProcess).
 */
export function writePidfile(
  path: string,
  pid: number,
  opts: { isTcpproxy?: (pid: number) => boolean } = {},
): Pidfile {
  const isTcpproxy = opts.isTcpproxy ?? isTcpproxyProcess
  try {
    const old = readPidfile(path)
    if (old !== undefined) {
      if (old !== null && old !== pid && isTcpproxy(old)) {
        throw new TcpproxyError('ERR_IO', `pidfile ${path}: tcpproxy is already running as pid ${old}`)
      }
      fs.unlinkSync(path) // stale: replaced by a new file, never rewritten in place
    }
    const fd = fs.openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644)
    try {
      fs.fchmodSync(fd, 0o644)
      fs.writeSync(fd, `${pid}\n`)
    } finally {
      fs.closeSync(fd)
    }
  } catch (err) {
    if (err instanceof TcpproxyError) throw err
    throw new TcpproxyError('ERR_IO', `cannot write pidfile ${path}: ${errorText(err)}`, { cause: err })
  }
  return {
    path,
    pid,
    remove: () => removePidfile(path, pid),
  }
}

function removePidfile(path: string, pid: number): void {
  try {
    if (readPidfile(path) === pid) fs.unlinkSync(path)
  } catch (err) {
    // A symlink or non-regular file at the path is not ours; a missing file
    // (removed already, or gone between the read and the unlink) is fine.
    if (err instanceof TcpproxyError || errorCode(err) === 'ENOENT') return
    throw new TcpproxyError('ERR_IO', `cannot remove pidfile ${path}: ${errorText(err)}`, { cause: err })
  }
}
