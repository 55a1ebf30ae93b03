/**
 * A session the relay thread serves from accept to close (lib/relay/front.ts):
 * a plain forwarded service, nothing in it needing Node's sockets. What it
 * decides and logs is session.ts's for the same service: the client checked
 * against the service's policy, the servers tried in the policy's order
 * (each failure logged before the next, each attempt told to the health
 * marks), the connect line, and the end lines with the byte counts. Only
 * the mechanics are the thread's.
 */
import { isIP } from 'node:net'
import { formatHostPort, type Endpoint } from '../config/address.js'
import type { ResolvedService } from '../config/resolve.js'
import { isOutOfDescriptors } from '../errors.js'
import type { AttemptEnd, ConnectRequest, Plan, ThreadFront } from '../relay/front.js'
import type { RelayResult } from '../relay/event-loop.js'
import { connectFailedLine, connectionErrorLine, connectLine } from './connect-lines.js'
import type { SessionBasics } from './context.js'
import { endLines, type EndLine } from './end-lines.js'
import { connectionFacts, connectionLine } from './log-fields.js'
import { outgoingHeader } from './outgoing-header.js'

/**
 * Whether a connection of `service` from `clientIp` can be served by the
 * thread: no program, no PROXY header to read, no dump, no redirect mode,
 * no chosen source address, and servers given as addresses (a host name is
 * resolved per attempt by Node's resolver: lib/server/upstream.ts) without
 * a zone (`fe80::1%eth0`: libuv maps the zone to a scope id; the thread
 * takes plain addresses only).
 */
export function isDirect(service: ResolvedService, clientIp: string): boolean {
  return directService(service) && service.trustsProxy?.(clientIp) !== true
}

/** What isDirect asks of the service alone, worked out once per service (a reload makes new ones). */
const DIRECT = new WeakMap<ResolvedService, boolean>()

function directService(service: ResolvedService): boolean {
  let direct = DIRECT.get(service)
  if (direct === undefined) {
    direct =
      service.acp === null &&
      service.exec === null &&
      service.writefile === null &&
      service.redirectMode === 'none' &&
      !service.forgeAddr &&
      service.sourceAddress === null &&
      (service.servers ?? []).every(ep => isIP(ep.host) !== 0 && !ep.host.includes('%'))
    DIRECT.set(service, direct)
  }
  return direct
}

/**
 * Whether every connection of `service` can be served by the thread, so
 * that the thread may accept on its port (lib/server/listening.ts): no
 * PROXY header from anybody either.
 */
export function isPlain(service: ResolvedService): boolean {
  return service.trustsProxy === null && isDirect(service, '')
}

/**
 * The attempt to `ep` for a connection of `service` on `localPort` (a
 * server without a port: the same port), `first` sent before the client's
 * bytes. The server's host is an address (isDirect).
 */
export function connectRequest(service: ResolvedService, ep: Endpoint, localPort: number, first: Buffer | null): ConnectRequest {
  return {
    address: ep.host,
    // An address (isDirect): IPv6 has colons, IPv4 never.
    family: ep.host.includes(':') ? 6 : 4,
    port: ep.port ?? localPort,
    timeoutMs: service.timeouts.connectMs,
    idleMs: service.timeouts.idleMs,
    keepalive: service.keepalive,
    first,
  }
}

export class DirectSession {
  readonly #s: SessionBasics
  /** The thread's number for the connection. */
  readonly #conn: number
  readonly #front: ThreadFront
  readonly #started = performance.now()
  #servers: readonly Endpoint[] = []
  #next = 0
  /** The server connected to (`host:port`): the relay runs. */
  #server: string | null = null
  #aborted = false
  #header: Buffer | null = null
  /** Called once at the end; cleared then (after a failed last attempt the thread's end report still comes). */
  #done: (() => void) | null = null
  /** The plan the thread connected by (lib/server/plan.ts): the first attempt is under way. */
  #planned: Plan | null

  constructor(basics: SessionBasics, conn: number, front: ThreadFront, planned: Plan | null = null) {
    this.#s = basics
    this.#conn = conn
    this.#front = front
    this.#planned = planned
  }

  /** End the session now (shutdown after the grace period, `kill session`). */
  abort(): void {
    this.#aborted = true
    this.#front.abort(this.#conn)
  }

  #line(l: EndLine): void {
    const s = this.#s
    s.log.log(connectionLine(l.tag, l.event, s.id, l.text, () => l.fields(connectionFacts(s.service, s.programs.pid, s.clientIp, s.clientPort))))
  }

  /** Serve the connection; `done` is called once, when it is over. */
  start(done: () => void): void {
    const s = this.#s
    if (!s.policy.admit(s.clientIp, s.clientPort, this.#planned !== null)) {
      this.#front.refuse(this.#conn)
      return done()
    }
    this.#servers = s.policy.order(s.service.servers as Endpoint[])
    this.#header = outgoingHeader(s.service.sendProxy, { address: s.clientIp, port: s.clientPort }, { address: s.local, port: s.localPort })
    this.#done = done
    this.#front.onEnd(this.#conn, r => this.#ended(r))
    this.#attempt()
  }

  #attempt(): void {
    const s = this.#s
    const ep = this.#servers[this.#next++] as Endpoint
    const planned = this.#planned
    this.#planned = null
    // The plan's attempt is this one (one server, no header: lib/server/plan.ts).
    if (planned !== null) return this.#front.adopt(this.#conn, planned, a => this.#attempted(planned.request.address, planned.request.port, a))
    const request = connectRequest(s.service, ep, s.localPort, this.#header)
    this.#front.connect(this.#conn, request, a => this.#attempted(ep.host, request.port, a))
  }

  #attempted(host: string, port: number, a: AttemptEnd): void {
    const s = this.#s
    const server = formatHostPort(host, port)
    s.policy.attempted(a.ok ? { ok: true, host, port } : { ok: false, host, port, error: a.error })
    // Aborted meanwhile: the end comes, and says nothing (as session.ts).
    if (this.#aborted) return
    if (a.ok) {
      this.#server = server
      this.#line(connectLine(s.clientIp, server, s.service.timeout))
      s.observer.relaying(server, a.relay, s.clientIp, s.clientPort)
      return
    }
    s.observer.connectFailed(server)
    const outOfDescriptors = isOutOfDescriptors(a.error)
    // Out of descriptors: the forwarder's rate-limited line tells it, at the end.
    if (!outOfDescriptors) this.#line(connectFailedLine(server, a.error))
    if (this.#next < this.#servers.length) return this.#attempt()
    // Every attempt failed: the session is over; the thread's end report is not waited for.
    this.#aborted = true
    this.#front.refuse(this.#conn)
    if (outOfDescriptors) {
      s.observer.denied('resources')
      s.onResourceError(a.error)
    }
    else this.#line(connectionErrorLine(s.clientIp, server, a.error))
    this.#finish()
  }

  #finish(): void {
    const done = this.#done
    this.#done = null
    done?.()
  }

  #ended(r: RelayResult): void {
    const s = this.#s
    if (this.#server !== null) {
      const ended = s.observer.ended({ ...r, sent: r.sent - (this.#header?.length ?? 0) })
      for (const l of endLines(ended, s.clientIp, this.#server, (performance.now() - this.#started) / 1000)) this.#line(l)
    }
    this.#finish()
  }
}
