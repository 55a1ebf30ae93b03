/**
 * Logging to syslog, as the original did with `openlog(ident, LOG_PID,
 * LOG_MAIL)` and `syslog(LOG_NOTICE, ...)`, in either rendering of
 * lib/log/record.ts; the priority follows the tag (lib/log/fields.ts
 * syslogPriority), never below notice.
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
import { syslogPriority } from './fields.js'
import { keepAlive, type Logger } from './logger.js'
import { MAX_MESSAGE_BYTES, clean, clip, formatText, jsonLine, type LogEntry } from './record.js'

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

/** RFC 3164: the TAG (our ident) must not exceed 32 characters. */
const MAX_IDENT_BYTES = 32

/** Lines logger may have in hand before syslog counts as not accepting messages. */
const MAX_PENDING = 10_000

/** How long `close()` waits for logger to send what it has. */
const CLOSE_TIMEOUT_MS = 2000

/** The classic text, cleaned, with the text cut so the whole stays within MAX_MESSAGE_BYTES. */
function textMessage(entry: LogEntry): string {
  // The tag and the `, id= N` tail are the program's own and short; cutting
  // the text instead of the line keeps the id that ties lines together.
  const frame = Buffer.byteLength(formatText({ ...entry, text: '' }))
  return formatText({ ...entry, text: clip(clean(entry.text), MAX_MESSAGE_BYTES - frame) })
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
      child.stdin.write(`<${syslogPriority(o.facility, entry.tag)}>${message}\n`)
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
