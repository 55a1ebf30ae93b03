/**
 * Logging to syslog, as the original did with `openlog(ident, LOG_PID,
 * LOG_MAIL)` and `syslog(LOG_NOTICE, ...)`, and the JSON rendering of log
 * entries (`--log-format json`).
 *
 * Node cannot send unix datagrams, so one persistent util-linux `logger`
 * child per process does it: each entry is one line on its stdin, which it
 * sends as one datagram. Its local format (no `--rfc3164`, which would add a
 * hostname that syslog(3) never sends to /dev/log) is exactly the original's
 * wire format, `<21>Nov 23 06:04:20 tcpproxy[11661]: +INFO: connect: ...`,
 * and `--id=PID` puts our pid, not logger's, into `ident[PID]:`.
 *
 * Nothing is lost silently. With `--stderr` logger echoes a line after each
 * successful send (and never after a failed one), so every line stays
 * pending until its echo comes back. If logger cannot be started, exits,
 * reports an error (it exits on socket errors: socket missing at start, or
 * gone when a send fails and its reconnect fails too) or falls too far
 * behind, the logger switches to the fallback stream (stderr) for good: one
 * `-ERR: syslog unreachable (REASON), logging to stderr` line, then the
 * pending lines, then everything logged afterwards.
 */
import { spawn } from 'node:child_process'
import type { Socket } from 'node:net'
import type { Writable } from 'node:stream'
import { errorCode } from '../errors.js'
import { formatText, keepAlive, type LogEntry, type Logger, type Tag } from './logger.js'
import { removeControls } from '../text.js'

/** Syslog facility codes by name, as syslog.conf(5) spells them. */
export const FACILITIES: Record<string, number> = {
  // Messages from user space cannot claim the kernel's facility: syslog(3)
  // and logger both turn kern into user.
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
}

/**
 * Every line goes out at LOG_NOTICE, whatever its tag, as the original's did:
 * existing syslog.conf rules and log watchers select `mail.notice` (`<21>`),
 * and mapping `+DEBUG` to LOG_DEBUG would make common configurations drop
 * the very lines `-d` asked for. The tag stays in the text, and the JSON
 * format carries a level for machines that want one.
 */
const LOG_NOTICE = 5

/**
 * The longest message (the part after `ident[pid]: `) in bytes. RFC 3164
 * limits a syslog packet to 1024 bytes; the longest header is 64 bytes
 * (`<191>`, a 16-byte timestamp, a 32-byte ident, `[4194304]: `), which
 * leaves 960. It also keeps every line below logger's `--size` of 1024, so
 * logger never splits one line into several datagrams (it would, and the
 * echo count would then no longer match the lines).
 */
export const MAX_MESSAGE_BYTES = 960

/** RFC 3164: the TAG (our ident) must not exceed 32 characters. */
const MAX_IDENT_BYTES = 32

/** Lines logger may have in hand before syslog counts as not accepting messages. */
const MAX_PENDING = 10_000

/** How long `close()` waits for logger to send what it has. */
const CLOSE_TIMEOUT_MS = 2000

export type Level = 'err' | 'notice' | 'info' | 'debug'

/**
 * The JSON level of each tag: `-ERR` is an error, `-INFO` (a failed attempt
 * the program recovered from) and the untagged lifecycle lines (`bound to`,
 * `ready`) are notable, `+INFO`/`+OK` are the normal course of a session.
 */
