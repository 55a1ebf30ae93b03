/**
 * The numbers an admin asks of a running tcpproxy (#16), kept so that they
 * add up across worker processes and never go down across reloads and
 * worker restarts.
 *
 * Each process counts in its own Counters and ships a Snapshot (plain JSON,
 * safe for process.send) to the supervisor now and then. The supervisor's
 * Aggregator keeps every live worker's last snapshot plus a `retired`
 * accumulator: when a worker ends, its counters move there, so its totals
 * are not lost, and the sum over retired + live never goes down.
 *
 * Everything here is an integer, durations included (microseconds): sums
 * of integers below 2^53 are exact, so a merge gives the same result in any
 * order (floating-point sums would differ in the last bits).
 *
 * Pure: the caller passes the time (`at`, ms since the epoch) where it
 * matters.
 */

/**
 * Upper bounds (seconds) of the duration histogram. TCP sessions through a
 * port redirector span seven orders of magnitude: health checks and refused
 * or failed sessions end within milliseconds (5 ms, 25 ms), request/response
 * protocols within a second (0.1, 0.5, 2.5 s), interactive and bulk
 * transfers within minutes (10, 30, 60, 300 s), and SSH, IMAP IDLE or
 * database pools last hours (15 min, 1 h, 4 h). Roughly a factor of 2 to 5
 * between neighbours keeps quantile estimates useful at every scale with
 * 12 buckets (13 series with +Inf per service).
 */
export const DURATION_BUCKETS: readonly number[] = [0.005, 0.025, 0.1, 0.5, 2.5, 10, 30, 60, 300, 900, 3600, 14400]

/** A histogram: per-bucket (not cumulative) counts, the last one for +Inf, and the sum in microseconds. */
export interface Histogram {
  counts: number[]
  sumMicros: number
}

/** The latest word on whether an upstream accepts: from the last connect attempt, at `at` (ms). */
export interface UpState {
  up: boolean
  at: number
}

/** One upstream (`host:port`) of one service. */
export interface ServerStats {
  /** Sessions relayed to it. */
  connections: number
  /** Those still open (a gauge). */
  active: number
  /** Bytes from the server (to the client), and to it. */
  received: number
  sent: number
  connectFailures: number
  up: UpState | null
}

/** One service (its listen `address:port`). */
export interface ServiceStats {
  /** Connections accepted. */
  connections: number
  /** Those still open (a gauge). */
  active: number
  /** Connections refused, by reason (`acp`, `max-connections`, ...). */
  denied: Record<string, number>
  duration: Histogram
  servers: Record<string, ServerStats>
}

/** What a process ships to the supervisor: plain JSON. */
export interface Snapshot {
  services: Record<string, ServiceStats>
}

export function emptyHistogram(): Histogram {
  return { counts: DURATION_BUCKETS.map(() => 0).concat(0), sumMicros: 0 }
}

function emptyServer(): ServerStats {
  return { connections: 0, active: 0, received: 0, sent: 0, connectFailures: 0, up: null }
}

function emptyService(): ServiceStats {
  return { connections: 0, active: 0, denied: {}, duration: emptyHistogram(), servers: {} }
}

/** A record's entries sorted by key (keys are unique: never equal), so renderings compare line by line. */
export function sortedEntries<T>(o: Record<string, T>): [string, T][] {
  return Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1))
}

/** The sessions open in `s`, all services together (systemd's STATUS=). */
export function openSessions(s: Snapshot): number {
  return Object.values(s.services).reduce((n, svc) => n + svc.active, 0)
}

/** The bucket a duration (seconds) falls in: the first bound it does not exceed, else +Inf. */
export function bucketIndex(seconds: number): number {
  const i = DURATION_BUCKETS.findIndex(le => seconds <= le)
  return i < 0 ? DURATION_BUCKETS.length : i
}

/** The counters of one process; events in, snapshots out. */
export class Counters {
  readonly #services = new Map<string, ServiceStats>()

