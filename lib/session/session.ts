/**
 * One client connection after its service is chosen: the access control
 * program, then either the handler program or the upstream connect and the
 * relay, with the original's log lines. A session never throws: whatever
 * happens ends in its log lines and a closed client.
 */
import type { Socket } from 'node:net'
import { canonicalIp, formatHostPort, type Endpoint, type ListenSpec } from '../config/address.js'
import { startDump, type SessionDump } from './dump.js'
import { ClientNames, connectionEnv } from './environment.js'
import { errorText, isOutOfDescriptors } from '../errors.js'
import type { LogEntry } from '../log/logger.js'
import { runAcp, runHandler } from './programs.js'
import type { ProgramSlots, SessionBasics } from './context.js'
import { readProxyHeader } from '../protocol/header-reader.js'
import type { ProxyHeader } from '../protocol/header.js'
import { outgoingHeader } from './outgoing-header.js'
import type { RelayHandle, RelayResult } from '../relay/event-loop.js'
import { startRelay } from '../relay/thread.js'
import type { Redirects } from '../transparent/redirect.js'
import type { Destination } from '../native/addon.js'
import { connectAttempts, sourceFor, type Connected, type FailedAttempt } from '../server/upstream.js'
import { isOwnLogLine } from '../log/nested.js'
import { setKeepalive } from './keepalive.js'
import { connectionFields, type ConnectionFacts, type Fields } from '../log/fields.js'
import { connectionFacts, connectionLine } from './log-fields.js'
import { endLines, type EndLine } from './end-lines.js'
import { connectFailedLine, connectionErrorLine, connectLine } from './connect-lines.js'

/** Bound on the reverse lookup for PROXY_CLIENTNAME, so a slow DNS cannot stall connections. */
const NAME_TIMEOUT_MS = 2000

/** The process's lookups (the thread pool they bound is the process's). */
const SYSTEM_NAMES = new ClientNames()

export interface SessionInit extends SessionBasics {
  client: Socket
  /** The bound on programs running at once. */
  slots: ProgramSlots
  /** The listener that accepted the connection; null for inetd's. */
  listener: ListenSpec | null
  redirects: Redirects
}

export class Session {
  readonly #s: Omit<SessionInit, 'client'>
  /**
   * The client's socket while Node holds it; null once the relay thread
   * has taken the connection, so an idle session does not keep a closed
   * Socket object alive (memory per connection).
   */
  #client: Socket | null
  readonly #started = performance.now()
  /** How abort() ends the session: the running relay, or the handler's kill; neither: close the client. */
  #relay: RelayHandle | null = null
  #kill: (() => void) | null = null
  /** The client as the session reports it: the socket's peer, or the one a PROXY header names. */
  #clientIp: string
  #clientPort: number
  /** Set when a PROXY header was accepted. */
  #proxied: { peer: string; header: ProxyHeader; rest: Buffer } | null = null
  /** Where the client meant to connect, when a firewall rule redirected it here (redirect-mode). */
  #origdst: Destination | null = null
  /** Set by abort(): nothing new may start (a program, a connect). */
  #aborted = false
  /** Stops a running ACP when the session is aborted. */
  readonly #cancel = new AbortController()
  /** A client socket error not reported yet (a reset while a program ran, an ACP's output that met a reset). */
  #clientError: Error | null = null

