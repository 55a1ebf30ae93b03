/**
 * The forwarder: listeners, per-connection service selection, upstream
 * connect with failover, the relay, and the original's log lines. One event
 * loop serves every connection; nothing here reads `process.*`.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { canonicalIp, formatHostPort, type ListenSpec } from './address.js'
import { TcpproxyError, errorText } from './errors.js'
import type { Logger } from './log.js'
import { relay, type RelayHandle, type RelayResult } from './relay.js'
import type { ResolvedService } from './resolve.js'
import { buildSelector, planListeners } from './select.js'
import { connectFirst } from './upstream.js'

export interface ProxyOptions {
  logger: Logger
}

/** A session in progress, kept so shutdown can drain or cut it. */
interface Session {
  client: Socket
  relay: RelayHandle | null
}

const wildcardHosts = ['::', '0.0.0.0']

/** Bind one listener; the wildcard is `::` (dual stack), or 0.0.0.0 where IPv6 is off. */
async function bind(server: Server, spec: ListenSpec): Promise<void> {
  const hosts = spec.address === null ? wildcardHosts : [spec.address]
  for (let i = 0; ; i++) {
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen({ host: hosts[i], port: spec.port, backlog: 511 }, () => {
          server.off('error', reject)
          resolve()
        })
      })
      return
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      // Only a machine without IPv6 makes the dual-stack wildcard fail this way.
      /* c8 ignore next */
      if (i + 1 < hosts.length && (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL')) continue
      const where = spec.address === null ? `*:${spec.port}` : formatHostPort(spec.address, spec.port)
      throw new TcpproxyError('ERR_BIND', `cannot bind ${where}: ${code ?? errorText(err)}`, { cause: err })
    }
  }
}

export class Proxy {
  readonly #log: Logger
  readonly #select: (address: string, port: number) => ResolvedService | undefined
  readonly #specs: ListenSpec[]
  readonly #servers: Server[] = []
  readonly #sessions = new Set<Session>()
  #nextId = 0
  #closing = false

  constructor(services: readonly ResolvedService[], options: ProxyOptions) {
    this.#log = options.logger
    this.#select = buildSelector(services)
    this.#specs = planListeners(services)
  }

  /** Number of sessions open now. */
  get sessions(): number {
    return this.#sessions.size
  }

  /** Bind every listener; on any failure the ones already bound are closed and ERR_BIND thrown. */
  async listen(): Promise<void> {
    for (const spec of this.#specs) {
      const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, s => this.handle(s))
      try {
        await bind(server, spec)
      } catch (err) {
        await this.#closeListeners()
        throw err
      }
      server.on('error', err => this.#log.log({ tag: '-ERR', event: 'accept-error', text: `accept error: ${errorText(err)}` }))
      this.#servers.push(server)
      const a = server.address() as { address: string; port: number }
      this.#log.log({ tag: '', event: 'bound', text: `bound to ${formatHostPort(a.address, a.port)}` })
    }
    this.#log.log({ tag: '', event: 'ready', text: 'ready' })
  }

  /** Serve one accepted (or inherited) client connection. The socket must be paused and half-open capable. */
  handle(client: Socket): void {
    const id = ++this.#nextId
    const log = this.#log
    if (client.remoteAddress === undefined || client.localAddress === undefined || this.#closing) {
      // Gone before we looked at it, or we are shutting down.
      client.destroy()
      return
    }
    const local = canonicalIp(client.localAddress)
    const localPort = client.localPort as number
    const clientIp = canonicalIp(client.remoteAddress)
    const started = performance.now()
    log.log({
      tag: '+INFO',
      event: 'connected',
      id,
      text: `connected on ${formatHostPort(local, localPort)}, client= ${formatHostPort(clientIp, client.remotePort as number)}`,
    })
    const service = this.#select(local, localPort)
    if (service === undefined) {
      log.log({
        tag: '-ERR',
        event: 'no-service',
        id,
        text: `no configuration found for interface ${formatHostPort(local, localPort)}, client= ${clientIp}`,
      })
      client.destroy()
      return
    }
    const session: Session = { client, relay: null }
    this.#sessions.add(session)
    // Errors before the relay owns the socket (e.g. a reset while connecting).
    const early = (): void => {}
    client.on('error', early)

    const servers = service.servers as NonNullable<ResolvedService['servers']>
    connectFirst(servers, localPort, service.connectTimeout * 1000, f =>
      log.log({
        tag: '-INFO',
        event: 'connect-failed',
        id,
        text: `can't connect to server ${formatHostPort(f.host, f.port)}, error= ${errorText(f.error)}`,
      }),
    ).then(
      up => {
        client.off('error', early)
        const serverText = formatHostPort(up.host, up.port)
        if (client.destroyed || this.#closing) {
          up.socket.destroy()
          client.destroy()
          this.#sessions.delete(session)
          return
        }
        log.log({
          tag: '+INFO',
          event: 'connect',
          id,
          text: `connect: client= ${clientIp}, server= ${serverText}, timeout= ${service.timeout}`,
        })
        session.relay = relay(client, up.socket, service.timeout * 1000, r => {
          this.#sessions.delete(session)
          this.#logEnd(id, clientIp, serverText, started, r)
        })
      },
      (f: { host: string; port: number; error: Error }) => {
        client.off('error', early)
        this.#sessions.delete(session)
        log.log({
          tag: '-ERR',
          event: 'connection-error',
          id,
          text: `connection error: client= ${clientIp}, server= ${formatHostPort(f.host, f.port)}, error= ${errorText(f.error)}`,
        })
        client.destroy()
      },
    )
  }

  #logEnd(id: number, clientIp: string, serverText: string, started: number, r: RelayResult): void {
    const log = this.#log
    if (r.closedBy === 'timeout') {
      log.log({ tag: '-ERR', event: 'timeout', id, text: `connection timed out: client= ${clientIp}, server= ${serverText}` })
    } else if (r.error !== null) {
      const side = r.closedBy === 'client-error' ? 'client' : 'server'
      log.log({ tag: '-INFO', event: 'socket-error', id, text: `${side} close() detected, error= ${errorText(r.error)}` })
    }
    const duration = ((performance.now() - started) / 1000).toFixed(3)
    log.log({
      tag: '+OK',
      event: 'disconnect',
      id,
      text:
        `disconnect: client= ${clientIp}, server= ${serverText}, received= ${r.received}, send= ${r.sent}, ` +
        `duration= ${duration}, closed-by= ${r.closedBy}`,
    })
  }

  #closeListeners(): Promise<void> {
    const servers = this.#servers.splice(0)
    return Promise.all(servers.map(s => new Promise<void>(resolve => s.close(() => resolve())))).then(() => {})
  }

  /**
   * Stop accepting at once; let open sessions finish for up to `graceMs`,
   * then cut the rest. Resolves when every session has ended.
   */
  async close(graceMs: number): Promise<void> {
    this.#closing = true
    const listeners = this.#closeListeners()
    const deadline = Date.now() + graceMs
    while (this.#sessions.size > 0 && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, Math.min(50, Math.max(1, deadline - Date.now()))))
    }
    for (const s of this.#sessions) {
      if (s.relay !== null) s.relay.abort()
      else s.client.destroy()
    }
    while (this.#sessions.size > 0) await new Promise(resolve => setTimeout(resolve, 5))
    await listeners
  }
}
