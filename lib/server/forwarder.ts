/**
 * The forwarder: listeners, per-connection service selection, the sessions
 * in progress, graceful shutdown. One event loop serves every connection
 * (lib/session/session.ts does the per-connection work); nothing here reads
 * `process.*`.
 */
import type { Server, Socket } from 'node:net'
import { canonicalIp, formatHostPort, type ListenSpec } from '../config/address.js'
import { errorText } from '../errors.js'
import { boundAddress, bindListener, parseKey, reconcileListeners } from './listeners.js'
import { Listening } from './listening.js'
import { threadFront, type Accepted, type ThreadFront } from '../relay/front.js'
import { DirectSession, isDirect, isPlain } from '../session/direct.js'
import { Redirects } from '../transparent/redirect.js'
import type { Logger } from '../log/logger.js'
import { serviceKey, type ResolvedService } from '../config/resolve.js'
import { buildSelector, planListeners } from './selector.js'
import { Episodes } from './episodes.js'
import { planFor, type ServicePlan } from './plan.js'
import { Policies, type ServerState, type Ticket } from './policy.js'
import { transitionLog, type Transition } from './health.js'
import type { ProgramContext, SessionBasics } from '../session/context.js'
import { limitText, ProgramLimit, workerShare } from './program-slots.js'
import { Session } from '../session/session.js'
import { Counters } from '../stats/counters.js'
import { LiveSession } from '../stats/live.js'
import type { SessionRow } from '../control/render.js'
import { connectionFacts, connectionLine } from '../session/log-fields.js'
import { connectionFields, type Fields } from '../log/fields.js'

export interface ForwarderOptions {
  logger: Logger
  programs: ProgramContext
  /** At most this many sessions at once (all services); null = no limit. */
  maxConnections?: number | null
  /**
   * How many worker processes share the listeners (default 1). The kernel
   * hands each connection to one of them and they do not count each other's
   * sessions, so every limit (global and per service) is divided: each
   * worker takes ceil(limit / workers).
   */
  workers?: number
  /** This worker's number, 0 to workers - 1: connection ids are index + 1 + k × workers, unique across workers (log lines, -w files). */
  workerIndex?: number
  /**
   * A server changed state in this process. Given (a worker): the
   * supervisor logs it once and tells the other workers; not given: logged here.
   */
  onMark?: (service: string, t: Transition) => void
}

/** The ports whose services are all plain. */
function plainPorts(services: readonly ResolvedService[]): Set<number> {
  const ports = new Set(services.map(s => s.port))
  for (const s of services) if (!isPlain(s)) ports.delete(s.port)
  return ports
}

/** What handle() returns for a connection closed at once. */
const DONE = Promise.resolve()

export class Forwarder {
  readonly #log: Logger
  readonly #programs: ProgramContext
  #select: (address: string, port: number) => ResolvedService | undefined
  #services: readonly ResolvedService[]
  #specs: ListenSpec[]
  /** Settles close()'s wait once the last session has ended. */
  #drained: (() => void) | null = null
  /** Open sessions per service, for the services' max-connections. */
  readonly #perService = new Map<ResolvedService, number>()
  readonly #maxConnections: number | null
  /** Where a connection is accepted: Node, or the relay thread's front (plain services need no Node socket). */
  readonly #front: ThreadFront | null
  readonly #listeners: Listening
  /** The ports where every service is plain (the thread may accept there). */
  #plainPorts: Set<number>
  readonly #redirects = new Redirects(() => this.#listeners.specs)
  readonly #workers: number
  /** The last connection id given; ids step by the worker count. */
  #nextId: number
  #closing = false
  readonly #resourceErrors = new Episodes()
  /** The bound on ACP and handler processes (max-programs). */
  readonly #slots: ProgramLimit
  /** Per service: access lists, client limits, balancing and health marks (carried over a reload). */
  readonly #policies: Policies
  /** The process's counters (one forwarder per process): what its sessions did. */
  readonly counters = new Counters()
  /** Open sessions by id, as the statistics see them (`show sessions`, `kill session`). */
  readonly #live = new Map<number, LiveSession>()