const LEVELS: Record<Tag, Level> = {
  '-ERR': 'err',
  '-INFO': 'notice',
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
function clean(s: string): string {
  return removeControls(s)
}

/** The longest prefix of `s` that is at most `max` bytes of UTF-8, cut between characters. */
function clip(s: string, max: number): string {
  const bytes = Buffer.from(s, 'utf8')
  if (bytes.length <= max) return s
  let end = max
  // Back off over continuation bytes (10xxxxxx) to the start of a character.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--
  return bytes.subarray(0, end).toString('utf8')
}

/** The classic text, cleaned, with the text cut so the whole stays within MAX_MESSAGE_BYTES. */
function textMessage(entry: LogEntry): string {
  // The tag and the `, id= N` tail are the program's own and short; cutting
  // the text instead of the line keeps the id that ties lines together.
  const frame = Buffer.byteLength(formatText({ ...entry, text: '' }))
  return formatText({ ...entry, text: clip(clean(entry.text), MAX_MESSAGE_BYTES - frame) })
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

export interface SyslogOptions {
  /** The syslog socket, `/dev/log` unless `--syslog-socket`. */
  socketPath: string
  /** A value of FACILITIES; mail (2) by default, as the original. */
  facility: number
  /** The ident (`-l`/`logname`, else the program name); cut to 32 bytes. */
  ident: string
  /** The pid in `ident[pid]:`, ours. */
  pid: number
  /** Whether `+DEBUG` entries are logged. */
  debug: boolean
  /** Where lines go when syslog is unreachable: stderr. */
  fallback: Writable
  format: 'text' | 'json'
  /** The logger program; `logger` from PATH unless given. */
  loggerPath?: string
  /** Lines logger may have in hand before syslog counts as not accepting messages (10000). */
  maxPending?: number
  /** How long `close()` waits for logger before the rest goes to the fallback (2000 ms). */
  closeTimeoutMs?: number
}

/**
 * A logger writing to syslog through one `logger` child, falling back to
 * `o.fallback` for good when syslog is unreachable. `close()` sends what is
 * pending and ends the child; lines logged after `close()` go to the
 * fallback. The child never keeps the process alive by itself: if the
 * process ends without `close()`, logger still sends what reached its stdin.
 */
export function syslogLogger(o: SyslogOptions): Logger & { close(): Promise<void> } {
  const ident = clip(clean(o.ident), MAX_IDENT_BYTES)
  const loggerPath = o.loggerPath ?? 'logger'
  const maxPending = o.maxPending ?? MAX_PENDING
  const closeTimeoutMs = o.closeTimeoutMs ?? CLOSE_TIMEOUT_MS
  const priority = `<${o.facility * 8 + LOG_NOTICE}>`
  const render = (entry: LogEntry): string => (o.format === 'json' ? jsonLine(entry, new Date()) : textMessage(entry))
  // The fallback writes what `-d` writes: `ident[pid]: ` lines, or bare JSON.
  const fallbackPrefix = o.format === 'json' ? '' : `${ident}[${o.pid}]: `
  const fallbackAlive = keepAlive(o.fallback)
  const toFallback = (message: string): void => void (fallbackAlive() && o.fallback.write(fallbackPrefix + message + '\n'))

  const child = spawn(
    loggerPath,
    [
      `--socket=${o.socketPath}`,
      '--socket-errors=on',
      '--prio-prefix',
      '--stderr',
      '--size=1024',
      `--tag=${ident}`,
      `--id=${o.pid}`,
    ],
    // LC_ALL=C: logger's error texts, which become REASON, stay in English.
    { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } },
  )
  // Unreferenced: a process that has nothing else to do ends; logger then
  // reads end-of-file, sends what it has and exits too.
  child.unref()
  ;(child.stdin as unknown as Socket).unref()
  ;(child.stderr as unknown as Socket).unref()

  /** Lines written to logger and not yet echoed back (sent), oldest first. */
  const pending: string[] = []
  let toSyslog = true
  let failed = false
  let closing = false
  let exited = false
  let spawnError: unknown = null
  let closeTimer: NodeJS.Timeout | undefined
  let resolveGone!: () => void
  const gone = new Promise<void>(resolve => (resolveGone = resolve))
  let closed: Promise<void> | undefined

  const fail = (reason: string): void => {
    if (failed) return
    failed = true
    toSyslog = false
    toFallback(render({ tag: '-ERR', event: 'syslog-unreachable', text: `syslog unreachable (${reason}), logging to stderr` }))
    for (const message of pending.splice(0)) toFallback(message)
    child.kill()
  }

  // The child's 'error' (it could not be started) and its stdin's (EPIPE
  // once it has gone) are followed by 'close', which does the switch; a
  // spawn error is kept for the reason.
  const noteError = (err: unknown): void => {
    spawnError ??= err
  }
  child.on('error', noteError)
  child.stdin.on('error', noteError)

  let partial = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => {
    partial += chunk
    let nl: number
    while ((nl = partial.indexOf('\n')) !== -1) {
      const line = partial.slice(0, nl)
      partial = partial.slice(nl + 1)
      // An echo (`<PRI>...`): the oldest pending line has been sent.
      if (line.startsWith('<')) pending.shift()
      // Anything else is an error report (`logger: socket /dev/log: ...`).
      else fail(line.replace(/^logger: /, ''))
    }
  })

  child.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
    exited = true
    clearTimeout(closeTimer)
    if (!(closing && code === 0 && pending.length === 0)) {
      if (child.pid === undefined) fail(`cannot run ${loggerPath}: ${errorCode(spawnError)}`)
      else if (signal !== null) fail(`logger killed by ${signal}`)
      else fail(`logger exited with status ${code}`)
    }
    toSyslog = false
    resolveGone()
  })

  return {
    debug: o.debug,
    log(entry) {
      if (entry.tag === '+DEBUG' && !o.debug) return
      const message = render(entry)
      if (toSyslog && pending.length >= maxPending) fail(`not accepting messages, ${pending.length} lines waiting`)
      if (!toSyslog) return toFallback(message)
      pending.push(message)
      child.stdin.write(priority + message + '\n')
    },
    close() {
      if (closed === undefined) {
        closing = true
        // From here on lines go to the fallback: logger's stdin is ending.
        toSyslog = false
        child.stdin.end()
        if (!exited) {
          closeTimer = setTimeout(() => fail(`logger did not finish within ${closeTimeoutMs} ms`), closeTimeoutMs)
        }
        closed = gone
      }
      return closed
    },
  }
}
