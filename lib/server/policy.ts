/**
 * What the forwarder keeps per service across connections (#17): who may
 * connect (allow/deny, max-per-client), which server a session tries first
 * (balance) and the servers' passive health marks (max-fails,
 * fail-timeout). The pure rules are in access.ts, client-limit.ts,
 * balance.ts and health.ts; this module holds their state, keyed by the
 * service's identity (its interface and port) so that a reload carries it
 * over, and gives each session a Ticket (lib/session/context.ts
 * SessionPolicy).
 */
import { formatHostPort, type Endpoint } from '../config/address.js'
import { serviceKey, type ResolvedService } from '../config/resolve.js'
import { errorCode } from '../errors.js'
import type { LogEntry } from '../log/logger.js'
import type { SessionPolicy } from '../session/context.js'
import { accessChecker, accessDeniedText, type AccessVerdict } from './access.js'
import { Rotation, tryOrder } from './balance.js'
import { ClientLimit } from './client-limit.js'
import { Health, serverKey, type Transition } from './health.js'
import { ANY_SOURCE, connectOne, type AttemptOutcome } from './upstream.js'

/** Why a client was closed at once: an access list, or max-per-client. */
export type DenyReason = 'acl' | 'max-per-client'

/** A rate-limited log line (lib/server/episodes.ts). */
export interface Reporter {
  report(log: (more: string) => void): void
}

export interface PolicyHooks {
  log: (entry: LogEntry) => void
  /** A server of `service` changed state in this process: log it (one process) or tell the supervisor (a worker). */
  transition: (service: string, t: Transition) => void
  /** A client was refused (for the counters). */
  denied?: ((service: string, reason: DenyReason) => void) | undefined
  /** A new rate limiter for repeated refusal lines. */
  episodes: () => Reporter
  /** Servers (`host:port`) taken out of rotation by `disable server`, shared by every service. */
  disabled: ReadonlySet<string>
}

/**
 * The connect errors that say something of the server; the others (EMFILE,
 * EADDRNOTAVAIL: ours) are not counted. A name the resolver says does not
 * exist (ENOTFOUND) is the server's, as HAProxy takes a server whose
 * resolution fails out of the rotation; a resolver that does not answer
 * (EAI_AGAIN) is ours.
 */
const FAILURE_REASONS = new Map([
  ['ECONNREFUSED', 'connection refused'],
  ['ETIMEDOUT', 'connect timed out'],
  ['EHOSTUNREACH', 'unreachable'],
  ['ENETUNREACH', 'unreachable'],
  ['EHOSTDOWN', 'unreachable'],
  ['ENOTFOUND', 'name not found'],
])

/** The reason a failed connect counts against its server, or null when the failure is not the server's. */
export function failureReason(err: Error): string | null {
  return FAILURE_REASONS.get(errorCode(err)) ?? null
}

/** One server's state for `show servers`. */
export interface ServerState {
  service: string
  server: string
  state: 'up' | 'down' | 'disabled'
  failures: number
  active: number
  reason: string | null
}

/** One service's policy state. */
export class ServicePolicy {
  readonly key: string
  #service!: ResolvedService
  #admits!: (client: string) => AccessVerdict
  #health!: Health
  readonly #rotation = new Rotation()
  readonly #limit = new ClientLimit(0)
  /** Sessions connected to each server (leastconn); only servers with sessions. */
  readonly #active = new Map<string, number>()
  readonly #acl: Reporter
  readonly #perClient: Reporter
  /** check-interval's timer, and the servers being probed now. */
  #prober: NodeJS.Timeout | null = null
  readonly #probing = new Set<string>()

  constructor(
    service: ResolvedService,
    readonly hooks: PolicyHooks,
  ) {
    this.key = serviceKey(service)
    this.#acl = hooks.episodes()
    this.#perClient = hooks.episodes()
    this.update(service)
  }

  /** The service's settings after a reload: counts and rotation stay; marks stay unless max-fails or fail-timeout changed. */
  update(service: ResolvedService): void {
    const old = this.#service as ResolvedService | undefined
    if (old?.maxFails !== service.maxFails || old.timeouts.failMs !== service.timeouts.failMs) {
      this.#health = new Health({ maxFails: service.maxFails, failTimeoutMs: service.timeouts.failMs })
    }
    this.#service = service
    this.#admits = accessChecker(service)
    this.#limit.setLimit(service.maxPerClient)
    this.stop()
    const every = service.timeouts.checkMs
    // unref: probes never keep the process alive; stop() ends them with the service.
    if (every > 0) this.#prober = setInterval(() => this.probe(every), every).unref()
  }

