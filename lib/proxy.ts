/**
 * The forwarder: listeners, per-connection service selection, upstream
 * connect with failover, the relay, and the original's log lines. One event
 * loop serves every connection; nothing here reads `process.*`.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { canonicalIp, formatHostPort, type ListenSpec } from './address.js'
import { TcpproxyError, errorCode, errorText } from './errors.js'
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

/** Listen on one address; rejects with the system error. */
function listenOn(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port, backlog: 511 }, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

/** Bind one listener; the wildcard is `::` (dual stack), or 0.0.0.0 where IPv6 is off. */
async function bind(server: Server, spec: ListenSpec): Promise<void> {
  const hosts = spec.address === null ? ['::', '0.0.0.0'] : [spec.address]
  let code = ''
  for (const host of hosts) {
    try {
      return await listenOn(server, host, spec.port)
    } catch (err) {
      code = errorCode(err)
      // Only a machine without IPv6 makes the dual-stack wildcard fail this way.
      /* c8 ignore next */
      if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') break
    }
  }
  const where = spec.address === null ? `*:${spec.port}` : formatHostPort(spec.address, spec.port)
  throw new TcpproxyError('ERR_BIND', `cannot bind ${where}: ${code}`)
}

/** Running out of descriptors is logged at most this often, not once per refused connection. */
const RESOURCE_ERROR_LOG_MS = 10_000
const OUT_OF_DESCRIPTORS = new Set(['EMFILE', 'ENFILE'])

export class Proxy {
  readonly #log: Logger
  readonly #select: (address: string, port: number) => ResolvedService | undefined
  readonly #specs: ListenSpec[]
  readonly #servers: Server[] = []
  readonly #sessions = new Set<Session>()
  #nextId = 0
  #closing = false
  #resourceErrorLogged = -Infinity
  #resourceErrorsSuppressed = 0

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
      server.on('error', this.#onResourceError)
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
    // Until the relay takes it over the client socket is paused and written
    // to by no one, so it cannot emit 'error' meanwhile.
    const servers = service.servers as NonNullable<ResolvedService['servers']>
    connectFirst(servers, localPort, service.connectTimeout * 1000, f => {
      if (OUT_OF_DESCRIPTORS.has(errorCode(f.error))) return
      log.log({
        tag: '-INFO',
        event: 'connect-failed',
        id,
        text: `can't connect to server ${formatHostPort(f.host, f.port)}, error= ${errorText(f.error)}`,
      })
    }).then(
      up => {
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
        this.#sessions.delete(session)
        client.destroy()
        if (OUT_OF_DESCRIPTORS.has(errorCode(f.error))) return this.#onResourceError(f.error)
        log.log({
          tag: '-ERR',
          event: 'connection-error',
          id,
          text: `connection error: client= ${clientIp}, server= ${formatHostPort(f.host, f.port)}, error= ${errorText(f.error)}`,
        })
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

  /**
   * Out of file descriptors (EMFILE/ENFILE), in accept() or in an upstream
   * connect. libuv sheds connections it cannot accept (it keeps a spare
   * descriptor for that) and a failed connect closes its client, so the
   * daemon keeps serving; the log gets one line per episode, not one per
   * refused connection. Also the listeners' 'error' handler.
   */
  readonly #onResourceError = (err: Error): void => {
    const now = performance.now()
    if (now - this.#resourceErrorLogged < RESOURCE_ERROR_LOG_MS) {
      this.#resourceErrorsSuppressed++
      return
    }
    const more = this.#resourceErrorsSuppressed > 0 ? ` (${this.#resourceErrorsSuppressed} more since the last report)` : ''
    this.#resourceErrorLogged = now
    this.#resourceErrorsSuppressed = 0
    this.#log.log({ tag: '-ERR', event: 'resource-error', text: `${errorText(err)}: new connections are refused${more}` })
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