  #service(service: string): ServiceStats {
    let s = this.#services.get(service)
    if (s === undefined) this.#services.set(service, (s = emptyService()))
    return s
  }

  #server(service: string, server: string): ServerStats {
    const servers = this.#service(service).servers
    return (servers[server] ??= emptyServer())
  }

  /**
   * The configured services (`address:port`) and their servers
   * (`host:port`): listed with zeros until their first connection, so that
   * `show services`, `show servers` (state unknown) and the metrics show
   * what is configured, not only what has had traffic.
   */
  configured(services: readonly string[], servers: readonly { service: string; server: string }[]): void {
    for (const s of services) this.#service(s)
    for (const u of servers) this.#server(u.service, u.server)
  }

  /** A connection was accepted on `service`. */
  accepted(service: string): void {
    const s = this.#service(service)
    s.connections++
    s.active++
  }

  /** An accepted connection was refused before any relay (ACP, limits, PROXY header, ...). It still ends with closed(). */
  denied(service: string, reason: string): void {
    const denied = this.#service(service).denied
    denied[reason] = (denied[reason] ?? 0) + 1
  }

  /** An accepted connection ended after `seconds`. */
  closed(service: string, seconds: number): void {
    const s = this.#service(service)
    s.active--
    s.duration.counts[bucketIndex(seconds)]!++
    s.duration.sumMicros += Math.round(seconds * 1e6)
  }

  /** The upstream accepted a connect at `at` (ms). */
  connected(service: string, server: string, at: number): void {
    const s = this.#server(service, server)
    s.connections++
    s.active++
    s.up = { up: true, at }
  }

  /** A connect to the upstream failed at `at` (ms). */
  connectFailed(service: string, server: string, at: number): void {
    const s = this.#server(service, server)
    s.connectFailures++
    s.up = { up: false, at }
  }

  /** A relayed session to the upstream ended, with its byte counts. */
  relayEnded(service: string, server: string, received: number, sent: number): void {
    const s = this.#server(service, server)
    s.active--
    s.received += received
    s.sent += sent
  }

  /** A deep copy, safe to send and to keep. */
  snapshot(): Snapshot {
    return structuredClone({ services: Object.fromEntries(this.#services) })
  }
}

/** The later of two upstream states; on a tie, down (the cautious answer), so that order never matters. */
function laterUp(a: UpState | null, b: UpState | null): UpState | null {
  if (a === null || b === null) return a ?? b
  if (a.at !== b.at) return a.at > b.at ? a : b
  return a.up ? b : a
}

function addHistogram(into: Histogram, h: Histogram): void {
  h.counts.forEach((n, i) => (into.counts[i]! += n))
  into.sumMicros += h.sumMicros
}

/**
 * Add `s` into `into`. With `gauges` false the active counts are left out
 * (a retired worker has no open sessions left).
 */
function addSnapshot(into: Snapshot, s: Snapshot, gauges: boolean): void {
  for (const [name, svc] of Object.entries(s.services)) {
    const t = (into.services[name] ??= emptyService())
    t.connections += svc.connections
    if (gauges) t.active += svc.active
    for (const [reason, n] of Object.entries(svc.denied)) t.denied[reason] = (t.denied[reason] ?? 0) + n
    addHistogram(t.duration, svc.duration)
    for (const [key, srv] of Object.entries(svc.servers)) {
      const u = (t.servers[key] ??= emptyServer())
      u.connections += srv.connections
      if (gauges) u.active += srv.active
      u.received += srv.received
      u.sent += srv.sent
      u.connectFailures += srv.connectFailures
      u.up = laterUp(u.up, srv.up)
    }
  }
}

/** The sum of snapshots: counters and gauges added, histograms bucket by bucket, the latest upstream state. */
export function mergeSnapshots(snapshots: readonly Snapshot[]): Snapshot {
  const total: Snapshot = { services: {} }
  for (const s of snapshots) addSnapshot(total, s, true)
  return total
}

/**
 * Whether no counter of `next` is below (or missing from) `prev`: `next`
 * continues `prev`. Walked side by side, without building keys: the
 * supervisor runs it on every snapshot a worker ships.
 */
export function continues(prev: Snapshot, next: Snapshot): boolean {
  for (const [name, p] of Object.entries(prev.services)) {
    const n = next.services[name]
    if (n === undefined) return false
    const pairs: [number, number | undefined][] = [
      [p.connections, n.connections],
      [p.duration.sumMicros, n.duration.sumMicros],
      ...p.duration.counts.map((c, i): [number, number | undefined] => [c, n.duration.counts[i]]),
      ...Object.entries(p.denied).map(([reason, c]): [number, number | undefined] => [c, n.denied[reason]]),
    ]
    for (const [key, ps] of Object.entries(p.servers)) {
      const ns = n.servers[key]
      if (ns === undefined) return false
      pairs.push([ps.connections, ns.connections], [ps.received, ns.received], [ps.sent, ns.sent], [ps.connectFailures, ns.connectFailures])
    }
    if (pairs.some(([was, now]) => now === undefined || now < was)) return false
  }
  return true
}

/** The supervisor's view: the workers' last snapshots plus what ended workers counted. */
export class Aggregator {
  readonly #workers = new Map<string, Snapshot>()
  readonly #retired: Snapshot = { services: {} }

  /**
   * A worker's latest snapshot. One that does not continue the previous one
   * under the same id (a process restarted under a reused id) retires the
   * previous first, so nothing counted is lost.
   */
  update(workerId: string, snapshot: Snapshot): void {
    const prev = this.#workers.get(workerId)
    if (prev !== undefined && !continues(prev, snapshot)) this.retire(workerId)
    this.#workers.set(workerId, structuredClone(snapshot))
  }

  /** The worker has ended: its counters move to the retired total, its gauges go. */
  retire(workerId: string): void {
    const last = this.#workers.get(workerId)
    if (last === undefined) return
    addSnapshot(this.#retired, last, false)
    this.#workers.delete(workerId)
  }

  /** Totals since start: retired plus every live worker. */
  total(): Snapshot {
    return mergeSnapshots([this.#retired, ...this.#workers.values()])
  }
}
