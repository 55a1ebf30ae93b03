/**
 * One session as the statistics see it: it counts the session's events in
 * the process's Counters and answers for its row of `show sessions`
 * (the SessionObserver of lib/session/observer.ts). The forwarder makes one
 * per session and keeps them by id, for `show sessions` and `kill session`.
 */
import type { SessionRow, SessionState } from '../control/render.js'
import type { RelayHandle, RelayResult } from '../relay/event-loop.js'
import type { EndResult, SessionDenial, SessionObserver } from '../session/observer.js'
import type { Counters } from './counters.js'

export interface LiveStart {
  id: number
  /** serviceKey() of its service. */
  service: string
  client: string
  clientPort: number
  /** performance.now() at accept. */
  startedMs: number
  /** What runs first: the ACP, else the handler, else the connect and relay. */
  state: SessionState
}

export class LiveSession implements SessionObserver {
  #state: SessionState
  #client: string
  #clientPort: number
  #server: string | null = null
  #relay: RelayHandle | null = null
  #killed = false
  /** The session it watches, which abort() ends (set by the forwarder, which makes both). */
  session: { abort(): void } | null = null

  constructor(
    readonly counters: Counters,
    readonly start: LiveStart,
  ) {
    this.#state = start.state
    this.#client = start.client
    this.#clientPort = start.clientPort
  }

  denied(reason: SessionDenial): void {
    this.counters.denied(this.start.service, reason)
  }

  handler(client: string, clientPort: number): void {
    this.#state = 'handler'
    this.#client = client
    this.#clientPort = clientPort
  }

  connectFailed(server: string): void {
    this.counters.connectFailed(this.start.service, server, Date.now())
  }

  relaying(server: string, relay: RelayHandle, client: string, clientPort: number): void {
    this.counters.connected(this.start.service, server, Date.now())
    this.#state = 'relaying'
    this.#server = server
    this.#relay = relay
    this.#client = client
    this.#clientPort = clientPort
  }

  ended(result: RelayResult): EndResult {
    this.counters.relayEnded(this.start.service, this.#server as string, result.received, result.sent)
    return this.#killed ? { ...result, closedBy: 'killed' } : result
  }

  /** `kill session`: end it; a relay's disconnect line says `closed-by= killed`. */
  kill(): void {
    this.#killed = true
    this.abort()
  }

  /** End the session (shutdown after the grace period, `kill session`). */
  abort(): void {
    this.session?.abort()
  }

  /** Its row of `show sessions` at `nowMs` (performance.now()). */
  row(nowMs: number): SessionRow {
    const counts = this.#relay?.counts() ?? { received: 0, sent: 0, halfClosed: false }
    return {
      id: this.start.id,
      service: this.start.service,
      client: this.#client,
      client_port: this.#clientPort,
      server: this.#server,
      received: counts.received,
      sent: counts.sent,
      age: Math.floor((nowMs - this.start.startedMs) / 1000),
      state: counts.halfClosed ? 'half-closed' : this.#state,
    }
  }
}
