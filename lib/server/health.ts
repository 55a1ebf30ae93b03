/**
 * Passive health marks of a service's servers (`max-fails N`, `fail-timeout
 * S`), with nginx's semantics: N failed connects within S seconds mark a
 * server down for S seconds, and while it is down new sessions skip it
 * (lib/server/balance.ts). A success clears the failures, as in nginx.
 * `max-fails 0` turns marking off.
 *
 * When the mark expires the server is tried again but is not called up:
 * only a successful connect emits the `up` transition. Expiry is no news
 * about the server, and logging `up` at expiry would log an up/down pair
 * every fail-timeout for a server that stays dead. A failure of a server
 * whose mark expired marks it again at once (nginx does the same), without
 * a second `down` line, since no `up` came between.
 *
 * Pure: the caller passes the time (`now`, in ms, any monotonic clock) and
 * logs the transitions it is given, each once.
 */
import { formatHostPort } from '../config/address.js'

export interface HealthSettings {
  /** Failed connects within failTimeoutMs that mark a server down; 0 = never mark. */
  maxFails: number
  /** The window for counting failures, and how long a mark lasts. */
  failTimeoutMs: number
}

/** nginx's defaults: max_fails=1 fail_timeout=10s. */
export const DEFAULT_HEALTH: Readonly<HealthSettings> = Object.freeze({ maxFails: 1, failTimeoutMs: 10_000 })

/** A server changing state: to be logged once, and shared with the other workers (apply). */
export type Transition =
  | { server: string; state: 'down'; reason: string; failures: number; maxFails: number }
  | { server: string; state: 'up' }

/** One server's state for `show servers` and metrics. */
export interface ServerHealth {
  server: string
  /** `down` while marked; a server whose mark expired is `up` again (it is tried). */
  state: 'up' | 'down'
  /** Failed connects in the current window (for a marked server: those that marked it). */
  failures: number
  /** When the mark ends (the caller's clock), or null. */
  downUntil: number | null
  /** The last failure's reason, or null. */
  reason: string | null
}

interface Record {
  /** Times of the latest failures within the window, oldest first; at most maxFails. */
  failures: number[]
  reason: string | null
  /** The time of the last failed connect (or of the mark learnt through apply). */
  lastFailure: number
  /** The mark's end, or null. Kept after expiry until a success: the server is on trial. */
  downUntil: number | null
}

/** The log record of a transition: the one wording of both lines. */
export function transitionLog(t: Transition): { tag: '-INFO' | '+INFO'; event: 'server-down' | 'server-up'; text: string } {
  if (t.state === 'up') return { tag: '+INFO', event: 'server-up', text: `server ${t.server} up` }
  return { tag: '-INFO', event: 'server-down', text: `server ${t.server} down (${t.reason}, ${t.failures} of ${t.maxFails} failures)` }
}

/** The key of a server in marks and logs: `host:port`, IPv6 in brackets. */
export function serverKey(host: string, port: number): string {
  return formatHostPort(host, port)
}

/** The marks of one service's servers, in one process. */
export class Health {
  readonly #settings: HealthSettings
  /** Only servers with failures or a mark: a healthy server has no entry. */
  readonly #servers = new Map<string, Record>()

  constructor(settings: HealthSettings = DEFAULT_HEALTH) {
    this.#settings = { ...settings }
  }

  /** True unless the server is marked down now. */
  isUp(server: string, now: number): boolean {
    const r = this.#servers.get(server)
    return r === undefined || r.downUntil === null || now >= r.downUntil
  }

  /**
   * A connect to `server` failed (refused, timed out, unreachable; `reason`
   * says which). Returns the `down` transition when this failure marks a
   * server that was up; else null.
   */
  recordFailure(server: string, reason: string, now: number): Transition | null {
    const { maxFails, failTimeoutMs } = this.#settings
    if (maxFails === 0) return null
    const r = this.#servers.get(server) ?? { failures: [], reason: null, lastFailure: now, downUntil: null }
    this.#servers.set(server, r)
    r.reason = reason
    r.lastFailure = now
    if (r.downUntil !== null) {
      // Still marked, or on trial after the mark expired: marked (again) from now, no new line.
      r.downUntil = now + failTimeoutMs
      return null
    }
    r.failures = [...r.failures.filter(t => now - t < failTimeoutMs), now].slice(-maxFails)
    if (r.failures.length < maxFails) return null
    r.downUntil = now + failTimeoutMs
    return { server, state: 'down', reason, failures: r.failures.length, maxFails }
  }

  /** A connect to `server` succeeded. Returns the `up` transition when it had been marked down. */
  recordSuccess(server: string, _now: number): Transition | null {
    const r = this.#servers.get(server)
    this.#servers.delete(server)
    return r?.downUntil == null ? null : { server, state: 'up' }
  }

  /**
   * Take on a transition another worker observed (through the supervisor).
   * A `down` mark lasts fail-timeout from `now`, this process's clock, so the
   * processes need not share one. Returns the transition when it changed
   * this table (the supervisor logs exactly those), else null.
   */
  apply(t: Transition, now: number): Transition | null {
    if (t.state === 'up') return this.recordSuccess(t.server, now)
    if (this.#settings.maxFails === 0) return null
    const r = this.#servers.get(t.server)
    const changed = r?.downUntil == null
    this.#servers.set(t.server, { failures: r?.failures ?? [], reason: t.reason, lastFailure: now, downUntil: now + this.#settings.failTimeoutMs })
    return changed ? t : null
  }

  /**
   * `check-interval`: the servers marked down now whose last failed connect
   * is at least `intervalMs` old, to probe with a TCP connect (its result goes
   * to recordSuccess/recordFailure like any connect). The caller skips the
   * ones it is probing already. A server on trial is not listed: sessions try it.
   */
  probeDue(now: number, intervalMs: number): string[] {
    return [...this.#servers].filter(([server, r]) => !this.isUp(server, now) && now - r.lastFailure >= intervalMs).map(([server]) => server)
  }

  /** The state of each of `servers` (the service's list, healthy ones included). */
  snapshot(servers: readonly string[], now: number): ServerHealth[] {
    return servers.map(server => {
      const r = this.#servers.get(server)
      if (r === undefined) return { server, state: 'up', failures: 0, downUntil: null, reason: null }
      const marked = !this.isUp(server, now)
      const failures = marked ? r.failures.length : r.failures.filter(t => now - t < this.#settings.failTimeoutMs).length
      return { server, state: marked ? 'down' : 'up', failures, downUntil: marked ? r.downUntil : null, reason: r.reason }
    })
  }
}
