/**
 * The `-w` / `writefile` traffic dump, in tcpproxy 2.0's format (tcpproxy(1)
 * 2.0, "-w"): per read, a header `--- CLIENT [ID] HH:MM:SS.uuuuuu (N):` then
 * the bytes, printable ASCII as is, everything else and `#` as `#XX`. Unlike
 * 2.0, bytes >= 0x80 are `#80`..`#FF` (2.0 sign-extended them to
 * `#FFFFFF80`), DEL is escaped too, and an EOF from either side is recorded
 * as a `(0)` block (2.0 recorded only the client's).
 */
import { constants, createWriteStream, openSync, type WriteStream } from 'node:fs'
import { errorCode } from '../errors.js'

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

/** How many names a dump tries (BASE.ID.log, then BASE.ID-2.log ...) before it gives up. */
export const DUMP_NAMES = 100

/** An open dump and the file it writes. */
export interface Dump {
  out: WriteStream
  path: string
}

/**
 * Create a new dump file for connection `id`: `BASE.ID.log`, or where that
 * exists, the first free `BASE.ID-N.log` (N = 2, 3, ... up to DUMP_NAMES).
 * A dump file is always one this call created (O_CREAT|O_EXCL, mode 0600):
 * never a file already there, so a dump never mixes two connections (ids
 * start again at 1 after a restart) and a file another process planted (to
 * read the traffic, or a fifo that would block the daemon) is never written.
 * O_EXCL also refuses a symbolic link, even a dangling one; O_NOFOLLOW says
 * so in the flags. Opening throws (the caller logs and relays without a
 * dump); later write errors are reported through the stream's 'error'.
 * `n`: the name to try first (the recursion's own).
 */
export function openDump(base: string, id: string, n = 1): Dump {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW
  const path = n === 1 ? `${base}.${id}.log` : `${base}.${id}-${n}.log`
  try {
    return { out: createWriteStream('', { fd: openSync(path, flags, 0o600) }), path }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || n === DUMP_NAMES) throw err
    return openDump(base, id, n + 1)
  }
}

/**
 * A disk slower than the traffic must not make a dump grow in memory without
 * bound: past this many bytes waiting, the dump of that connection stops
 * (the relay goes on) with a last line saying so.
 */
export const DUMP_BACKLOG = 16 * 1024 * 1024

/** A connection's dump as its session runs it. */
export interface SessionDump {
  /** The relay's tap: records each chunk until the backlog is exceeded. */
  tap: (from: Side, chunk: Buffer) => void
  /** End the file; resolves once it is complete on disk. */
  close(): Promise<void>
}

/**
 * Start connection `id`'s dump at `base` (see openDump), cut short once more
 * than `backlog` bytes wait for the disk; null when it cannot be opened.
 * `note` gets the lines for the log: a file that cannot be opened or
 * written, a renamed file, the cut.
 */
export function startDump(base: string, id: string, note: (event: string, text: string) => void, backlog = DUMP_BACKLOG): SessionDump | null {
  let dump
  try {
    dump = openDump(base, id)
  } catch (err) {
    note('writefile-error', `can't open writefile: ${base}.${id}.log, error= ${errorCode(err)}`)
    return null
  }
  const { out, path } = dump
  // Ids start again at 1 after a restart: an older dump keeps its file.
  if (path !== `${base}.${id}.log`) note('writefile-renamed', `writefile ${base}.${id}.log exists, writing ${path}`)
  out.on('error', err => note('writefile-error', `can't write writefile: ${path}, error= ${errorCode(err)}`))
  let cut = false
  return {
    tap: (from, chunk) => {
      if (out.destroyed || cut) return
      out.write(dumpRecord(from, id, performance.timeOrigin + performance.now(), chunk))
      if (out.writableLength <= backlog) return
      cut = true
      out.write('--- the dump stops here: the disk did not keep up with the traffic\n')
      note('writefile-error', `writefile cut short: ${path}, more than ${backlog} bytes waiting for the disk`)
    },
    close: () => new Promise<void>(resolve => out.end(() => resolve())),
  }
}
