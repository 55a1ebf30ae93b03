/**
 * A tcpproxy started by another one's handler (`exec tcpproxy host:port`,
 * the service-routing example) logs as itself, not as the handler's stderr.
 *
 * The outer tcpproxy tells its programs where it logs, in the environment
 * (`TCPPROXY_LOG`): `syslog FACILITY SOCKET`, or `stderr`.
 * - syslog: the inner one (inetd mode) logs to that syslog, with its own
 *   name and pid, instead of writing lines the outer would wrap.
 * - stderr: the inner one writes its usual `name[pid]: ...` lines to its
 *   stderr, the handler's log pipe, and the outer passes a line through
 *   unchanged when it carries the handler's own pid (the pid a program
 *   keeps when it execs tcpproxy), rather than logging it as
 *   `-INFO: handler: ..., id= N`. Other lines of the handler are logged
 *   as before.
 */
import type { LogSettings } from './open.js'

/** The environment variable that carries where the outer tcpproxy logs. */
export const LOG_ENV = 'TCPPROXY_LOG'

/** Whether a handler's stderr line is a text log line of the handler process itself (`name[PID]: ...`). */
export function isOwnLogLine(line: string, pid: number | undefined): boolean {
  if (pid === undefined) return false
  const m = /^[^\s[\]]+\[(\d+)\]: /.exec(line)
  return m !== null && Number(m[1]) === pid
}

/** Where the settings `s` log, in TCPPROXY_LOG's words. */
export function logPlaceOf(s: LogSettings): string {
  return s.target === 'stderr' ? 'stderr' : `syslog ${s.facility} ${s.syslogSocket}`
}

/**
 * The log settings of an inetd-mode tcpproxy whose programs' environment
 * said `outer` (TCPPROXY_LOG): to the outer one's syslog instead of stderr
 * when it logs there, unless --syslog-socket or --syslog-facility say
 * otherwise; else `s` unchanged.
 */
export function nestedLogSettings(s: LogSettings, outer: string | undefined, explicit: { socket: boolean; facility: boolean }): LogSettings {
  const m = /^syslog (\d{1,3}) (\/.+)$/.exec(outer ?? '')
  if (m === null || s.target !== 'stderr') return s
  return {
    ...s,
    target: 'syslog',
    facility: explicit.facility ? s.facility : Number(m[1]),
    syslogSocket: explicit.socket ? s.syslogSocket : (m[2] as string),
  }
}
