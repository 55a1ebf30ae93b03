/**
 * Who a connection's log lines are about, for `--log-format json`
 * (lib/log/fields.ts builds the fields from it): the client as the session
 * reports it (the PROXY header's, once one was accepted), where it
 * arrived (the service's identity, serviceKey: the same string as the
 * counters' and `show` tables' service), the serving process.
 */
import { serviceKey, type ResolvedService } from '../config/resolve.js'
import type { ConnectionFacts, Fields } from '../log/fields.js'
import type { LogEntry } from '../log/logger.js'

/** `where`: the service, or the `address:port` a connection with no service arrived on. */
export function connectionFacts(where: Pick<ResolvedService, 'iface' | 'port'> | string, pid: number, client: string, clientPort: number): ConnectionFacts {
  return { client, clientPort, service: typeof where === 'string' ? where : serviceKey(where), pid }
}

/**
 * A connection's log line whose JSON fields are built only when read: a
 * JSON logger reads them, the text format never does (building them for
 * every line was a tenth of the event loop's work per connection,
 * bench/RESULTS.md "Profile"). A class, so the getter is the prototype's:
 * an object literal with a getter is a new accessor and a slow-mode object
 * for every line.
 */
class ConnectionLine implements LogEntry {
  constructor(
    readonly tag: LogEntry['tag'],
    readonly event: string,
    readonly id: number,
    readonly text: string,
    build: () => Fields,
  ) {
    this.#build = build
  }

  readonly #build: () => Fields

  get fields(): Fields {
    return this.#build()
  }
}

export function connectionLine(tag: LogEntry['tag'], event: string, id: number, text: string, fields: () => Fields): LogEntry {
  return new ConnectionLine(tag, event, id, text, fields)
}
