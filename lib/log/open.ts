/**
 * Which logger a process uses: stderr in the foreground (-d, --foreground)
 * and when stderr is not a socket in inetd mode; syslog otherwise.
 */
import { FACILITIES, syslogLogger } from './syslog.js'
import { streamLogger, type Logger } from './logger.js'
import { TcpproxyError } from '../errors.js'

export interface LogSettings {
  target: 'stderr' | 'syslog'
  ident: string
  debug: boolean
  format: 'text' | 'json'
  syslogSocket: string
  facility: number
}

/** `--syslog-facility NAME` to its number. */
export function parseFacility(name: string): number {
  const f = FACILITIES[name]
  if (f === undefined) {
    throw new TcpproxyError('ERR_USAGE', `option --syslog-facility: unknown facility ${JSON.stringify(name)} (${Object.keys(FACILITIES).join(', ')})`)
  }
  return f
}

/** A logger for this process (`pid`); stderr is the fallback of syslog too. */
export function openLogger(s: LogSettings, pid: number, stderr: NodeJS.WritableStream): Logger & { close(): Promise<void>; flush(): void } {
  if (s.target === 'stderr') {
    const logger = streamLogger(stderr as never, s.ident, pid, s.debug, s.format)
    // Lines are written once per event-loop turn: the ones logged in the turn
    // that calls process.exit() must not be lost.
    process.once('exit', logger.flush)
    return Object.assign(logger, { close: async () => logger.flush() })
  }
  // Syslog lines go to the logger child as they come: nothing to flush.
  return Object.assign(syslogLogger({
    socketPath: s.syslogSocket,
    facility: s.facility,
    ident: s.ident,
    pid,
    debug: s.debug,
    fallback: stderr as never,
    format: s.format,
  }), { flush: () => {} })
}
