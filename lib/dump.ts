/**
 * The `-w` / `writefile` traffic dump, in tcpproxy 2.0's format (tcpproxy(1)
 * 2.0, "-w"): per read, a header `--- CLIENT [ID] HH:MM:SS.uuuuuu (N):` then
 * the bytes, printable ASCII as is, everything else and `#` as `#XX`. Unlike
 * 2.0, bytes >= 0x80 are `#80`..`#FF` (2.0 sign-extended them to
 * `#FFFFFF80`), DEL is escaped too, and an EOF from either side is recorded
 * as a `(0)` block (2.0 recorded only the client's).
 */
import { closeSync, constants, createWriteStream, fstatSync, openSync, type WriteStream } from 'node:fs'

export type Side = 'CLIENT' | 'SERVER'

const HEX = Array.from({ length: 256 }, (_, b) => `#${b.toString(16).toUpperCase().padStart(2, '0')}`)

/** Escape bytes for the dump: printable ASCII except `#` stays, the rest is `#XX`. */
export function escapeBytes(chunk: Buffer): string {
  let out = ''
  for (const b of chunk) out += b >= 0x20 && b < 0x7f && b !== 0x23 ? String.fromCharCode(b) : HEX[b]
  return out
}

/** One dump record: header line (local time), escaped bytes, newline. `epochMs` may have a fraction. */
export function dumpRecord(side: Side, id: string, epochMs: number, chunk: Buffer): string {
  const two = (n: number): string => String(n).padStart(2, '0')
  const at = new Date(Math.floor(epochMs))
  const micros = String(Math.floor((epochMs % 1000) * 1000)).padStart(6, '0')
  const time = `${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}.${micros}`
  return `--- ${side} [${id}] ${time} (${chunk.length}):\n${escapeBytes(chunk)}\n`
}

/**
 * Open `BASE.ID.log` for appending: created mode 0600, never through a
 * symbolic link (O_NOFOLLOW), so a planted link cannot redirect the dump
 * onto another file. The directory may be world-writable (/tmp), so what
 * is already at the path is checked too: O_NONBLOCK makes a planted fifo
 * fail (ENXIO) instead of blocking the daemon in open(), and a file that is
 * not a regular file of our own user (one another user created to read the
 * traffic) is refused. Opening throws (the caller logs and relays without a
 * dump); later write errors are reported through the stream's 'error'.
 */
export function openDump(base: string, id: string): WriteStream {
  const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK
  const fd = openSync(`${base}.${id}.log`, flags, 0o600)
  const st = fstatSync(fd)
  // POSIX only, as tcpproxy as a whole.
  const euid = (process.geteuid as () => number)()
  if (!st.isFile() || st.uid !== euid) {
    closeSync(fd)
    throw new Error(st.isFile() ? `owned by uid ${st.uid}, not ${euid}` : 'not a regular file')
  }
  return createWriteStream('', { fd })
}
