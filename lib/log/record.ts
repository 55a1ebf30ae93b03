/**
 * One log record (LogEntry) and its two renderings: the classic text line
 * (formatText) and one line of JSON (jsonLine, `--log-format json`), with
 * the cleaning and the size bound both apply. The sinks (logger.ts for a
 * stream, syslog.ts) import this; nothing here writes anywhere.
 */

import { removeControls } from '../text.js'

export type Tag = '+OK' | '+INFO' | '-INFO' | '-ERR' | '+DEBUG' | ''

export interface LogEntry {
  tag: Tag
  /** Stable, machine-readable name of what happened (`connect`, `disconnect`, ...). */
  event: string
  /** The human text after the tag, as the original wrote it. */
  text: string
  /** The connection the line belongs to, if any. */
  id?: number
  /**
   * Structured data for `--log-format json` (client, server, received, sent,
   * duration, closedBy, ...); the text format does not show it.
   */
  fields?: Record<string, string | number | null>
}

/** The classic text: `TAG: text` (no tag for untagged lines), `, id= N` for connections. */
export function formatText(entry: LogEntry): string {
  const head = entry.tag === '' ? '' : `${entry.tag}: `
  const tail = entry.id === undefined ? '' : `, id= ${entry.id}`
  return head + entry.text + tail
}

/**
 * The longest message (the part after `ident[pid]: `) in bytes. RFC 3164
 * limits a syslog packet to 1024 bytes; the longest header is 64 bytes
 * (`<191>`, a 16-byte timestamp, a 32-byte ident, `[4194304]: `), which
 * leaves 960. It also keeps every line below logger's `--size` of 1024, so
 * logger never splits one line into several datagrams (it would, and the
 * echo count would then no longer match the lines).
 */
export const MAX_MESSAGE_BYTES = 960

export type Level = 'err' | 'warning' | 'notice' | 'info' | 'debug'

/**
 * The JSON level of each tag, syslog's severity names: `-ERR` is an error,
 * `-INFO` (a failed attempt the program recovered from) a warning, the
 * untagged lifecycle lines (`bound to`, `ready`) are notable, `+INFO`/`+OK`
 * are the normal course of a session. Syslog sends the same severity
 * (lib/log/fields.ts SEVERITIES), raised to notice where it is below, as the
 * original sent everything (a test keeps the two in step).
 */
export const LEVELS: Readonly<Record<Tag, Level>> = {
  '-ERR': 'err',
  '-INFO': 'warning',
  '': 'notice',
  '+INFO': 'info',
  '+OK': 'info',
  '+DEBUG': 'debug',
}

/** JSON keys that fields cannot take over. */
const RESERVED = new Set(['time', 'level', 'event', 'id', 'message'])

/**
 * Control characters (lib/text.ts) removed: a client-controlled string (a
 * host name, an error text) must never start a forged line of its own, in
 * a log file or on a terminal.
 */
export function clean(s: string): string {
  return removeControls(s)
}

/** The longest prefix of `s` that is at most `max` bytes of UTF-8, cut between characters. */
export function clip(s: string, max: number): string {
  const bytes = Buffer.from(s, 'utf8')
  if (bytes.length <= max) return s
  let end = max
  // Back off over continuation bytes (10xxxxxx) to the start of a character.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--
  return bytes.subarray(0, end).toString('utf8')
}

/**
 * One log entry as one line of JSON (no newline), keys in a stable order:
 * `time` (ISO 8601, UTC), `level`, `event`, `id` (connections only), the
 * entry's fields in their own order, `message` (the text, without tag or id).
 * Control characters are removed from strings, and the line is at most
 * MAX_MESSAGE_BYTES: the longest string (fields and message) is shortened
 * first, each by just enough, so the line always stays valid JSON.
 */
export function jsonLine(entry: LogEntry, now: Date): string {
  // No prototype: a field named `__proto__` stays a plain key.
  const obj = Object.create(null) as Record<string, string | number | null>
  obj['time'] = now.toISOString()
  obj['level'] = LEVELS[entry.tag]
  obj['event'] = clean(entry.event)
  if (entry.id !== undefined) obj['id'] = entry.id
  const shrinkable = ['message']
  for (const [key, value] of Object.entries(entry.fields ?? {})) {
    if (RESERVED.has(key)) continue
    if (typeof value === 'string') {
      obj[key] = clean(value)
      shrinkable.push(key)
    } else {
      obj[key] = value
    }
  }
  obj['message'] = clean(entry.text)
  for (;;) {
    const line = JSON.stringify(obj)
    const excess = Buffer.byteLength(line) - MAX_MESSAGE_BYTES
    if (excess <= 0) return line
    let longest = ''
    let size = 0
    for (const key of shrinkable) {
      const n = jsonSize(obj[key] as string)
      if (n > size) {
        longest = key
        size = n
      }
    }
    // Only keys and numbers are left, which the program chooses, not clients.
    if (size === 0) return line
    obj[longest] = clipJson(obj[longest] as string, Math.max(0, size - excess))
  }
}

/** The bytes of `s` as a JSON string, without the quotes. */
function jsonSize(s: string): number {
  return Buffer.byteLength(JSON.stringify(s)) - 2
}

/**
 * The longest prefix of `s` whose JSON form (without the quotes) is at most
 * `max` bytes, cut between characters. Counted in JSON, not in UTF-8:
 * escapes (`\"`, `\\`, `\udxxx` for a lone surrogate) take more room.
 */
function clipJson(s: string, max: number): string {
  let used = 0
  let end = 0
  // By code point: a surrogate pair is one character, a lone surrogate one too.
  for (const ch of s) {
    used += jsonSize(ch)
    if (used > max) break
    end += ch.length
  }
  return s.slice(0, end)
}