  constructor(services: readonly ResolvedService[], options: ForwarderOptions) {
    this.#log = options.logger
    this.#programs = options.programs
    this.#maxConnections = options.maxConnections ?? null
    this.#workers = options.workers ?? 1
    this.#nextId = (options.workerIndex ?? 0) + 1 - this.#workers
    this.#select = buildSelector(services)
    this.#services = services
    this.#specs = planListeners(services)
    this.#plainPorts = plainPorts(services)
    this.#slots = new ProgramLimit(options.programs.maxPrograms, this.#workers, this.#log, key => this.counters.denied(key, 'max-programs'))
    this.#front = options.programs.relayThread === true ? threadFront() : null
    this.#listeners = new Listening(this.#front, {
      node: (client, listener) => void this.handle(client, listener),
      thread: (a, listener) => this.#accepted(a, listener),
      error: err => this.#onResourceError(err),
      plan: (spec, bound) => this.#plan(spec, bound),
    })
    const logMark = (_service: string, t: Transition): void => this.#log.log(transitionLog(t))
    this.#policies = new Policies(services, {
      log: e => this.#log.log(e),
      transition: options.onMark ?? logMark,
      denied: (service, reason) => this.counters.denied(service, reason),
      episodes: () => new Episodes(),
    })
    this.#configured(services)
  }

  /**
   * What the thread may do for each connection on `spec` at once
   * (lib/server/plan.ts). A listener update() binds is planned by the
   * services in force until the reload's retune plans every listener anew.
   */
  #plan(spec: ListenSpec, bound: string | null): ServicePlan | null {
    const p = planFor(this.#services, spec.port, bound, this.#maxConnections)
    return p === null ? null : { ...p, policy: this.#policies.of(p.service) }
  }

  /** The services' rows in the counters, zeros until their first connection. */
  #configured(services: readonly ResolvedService[]): void {
    this.counters.configured(services.map(serviceKey), this.#policies.knownServers())
  }

  /** Number of sessions open now. */
  get sessions(): number {
    return this.#live.size
  }

  /** Keys (specKey) of the listeners in use. */
  get listening(): string[] {
    return this.#listeners.keys
  }

  /** Bind every listener; on any failure the ones already bound are closed and ERR_BIND thrown. */
  async listen(): Promise<void> {
    await reconcileListeners(this.listening, this.#specs, this.#listenerOps)
  }

  /**
   * Serve connections from an already listening server (bound here or by
   * the supervisor), under the name `key`.
   */
  adopt(key: string, server: Server): void {
    // Lent once close() has begun: close() waits for no connection of it.
    if (this.#closing) return void server.close()
    this.#log.log({ tag: '', event: 'bound', text: `bound to ${boundAddress(server)}` })
    this.#listeners.adopt(key, server, this.#threaded(parseKey(key)))
  }

  /** The listener serving `key` (one in use), to lend to another worker. */
  listener(key: string): Server {
    return this.#listeners.server(key)
  }

  /** Stop listening on `key` (removed by a reload). Open sessions go on. */
  async unlisten(key: string): Promise<void> {
    // Only keys of listeners in use are ever given (reconcileListeners).
    await this.#listeners.close(key)
    this.#log.log({ tag: '', event: 'unbound', text: `closed ${key}` })
  }

  /**
   * New services, listeners left alone (the supervisor manages those): new
   * connections are served by them, sessions already open keep the service
   * they started with.
   */
  setServices(services: readonly ResolvedService[]): void {
    this.#select = buildSelector(services)
    this.#specs = planListeners(services)
    this.#policies.set(services)
    this.#configured(services)
    void this.#retune(services)
  }

  /**
   * New services with their listeners (a reload in a single process). If a
   * listener cannot be bound, everything stays as it was and ERR_BIND is thrown.
   */
  async update(services: readonly ResolvedService[]): Promise<void> {
    const select = buildSelector(services)
    const specs = planListeners(services)
    await reconcileListeners(this.listening, specs, this.#listenerOps)
    this.#select = select
    this.#specs = specs
    this.#policies.set(services)
    this.#configured(services)
    await this.#retune(services)
  }

  /**
   * Whether the relay thread accepts on `spec`'s port: every service there
   * is one it serves whole (lib/session/direct.ts isPlain). A TPROXY
   * listener stays Node's.
   */
  #threaded(spec: ListenSpec): boolean {
    return this.#front !== null && spec.transparent !== true && this.#plainPorts.has(spec.port)
  }

  /** New services: each listener goes to the thread or to Node as they say (a failure to move one is a resource error; it stays as it was). */
  #retune(services: readonly ResolvedService[]): Promise<void> {
    this.#plainPorts = plainPorts(services)
    this.#services = services
    return this.#listeners.retune(spec => this.#threaded(spec)).catch(this.#onResourceError)
  }

  /** Skip `server` (`host:port`) in new sessions of every service; false if no service has it or it was disabled already. */
  disableServer(server: string): boolean {
    return this.#policies.disable(server)
  }

  /** Let new sessions use `server` again; false if it was not disabled. */
  enableServer(server: string): boolean {
    return this.#policies.enable(server)
  }

  /** Every service's servers: up, down (marked) or disabled, with failures and active sessions. */
  serverStates(): ServerState[] {
    return this.#policies.states()
  }

  /** The servers disabled now (`host:port`). */
  get disabledServers(): ReadonlySet<string> {
    return this.#policies.disabled
  }

  /** A mark another worker saw, from the supervisor (service: `interface:port`). */
  applyMark(service: string, t: Transition): void {
    this.#policies.apply(service, t)
  }

  readonly #listenerOps = {
    bind: async (key: string, spec: ListenSpec): Promise<void> => this.adopt(key, await bindListener(spec)),
    unbind: (key: string): Promise<void> => this.unlisten(key),
  }

  /**
   * Serve one accepted (or inherited) client connection; resolves when it is
   * over. The socket must be paused and half-open capable. `listener` is
   * the listener that accepted it (null: inetd's connection). Not an async
   * function: its frame would stay alive for as long as the connection.
   */
  handle(client: Socket, listener: ListenSpec | null = null): Promise<void> {
    if (client.remoteAddress === undefined || client.localAddress === undefined || this.#closing) {
      // Gone before we looked at it, or we are shutting down.
      this.#nextId += this.#workers
      client.destroy()
      return DONE
    }
    return this.#serve(client.localAddress, client.localPort as number, client.remoteAddress, client.remotePort as number, listener, client, null)
  }

  /**
   * A connection the relay thread accepted on `listener` (lib/relay/front.ts),
   * also while closing: accepted before the listener closed (a planned one
   * connected upstream already), it is served and logged as any other.
   */
  #accepted(a: Accepted, listener: ListenSpec): void {
    void this.#serve(a.local, a.localPort, a.peer, a.peerPort, listener, null, a)
  }

  /**
   * Serve a connection: its service, the limits, its session. Either Node
   * accepted it (`client`) or the relay thread did (`accepted`); a plain
   * service's DirectSession serves the thread's without Node's sockets.
   * No closures or promises per connection where a field does: their
   * allocation was the event loop's largest cost (bench/RESULTS.md "Profile").
   */
  #serve(localIp: string, localPort: number, peer: string, clientPort: number, listener: ListenSpec | null, client: Socket | null, accepted: Accepted | null): Promise<void> {
    const id = (this.#nextId += this.#workers)
    const local = canonicalIp(localIp)
    const clientIp = canonicalIp(peer)
    // The plan the thread connected it by names its service (a reload since
    // changes nothing for it). A TPROXY'd connection's local address is where
    // the client meant to go, not ours: the listener it came through picks.
    const plan = accepted?.plan as ServicePlan | null | undefined
    const service = plan != null ? plan.service : listener?.transparent === true ? this.#select(listener.address ?? local, listener.port) : this.#select(local, localPort)
    const fields = (): Fields => connectionFields(connectionFacts(service ?? formatHostPort(local, localPort), this.#programs.pid, clientIp, clientPort))
    this.#log.log(connectionLine('+INFO', 'connected', id, `connected on ${formatHostPort(local, localPort)}, client= ${formatHostPort(clientIp, clientPort)}`, fields))
    if (service === undefined) {
      this.#log.log(connectionLine('-ERR', 'no-service', id, `no configuration found for interface ${formatHostPort(local, localPort)}, client= ${clientIp}`, fields))
      return this.#refused(client, accepted, formatHostPort(local, localPort), 'no-service')
    }
    const key = serviceKey(service)
    const inService = this.#perService.get(service) ?? 0
    // A planned connection was accepted when no limit applied (lib/server/plan.ts).
    const limit = plan != null ? null : this.#overLimit(service, inService)
    if (limit !== null) {
      this.#log.log(connectionLine('-ERR', 'limit', id, `too many connections (max-connections ${limit}), client= ${clientIp}`, fields))
      return this.#refused(client, accepted, key, 'max-connections')
    }
    const direct = plan != null || (accepted !== null && isDirect(service, clientIp))
    const sock = direct ? null : (client ?? (this.#front as ThreadFront).take(accepted as Accepted))
    const ticket = (plan?.policy ?? this.#policies.of(service)).ticket(id, localPort)
    this.counters.accepted(key)
    const state = service.acp !== null ? 'acp' : service.exec !== null ? 'handler' : 'relaying'
    const live = new LiveSession(this.counters, { id, service: key, client: clientIp, clientPort, startedMs: performance.now(), state })
    const basics: SessionBasics = { id, service, local, localPort, clientIp, clientPort, log: this.#log, programs: this.#programs, onResourceError: this.#onResourceError, policy: ticket, observer: live }
    this.#live.set(id, live)
    this.#perService.set(service, inService + 1)
    if (direct) {
      const session = new DirectSession(basics, (accepted as Accepted).id, this.#front as ThreadFront, plan)
      live.session = session
      session.start(() => this.#ended(ticket, service, live))
      return DONE
    }
    const session = new Session({ ...basics, client: sock as Socket, slots: this.#slots, listener, redirects: this.#redirects })
    live.session = session
    return session.run().finally(() => this.#ended(ticket, service, live))
  }

  /** The max-connections a new session of `service` (`inService` open) would exceed, as the log line says it; null: none. */
  #overLimit(service: ResolvedService, inService: number): string | null {
    const all = workerShare(this.#maxConnections, this.#workers)
    const per = workerShare(service.maxConnections, this.#workers)
    if (all !== null && this.#live.size >= all) return limitText(`${this.#maxConnections} in all`, all, this.#workers)
    if (per !== null && inService >= per) return limitText(`${service.maxConnections} for ${service.ifaceText}:${service.port}`, per, this.#workers)
    return null
  }

  /** A connection refused before any session: counted as accepted, denied and closed. */
  #refused(client: Socket | null, accepted: Accepted | null, key: string, reason: string): Promise<void> {
    if (accepted !== null) (this.#front as ThreadFront).refuse(accepted.id)
    else (client as Socket).destroy()
    this.counters.accepted(key)
    this.counters.denied(key, reason)
    this.counters.closed(key, 0)
    return DONE
  }

  #ended(ticket: Ticket, service: ResolvedService, live: LiveSession): void {
    ticket.release()
    this.#live.delete(live.start.id)
    this.counters.closed(live.start.service, (performance.now() - live.start.startedMs) / 1000)
    const left = (this.#perService.get(service) as number) - 1
    if (left === 0) this.#perService.delete(service)
    else this.#perService.set(service, left)
    if (this.#live.size === 0) this.#drained?.()
  }

  /**
   * Out of file descriptors (EMFILE/ENFILE), in accept() or in an upstream
   * connect. libuv sheds connections it cannot accept (it keeps a spare
   * descriptor for that) and a failed connect closes its client, so the
   * daemon keeps serving; the log gets one line per episode, not one per
   * refused connection. Also the listeners' 'error' handler.
   */
  readonly #onResourceError = (err: Error): void => {
    this.#resourceErrors.report(more => {
      this.#log.log({ tag: '-ERR', event: 'resource-error', text: `${errorText(err)}: new connections are refused${more}` })
    })
  }

  /** `show sessions`: this process's open sessions at `nowMs` (performance.now()). */
  sessionRows(nowMs: number): SessionRow[] {
    return [...this.#live.values()].map(l => l.row(nowMs))
  }

  /** `kill session ID`: false when no open session has that id. */
  killSession(id: number): boolean {
    const live = this.#live.get(id)
    live?.kill()
    return live !== undefined
  }

  /**
   * Stop accepting at once; let open sessions finish for up to `graceMs`,
   * then cut the rest. Resolves when every session has ended.
   */
  async close(graceMs: number): Promise<void> {
    this.#closing = true
    this.#policies.stop()
    const listeners = this.#listeners.closeAll()
    // The relay thread's last reports: connections it accepted before it stopped.
    await listeners.reported
    // No session starts any more (handle() refuses): these are all there will be.
    const allEnded = this.#live.size === 0 ? DONE : new Promise<void>(resolve => (this.#drained = resolve))
    let timer: NodeJS.Timeout | undefined
    const graceOver = new Promise<void>(resolve => (timer = setTimeout(resolve, graceMs)))
    await Promise.race([allEnded, graceOver])
    clearTimeout(timer)
    for (const live of this.#live.values()) live.abort()
    await allEnded
    await listeners.closed
  }
}