  constructor(init: SessionInit) {
    const { client, ...rest } = init
    this.#s = rest
    this.#client = client
    this.#clientIp = init.clientIp
    this.#clientPort = init.clientPort
    // From accept to close the session owns an error path on the client
    // socket: Node reads ahead (after a PROXY header) and the ACP writes to
    // it long before a relay or a handler takes it over.
    client.on('error', err => (this.#clientError ??= err))
  }

  /** End the session now (shutdown after the grace period). */
  abort(): void {
    this.#aborted = true
    this.#cancel.abort()
    if (this.#relay !== null) this.#relay.abort()
    else if (this.#kill !== null) this.#kill()
    else this.#socket.destroy()
  }

  /** The client's socket, before any hand-over to the relay thread. */
  get #socket(): Socket {
    return this.#client as Socket
  }

  /** One line of this session; `more`: its JSON fields beyond who (lib/log/fields.ts). */
  #log(tag: LogEntry['tag'], event: string, text: string, more: (c: ConnectionFacts) => Fields = connectionFields): void {
    const s = this.#s
    s.log.log(connectionLine(tag, event, s.id, text, () => more(connectionFacts(s.service, s.programs.pid, this.#clientIp, this.#clientPort))))
  }

  #line(l: EndLine): void {
    this.#log(l.tag, l.event, l.text, l.fields)
  }

  /** Serve the connection; resolves when it is over. */
  async run(): Promise<void> {
    const { service } = this.#s
    if (service.redirectMode !== 'none' && !(await this.#redirect())) return
    if (service.trustsProxy?.(this.#s.clientIp) === true && !(await this.#readProxyHeader())) return
    // The real client (a PROXY header's) is checked, before any program or connect.
    if (!this.#s.policy.admit(this.#clientIp, this.#clientPort)) return void this.#socket.destroy()
    const needsEnv = service.acp !== null || service.exec !== null
    const env = needsEnv ? await this.#environment() : null
    if (this.#gone()) return
    if (service.acp !== null && !(await this.#access(service.acp, env as Record<string, string>))) return
    if (service.exec !== null) return this.#handler(service.exec, env as Record<string, string>)
    return this.#proxy()
  }

  /**
   * Whether the session is over before its relay or handler began: aborted
   * (shutdown), or the client is gone. A client error is logged here, once.
   */
  #gone(): boolean {
    if (!this.#aborted && !this.#socket.destroyed) return false
    if (this.#clientError !== null) {
      this.#log('-INFO', 'socket-error', `client close() detected, error= ${errorText(this.#clientError)}`)
      this.#clientError = null
    }
    this.#socket.destroy()
    return true
  }

  /** Too many programs running: refuse (the forwarder logs it). Returns whether one may start. */
  #takeSlot(): boolean {
    if (this.#s.slots.take(this.#clientIp, this.#s.service)) return true
    this.#socket.destroy()
    return false
  }

  /** A program that could not start for want of descriptors: one rate-limited line (the forwarder's), not one per connection. */
  #outOfDescriptors(rc: string): boolean {
    const err = Object.assign(new Error(`can't start a program: ${rc}`), { code: rc })
    if (!isOutOfDescriptors(err)) return false
    this.#socket.destroy()
    this.#s.observer.denied('resources')
    this.#s.onResourceError(err)
    return true
  }

  /**
   * A trusted peer must start with a PROXY header (v1 or v2), complete
   * within proxy-timeout; anything else closes the connection (the spec:
   * never guess, abort on any deviation). Returns whether to go on.
   */
  async #readProxyHeader(): Promise<boolean> {
    const s = this.#s
    const peer = formatHostPort(s.clientIp, s.clientPort)
    let got
    try {
      got = await readProxyHeader(this.#socket, s.service.timeouts.proxyHeaderMs)
    } catch (err) {
      this.#log('-ERR', 'proxy-header-error', `bad PROXY header from ${peer}: ${errorText(err)}`)
      s.observer.denied('proxy-header')
      // That line names the error; the session's own listener saw it too.
      this.#clientError = null
      this.#socket.destroy()
      return false
    }
    const { header } = got
    this.#proxied = { peer: s.clientIp, ...got }
    const a = header.addresses
    if (a !== null) {
      this.#clientIp = canonicalIp(a.sourceAddress)
      this.#clientPort = a.sourcePort
    }
    const what = a === null ? `${header.command === 'LOCAL' ? 'LOCAL' : 'UNKNOWN'}, the connection's own addresses apply` : `client= ${formatHostPort(this.#clientIp, this.#clientPort)}, destination= ${formatHostPort(canonicalIp(a.destinationAddress), a.destinationPort)}`
    this.#log('+INFO', 'proxy-header', `PROXY v${header.version} from ${peer}: ${what}`)
    return true
  }

  /**
   * redirect-mode: learn the original destination and log it; refuse a
   * connection that was not redirected (forward-only) or whose forwarding
   * would come back here. Returns whether to go on.
   */
  async #redirect(): Promise<boolean> {
    const s = this.#s
    const mode = s.service.redirectMode
    const refuse = (event: string, text: string): false => {
      this.#log('-ERR', event, text)
      s.observer.denied('redirect')
      this.#socket.destroy()
      return false
    }
    let dest: Destination | null
    try {
      dest = s.redirects.find(this.#socket, s.listener)
    } catch (err) {
      return refuse('redirect-error', `can't read the original destination, client= ${s.clientIp}: ${errorText(err)}`)
    }
    if (dest === null) return mode === 'forward-only' ? refuse('not-redirected', `connection not redirected, client= ${s.clientIp}`) : true
    const where = formatHostPort(dest.address, dest.port)
    if (mode !== 'accept') {
      // Our own forwarded connection may be the one coming back: let the
      // poll that reported it connected run its callbacks first.
      if (s.redirects.tracking) await new Promise(resolve => setImmediate(resolve))
      const loop = s.redirects.loop(dest, s.clientIp, s.clientPort)
      if (loop !== null) return refuse('redirect-loop', `redirect loop refused: origdst: ${where}, client= ${s.clientIp}: ${loop}`)
    }
    this.#origdst = dest
    this.#log('+INFO', 'redirected', `connection redirected, origdst: ${where}`)
    return true
  }

  async #environment(): Promise<Record<string, string>> {
    const s = this.#s
    const p = s.programs
    const ip = this.#clientIp
    const name = p.resolveNames ? await (p.names ?? SYSTEM_NAMES).name(ip, NAME_TIMEOUT_MS) : ip
    const a = this.#proxied?.header.addresses
    return {
      ...p.baseEnv,
      ...connectionEnv(p.envPrefix, {
        client: ip,
        clientName: name,
        clientPort: this.#clientPort,
        iface: s.local,
        port: s.localPort,
        config: `${s.service.ifaceText}:${s.service.port}`,
        pid: p.pid,
        proxyName: p.proxyName,
        logName: p.logName,
        started: Math.floor(Date.now() / 1000),
        ...(this.#proxied === null ? {} : { peer: this.#proxied.peer }),
        ...(a ? { destination: { address: canonicalIp(a.destinationAddress), port: a.destinationPort } } : {}),
        ...(this.#origdst === null ? {} : { origdst: { address: this.#origdst.address, port: this.#origdst.port } }),
      }),
    }
  }

  /** Run the ACP; its stdout goes to the client. Returns whether access is granted (and the session goes on). */
  async #access(acp: string[], env: Record<string, string>): Promise<boolean> {
    const s = this.#s
    if (!this.#takeSlot()) return false
    const r = await runAcp(acp, env, s.service.timeouts.acpMs, s.programs.runAs, this.#cancel.signal)
    s.slots.release()
    if (this.#gone() || this.#outOfDescriptors(r.rc)) return false
    if (r.output.length > 0) {
      // The ACP speaks to the client (a refusal banner, a greeting) before anything else does.
      await new Promise<void>(resolve => this.#socket.write(r.output, () => resolve()))
      if (this.#gone()) return false
    }
    const text = `client= ${this.#clientIp}, rc= ${r.rc}, message= ${r.message}`
    if (r.granted) {
      if (s.log.debug) this.#log('+DEBUG', 'access-granted', `access granted: ${text}`)
      return true
    }
    this.#log('-ERR', 'access-denied', `access denied: ${text}`, c => connectionFields(c, { rc: r.rc }))
    s.observer.denied('acp')
    this.#socket.destroy()
    return false
  }

  async #handler(cmd: string[], env: Record<string, string>): Promise<void> {
    const s = this.#s
    const name = env[`${s.programs.envPrefix}CLIENTNAME`] as string
    this.#log('', 'starting', `starting \`${cmd.join(' ')}', client= ${name}`)
    const preread = this.#proxied === null ? null : this.#proxied.rest
    if (!this.#takeSlot()) return
    s.observer.handler(this.#clientIp, this.#clientPort)
    const stderr = (line: string): void =>
      // A tcpproxy the handler exec'd logs as itself (lib/log/nested.ts).
      isOwnLogLine(line, h.pid) && s.log.passThrough !== undefined ? s.log.passThrough(line) : this.#log('-INFO', 'handler-stderr', `handler: ${line}`)
    const h = runHandler(cmd, env, this.#socket, preread, stderr, s.programs.runAs)
    this.#kill = h.kill
    const r = await h.exited
    s.slots.release()
    if (!r.started) {
      if (!this.#outOfDescriptors(r.rc)) this.#log('-ERR', 'handler-error', `can't execute ${cmd[0]}, error= ${r.rc}`)
      return
    }
    const duration = ((performance.now() - this.#started) / 1000).toFixed(3)
    this.#log(r.rc === '0' ? '+OK' : '-ERR', 'handler-end', `handler end: client= ${this.#clientIp}, rc= ${r.rc}, duration= ${duration}`, c => connectionFields(c, { rc: r.rc, duration: Number(duration) }))
  }

  async #proxy(): Promise<void> {
    const s = this.#s
    const toOrigdst = this.#origdst !== null && s.service.redirectMode !== 'accept'
    const servers: readonly Endpoint[] = toOrigdst
      ? [{ host: (this.#origdst as Destination).address, port: (this.#origdst as Destination).port }]
      : s.policy.order(s.service.servers as Endpoint[])
    let up: Connected | null = null
    let failed: FailedAttempt | null = null
    for await (const a of connectAttempts(servers, s.localPort, s.service.timeouts.connectMs, sourceFor(s.service, this.#clientIp, this.#clientPort))) {
      if (!toOrigdst) s.policy.attempted(a)
      if (a.ok) up = a
      else this.#connectFailed((failed = a))
    }
    if (up === null) {
      // Every attempt failed (a service that proxies has at least one server).
      const f = failed as FailedAttempt
      this.#socket.destroy()
      if (isOutOfDescriptors(f.error)) {
        s.observer.denied('resources')
        return s.onResourceError(f.error)
      }
      return this.#line(connectionErrorLine(this.#clientIp, formatHostPort(f.host, f.port), f.error))
    }
    const serverText = formatHostPort(up.host, up.port)
    if (this.#gone()) {
      // Aborted (shutdown), or the client reset, while connecting.
      up.socket.destroy()
      return
    }
    // Tracked while the session lasts (the relay thread closes Node's socket early).
    const untrack = toOrigdst ? s.redirects.track(up.socket) : null
    this.#line(connectLine(this.#clientIp, serverText, s.service.timeout))
    const header = outgoingHeader(
      s.service.sendProxy,
      { address: this.#clientIp, port: this.#clientPort },
      this.#origdst ?? { address: s.local, port: s.localPort },
    )
    const first = header === null ? [] : [header]
    // Bytes that came after a PROXY header are the client's first data. They
    // are sent first, not unshift()ed: the client's EOF may already have
    // been seen, and a stream refuses unshift() after its 'end'.
    if (this.#proxied !== null && this.#proxied.rest.length > 0) first.push(this.#proxied.rest)
    const headerBytes = header?.length ?? 0
    const dump = s.service.writefile === null ? null : this.#startDump(s.service.writefile)
    setKeepalive([this.#socket, up.socket], s.service.keepalive)
    // Returned, not awaited: an idle connection holds no suspended async
    // frame, only the relay's callback.
    return new Promise<void>(resolve => {
      const done = (result: RelayResult): void => {
        untrack?.()
        const finish = (): void => {
          const ended = s.observer.ended({ ...result, sent: result.sent - headerBytes })
          for (const l of endLines(ended, this.#clientIp, serverText, (performance.now() - this.#started) / 1000)) this.#line(l)
          resolve()
        }
        // The dump is complete on disk before the disconnect line says the session is over.
        if (dump === null) finish()
        else void dump.close().then(finish)
      }
      const started = startRelay({
        client: this.#socket,
        server: up.socket,
        idleMs: s.service.timeouts.idleMs,
        first,
        done,
        tap: dump?.tap ?? null,
        thread: s.programs.relayThread === true,
      })
      this.#relay = started.handle
      s.observer.relaying(serverText, started.handle, this.#clientIp, this.#clientPort)
      // The relay thread took the connection: Node's socket is closed, drop it.
      if (started.by === 'thread') this.#client = null
    })
  }

  /** A failed connect attempt, logged before the next server is tried; out of descriptors: the forwarder's rate-limited line reports it at the end. */
  #connectFailed(f: FailedAttempt): void {
    this.#s.observer.connectFailed(formatHostPort(f.host, f.port))
    if (!isOutOfDescriptors(f.error)) this.#line(connectFailedLine(formatHostPort(f.host, f.port), f.error))
  }

  /** The `-w` dump (a failure to open it is logged, and the relay goes on without). */
  #startDump(base: string): SessionDump | null {
    return startDump(base, String(this.#s.id), (event, text) => this.#log('-INFO', event, text), this.#s.programs.dumpBacklog)
  }
}
