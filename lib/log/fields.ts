/**
 * What a connection's log entries carry for machines (`LogEntry.fields`,
 * written by `--log-format json`), and the syslog severity of each tag.
 *
 * Every connection event has `client`, `client_port`, `service` (the listen
 * `address:port`) and `pid`; `connect` and `disconnect` add `server`
 * (`host:port`); `disconnect` adds `received` (bytes from the server),
 * `sent` (bytes to it), `duration` (seconds, a number) and `closed_by`.
 * Other events (PROXY header, ACP, handler) add what they know through
 * `extra`. Snake case, as the issue and log pipelines (ECS, Loki) spell
 * keys. Pure.
 */
import type { Tag } from './logger.js'

export type Fields = Record<string, string | number | null>

/** Who a connection is: known from accept on. */
export interface ConnectionFacts {
  client: string
  clientPort: number
  /** The listen `address:port` that accepted it. */
  service: string
  pid: number
}

export interface DisconnectFacts {
  server: string
  received: number
  sent: number
  seconds: number
  closedBy: string
}

/** The fields every connection event carries, then `extra` (which cannot replace them). */
export function connectionFields(c: ConnectionFacts, extra: Fields = {}): Fields {
  return { ...extra, client: c.client, client_port: c.clientPort, service: c.service, pid: c.pid }
}

/** `connect`: the upstream that accepted. */
export function connectFields(c: ConnectionFacts, server: string): Fields {
  return connectionFields(c, { server })
}

/** `disconnect`: the upstream, the byte counts, the duration in seconds (to the millisecond, as the text line) and who closed. */
export function disconnectFields(c: ConnectionFacts, d: DisconnectFacts): Fields {
  return connectionFields(c, {
    server: d.server,
    received: d.received,
    sent: d.sent,
    duration: Math.round(d.seconds * 1000) / 1000,
    closed_by: d.closedBy,
  })
}

/**
 * Syslog severities (RFC 5424) by tag. The original sent every line at
 * notice and its users' syslog.conf rules select `mail.notice` (notice and
 * more severe): no tag may go below notice, or upgrading would silently
 * drop the connect/disconnect lines those rules keep today (the reason
 * `+DEBUG` stays at notice too: `-d` asked for those lines). Above it,
 * the tags say how bad: `-ERR` (a session failed: no server, timeout,
 * refused) is err, as HAProxy's `log-separate-errors` raises failed
 * sessions to err; `-INFO` (a failure the program recovered from: one
 * server down, a peer's reset, a dump that cannot be written) is warning,
 * syslog's "warning conditions". So `mail.err` collects failed sessions,
 * `mail.warning` every trouble, and `mail.notice` everything, as before.
 */
export const SEVERITIES: Readonly<Record<Tag, number>> = {
  '-ERR': 3,
  '-INFO': 4,
  '': 5,
  '+OK': 5,
  '+INFO': 5,
  '+DEBUG': 5,
}

/** The `<PRI>` number of a line with `tag` in `facility` (RFC 3164: facility * 8 + severity). */
export function syslogPriority(facility: number, tag: Tag): number {
  return facility * 8 + SEVERITIES[tag]
}
