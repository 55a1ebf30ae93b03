/**
 * The Logger interface and the stream sink (stderr). Every line the program
 * logs is a LogEntry (lib/log/record.ts): the original's tag (`+OK`, `+INFO`,
 * `-INFO`, `-ERR`, `+DEBUG`, or none for `bound to`/`ready`), a stable event
 * name for machines, and the original's text. Sinks decide the rendering.
 */
import type { Writable } from 'node:stream'
import { formatText, jsonLine, type LogEntry } from './record.js'

export type { LogEntry, Tag } from './record.js'

export interface Logger {
  /** Whether `+DEBUG` entries are wanted; callers skip building them otherwise. */
  readonly debug: boolean
  log(entry: LogEntry): void
  /** Write a complete line of another tcpproxy's log as it is (lib/log/nested.ts); text stream loggers only. */
  passThrough?(line: string): void
}

/**
 * The foreground logger of `-d`: `ident[pid]: TAG: text` lines on a stream
 * (stderr), as the original printed them in debug mode; with `format` json,
 * one JSON object per line (see jsonLine), without the prefix so that every
 * line parses on its own.
 *
 * Lines are collected and written once per event-loop turn (setImmediate),
 * not one write per line: a relayed connection logs three lines, and on a
 * file or pipe stderr every write is a blocking system call, which made the
 * log the largest cost per connection after connect() itself (see
 * bench/RESULTS.md, Profile). `flush()` writes what is pending now (close,
 * exit).
 */
export function streamLogger(
  stream: Writable,
  ident: string,
  pid: number,
  debug: boolean,
  format: 'text' | 'json' = 'text',
): Logger & { flush(): void } {
  const prefix = `${ident}[${pid}]: `
  let pending = ''
  const alive = keepAlive(stream)
  const flush = (): void => {
    if (pending === '') return
    const text = pending
    pending = ''
    if (alive()) stream.write(text)
  }
  return {
    debug,
    log(entry) {
      if (entry.tag === '+DEBUG' && !debug) return
      if (pending === '') setImmediate(flush)
      pending += format === 'json' ? jsonLine(entry, new Date()) + '\n' : prefix + formatText(entry) + '\n'
    },
    ...(format === 'text'
      ? {
          passThrough(line: string) {
            if (pending === '') setImmediate(flush)
            pending += line + '\n'
          },
        }
      : {}),
    flush,
  }
}

/**
 * Guard an output stream (stderr, a log pipe) against its reader going away:
 * a write error (EPIPE when `tcpproxy -d 2>&1 | head -c1` has had its byte,
 * or a log shipper restarts) is taken as "nobody reads this any more", never
 * as the process's death. Returns whether the stream still takes lines; the
 * lines written to a dead one are dropped.
 */
export function keepAlive(stream: Writable): () => boolean {
  let dead = false
  stream.on('error', () => {
    dead = true
  })
  return () => !dead && !stream.destroyed
}