  /** No more probes (the service is gone, or the forwarder closes). */
  stop(): void {
    clearInterval(this.#prober ?? undefined)
    this.#prober = null
  }

  /**
   * check-interval: a TCP connect to each server marked down whose last
   * failure is `every` ms old, one at a time per server. A success calls it
   * up (logged once, like a session's connect); a failure keeps it down.
   */
  probe(every: number): void {
    const s = this.#service
    const from = s.sourceAddress === null ? ANY_SOURCE : ({ kind: 'address', address: s.sourceAddress } as const)
    const due = new Set(this.#health.probeDue(performance.now(), every))
    for (const ep of s.servers ?? []) {
      const port = ep.port ?? s.port
      const key = serverKey(ep.host, port)
      if (this.#probing.has(key) || !due.has(key)) continue
      this.#probing.add(key)
      connectOne(ep.host, port, s.timeouts.connectMs, from).then(
        socket => {
          socket.destroy()
          this.#probed({ ok: true, host: ep.host, port }, key)
        },
        (error: Error) => this.#probed({ ok: false, error, host: ep.host, port }, key),
      )
    }
  }

  #probed(a: AttemptOutcome, key: string): void {
    this.#probing.delete(key)
    const server = this.attempted(a)
    // A probe is no session.
    if (server !== null) this.disconnected(server)
  }

  /** A session's view of this policy (admitted and released once). */
  ticket(id: number, localPort: number): Ticket {
    return new Ticket(this, id, localPort)
  }

  /**
   * Check `client` (the real one); a refusal is logged (rate-limited) and
   * counted. `planned`: the relay thread connected it by a plan made when
   * no list or limit applied (lib/server/plan.ts), before a reload brought
   * one: it is counted, and never refused.
   */
  admit(id: number, client: string, port: number, planned = false): boolean {
    if (planned) return this.#limit.acquire(client, true)
    const verdict = this.#admits(client)
    if (!verdict.allowed) {
      this.#refuse(this.#acl, id, 'acl', more => `${accessDeniedText(formatHostPort(client, port), verdict)}${more}`)
      return false
    }
    if (this.#limit.acquire(client)) return true
    const max = this.#service.maxPerClient
    this.#refuse(this.#perClient, id, 'max-per-client', more => `too many sessions of one client (max-per-client ${max}), client= ${client}${more}`)
    return false
  }

  #refuse(episodes: Reporter, id: number, reason: DenyReason, text: (more: string) => string): void {
    episodes.report(more => this.hooks.log({ tag: '-ERR', event: reason === 'acl' ? 'acl-denied' : 'client-limit', id, text: text(more) }))
    this.hooks.denied?.(this.key, reason)
  }

  release(client: string): void {
    this.#limit.release(client)
  }

  /** `servers` in the order to try them for `client`; disabled servers left out unless all are. */
  order(servers: readonly Endpoint[], localPort: number, client: string): readonly Endpoint[] {
    // One server is tried whatever its marks, disables and the mode say
    // (neither ever refuses a client on its own); no rotation to advance
    // that a list of one could notice. The common case, without the arrays.
    if (servers.length === 1) return servers
    const now = performance.now()
    const keys = servers.map(ep => serverKey(ep.host, ep.port ?? localPort))
    const enabled = servers.map((_, i) => i).filter(i => !this.hooks.disabled.has(keys[i] as string))
    // A disable, like a mark, never refuses a client on its own.
    const pool = enabled.length > 0 ? enabled : servers.map((_, i) => i)
    const candidates = pool.map(i => ({ key: keys[i] as string, up: this.#health.isUp(keys[i] as string, now), active: this.#active.get(keys[i] as string) ?? 0 }))
    return tryOrder(this.#service.balance, candidates, { rotation: this.#rotation, client }).map(j => servers[pool[j] as number] as Endpoint)
  }

  /** A connect attempt ended: its server's health, and the active count of the one connected (returned: its key). */
  attempted(a: AttemptOutcome): string | null {
    const now = performance.now()
    const server = serverKey(a.host, a.port)
    let t: Transition | null
    if (a.ok) {
      this.#active.set(server, (this.#active.get(server) ?? 0) + 1)
      t = this.#health.recordSuccess(server, now)
    } else {
      const reason = failureReason(a.error)
      t = reason === null ? null : this.#health.recordFailure(server, reason, now)
    }
    if (t !== null) this.hooks.transition(this.key, t)
    return a.ok ? server : null
  }

  /** A session connected to `server` has ended. */
  disconnected(server: string): void {
    const left = (this.#active.get(server) as number) - 1
    if (left === 0) this.#active.delete(server)
    else this.#active.set(server, left)
  }

  /** A mark another worker saw (through the supervisor): taken on silently. */
  apply(t: Transition): void {
    this.#health.apply(t, performance.now())
  }

  /**
   * The servers its sessions count under (`host:port`), known before the
   * first one: a server without a port on a transparent service goes to the
   * port each client meant to reach, so it has none until then.
   */
  knownServers(): string[] {
    const s = this.#service
    return (s.servers ?? []).filter(ep => ep.port !== null || !s.transparent).map(ep => serverKey(ep.host, ep.port ?? s.port))
  }

  /** Each server of the service, in list order. */
  states(localPort: number = this.#service.port): ServerState[] {
    const keys = (this.#service.servers ?? []).map(ep => serverKey(ep.host, ep.port ?? localPort))
    return this.#health.snapshot(keys, performance.now()).map(h => ({
      service: this.key,
      server: h.server,
      state: this.hooks.disabled.has(h.server) ? 'disabled' : h.state,
      failures: h.failures,
      active: this.#active.get(h.server) ?? 0,
      reason: h.reason,
    }))
  }
}

/** One session's admission and upstream choice; release() undoes what it counted, once. */
export class Ticket implements SessionPolicy {
  #client: string | null = null
  #server: string | null = null
  #released = false

  constructor(
    readonly policy: ServicePolicy,
    readonly id: number,
    readonly localPort: number,
  ) {}

  admit(client: string, port: number, planned = false): boolean {
    if (!this.policy.admit(this.id, client, port, planned)) return false
    this.#client = client
    return true
  }

  order(servers: readonly Endpoint[]): readonly Endpoint[] {
    return this.policy.order(servers, this.localPort, this.#client as string)
  }

  attempted(a: AttemptOutcome): void {
    this.#server = this.policy.attempted(a) ?? this.#server
  }

  /** The session has ended (every path: the forwarder calls this once it settles). */
  release(): void {
    if (this.#released) return
    this.#released = true
    if (this.#client !== null) this.policy.release(this.#client)
    if (this.#server !== null) this.policy.disconnected(this.#server)
  }
}

/** The policies of the services in use, by serviceKey; a reload keeps those of the services that stay. */
export class Policies {
  #byKey = new Map<string, ServicePolicy>()
  readonly #disabled = new Set<string>()

  constructor(
    services: readonly ResolvedService[],
    readonly hooks: Omit<PolicyHooks, 'disabled'>,
  ) {
    this.set(services)
  }

  set(services: readonly ResolvedService[]): void {
    const next = new Map<string, ServicePolicy>()
    for (const s of services) {
      const key = serviceKey(s)
      const kept = this.#byKey.get(key)
      kept?.update(s)
      next.set(key, kept ?? new ServicePolicy(s, { ...this.hooks, disabled: this.#disabled }))
    }
    for (const [key, p] of this.#byKey) if (!next.has(key)) p.stop()
    this.#byKey = next
  }

  /** End every service's probes (the forwarder closes). */
  stop(): void {
    for (const p of this.#byKey.values()) p.stop()
  }

  of(service: ResolvedService): ServicePolicy {
    return this.#byKey.get(serviceKey(service)) as ServicePolicy
  }

  /** A mark from the supervisor; a service this process no longer has is ignored. */
  apply(service: string, t: Transition): void {
    this.#byKey.get(service)?.apply(t)
  }

  /** Take `server` (`host:port`) out of rotation for new sessions; false when no service has it, or it is disabled already. */
  disable(server: string): boolean {
    if (this.#disabled.has(server) || !this.states().some(s => s.server === server)) return false
    this.#disabled.add(server)
    return true
  }

  /** Put `server` back; false when it was not disabled. */
  enable(server: string): boolean {
    return this.#disabled.delete(server)
  }

  get disabled(): ReadonlySet<string> {
    return this.#disabled
  }

  states(): ServerState[] {
    return [...this.#byKey.values()].flatMap(p => p.states())
  }

  /** Each service's known servers (ServicePolicy.knownServers), for the counters' rows before any traffic. */
  knownServers(): { service: string; server: string }[] {
    return [...this.#byKey.values()].flatMap(p => p.knownServers().map(server => ({ service: p.key, server })))
  }
}
