/**
 * The relay thread's front (lib/native/front.c): for services that need
 * nothing of Node's sockets, the thread accepts, connects upstream and
 * relays, and no connection becomes a `net.Socket` (bench/RESULTS.md,
 * "Profile": building Node's two sockets per connection, connecting and
 * handing them over was most of a short connection's cost).
 *
 * The thread decides nothing. Each accepted connection is reported here and
 * waits, unread, until its listener's handler answers: a connect attempt
 * to an address it chose (connect), the end (abort, refuse), or Node's
 * socket for the session to serve itself (take). Each attempt's end is reported back
 * before the next is asked for, so failover, its log lines and the health
 * marks stay in TypeScript (lib/session/direct.ts).
 */
import { Socket } from 'node:net'
import { getSystemErrorName } from 'node:util'
import type { NativeAddon } from '../native/addon.js'
import { connectTimedOut } from '../server/upstream.js'
import type { RelayHandle, RelayResult } from './event-loop.js'
import { onThreadEnd, relayThread, ThreadRelay } from './thread.js'

/** A connection the thread accepted, as its listener's handler hears of it. */
export interface Accepted {
  /** The thread's number for it (connect, abort, take). */
  id: number
  local: string
  localPort: number
  peer: string
  peerPort: number
  /** The thread's descriptor (take() makes it Node's). */
  fd: number
  /** The listener's plan the thread followed (its attempt is under way: adopt() it), or null. */
  plan: Plan | null
}

/**
 * A listener's plan (plan()): the connect attempt the thread starts for
 * every connection it accepts there, without waiting for the event loop.
 * The caller's object comes back with each connection accepted by it, so
 * that a connection accepted before a reload is served as the plan it was
 * connected by said.
 */
export interface Plan {
  readonly request: ConnectRequest
}

/** A listener: who hears of its connections, and its plans. */
class FrontListener {
  /** The plan in force (0: none) and the earlier ones that connections already accepted may name. */
  number = 0
  plan: Plan | null = null
  older: Map<number, Plan> | null = null
  /** Settles at the listener's last word, once unlisten() asked for it; `gone` settles it. */
  last: Promise<void> | null = null
  gone: (() => void) | null = null

  constructor(readonly handler: (a: Accepted) => void) {}

  /** Plan `n` of this listener (0: none). */
  named(n: number): Plan | null {
    if (n === 0) return null
    return n === this.number ? this.plan : ((this.older as Map<number, Plan>).get(n) as Plan)
  }

  /** The thread follows plan command `n` now: no connection reported after names one given before. */
  applied(n: number): void {
    if (this.older === null) return
    for (const k of this.older.keys()) if (k < n) this.older.delete(k)
    if (this.older.size === 0) this.older = null
  }
}

/** One connect attempt. */
export interface ConnectRequest {
  /** An IP address: the front connects to addresses only (a host name is Node's to resolve). */
  address: string
  family: 4 | 6
  port: number
  timeoutMs: number
  idleMs: number
  /** TCP keepalive on both sockets after this many idle seconds; 0: off. */
  keepalive: number
  /** Bytes for the server before the client's (a PROXY header), or null. */
  first: Buffer | null
}

/** How an attempt ended: connected, with the relay's handle, or the error as Node would have given it. */
export type AttemptEnd = { ok: true; relay: RelayHandle } | { ok: false; error: Error }

/** Live-count slots per array: 4,096 connections in 96 KiB. */
const SLOTS = 4096

/**
 * Where the thread keeps each connection's live counts (bytes each way,
 * the directions shut) for `show sessions`: three entries of an array
 * kept for the life of the process, taken at connect and given back when
 * the thread is done with them, instead of an array and a reference per
 * connection (a tenth of the event loop's work, in allocation and its
 * collection, bench/RESULTS.md "Profile").
 */
class LiveSlots {
  readonly #arrays: BigUint64Array[] = []
  readonly #free: number[] = []

  take(): number {
    if (this.#free.length === 0) {
      const base = this.#arrays.length * SLOTS
      this.#arrays.push(new BigUint64Array(3 * SLOTS))
      for (let i = SLOTS - 1; i >= 0; i--) this.#free.push(base + i)
    }
    return this.#free.pop() as number
  }

  array(n: number): BigUint64Array {
    return this.#arrays[Math.floor(n / SLOTS)] as BigUint64Array
  }

  /** Slot `n`'s first entry in array(n). */
  at(n: number): number {
    return (n % SLOTS) * 3
  }

  give(n: number): void {
    this.array(n).fill(0n, this.at(n), this.at(n) + 3)
    this.#free.push(n)
  }
}

/** The bytes Node moved before the thread took a connection it accepted itself: none. */
const NOTHING_BEFORE = Object.freeze({ sent: 0, received: 0 })

/** Node's error for a failed connect (`connect ECONNREFUSED 127.0.0.1:25`), from the thread's errno. */
function connectError(errno: number, address: string, port: number): Error {
  const code = getSystemErrorName(-errno)
  return Object.assign(new Error(`connect ${code} ${address}:${port}`), { code, errno: -errno, syscall: 'connect', address, port })
}

/**
 * One accepted connection the front serves: its attempt under way, its
 * live-count slot, its relay, and who hears of its end. One record per
 * connection (and the thread's entry in lib/relay/thread.ts), where four
 * maps and their closures were (their allocation and collection were a
 * fifth of the event loop's work, bench/RESULTS.md "Profile").
 */
class FrontConn {
  /** Its live-count slot while an attempt or a relay holds one; -1: none. */
  slot = -1
  /** The attempt under way, and who hears how it ended. */
  req: ConnectRequest | null = null
  attempted: ((a: AttemptEnd) => void) | null = null
  relay: ThreadRelay | null = null
  /** Who hears of the connection's end (onEnd). */
  ended: ((r: RelayResult) => void) | null = null
  /** Bytes Node moved before the thread (lib/relay/thread.ts Running): none, the thread accepted it. */
  readonly sent = 0
  readonly received = 0

  constructor(
    readonly id: number,
    readonly slots: LiveSlots,
    readonly conns: Map<number, FrontConn>,
  ) {}

  /** The thread is done with its live counts (an attempt failed, or the connection ended). */
  release(): void {
    if (this.slot < 0) return
    this.slots.give(this.slot)
    this.slot = -1
  }

  /** The thread's end report (lib/relay/thread.ts): the relay's counts are frozen, the record goes. */
  done(r: RelayResult): void {
    this.relay?.end(r)
    this.release()
    this.conns.delete(this.id)
    this.ended?.(r)
  }
}

export class ThreadFront {
  readonly #lib: NativeAddon
  /** Listeners' handlers, by the front's listener number. */
  readonly #listeners = new Map<number, FrontListener>()
  readonly #slots = new LiveSlots()
  /** Connections with an attempt under way, a relay, or someone to hear of their end. */
  readonly #conns = new Map<number, FrontConn>()
  #lastListener = 0
  #lastPlan = 0

  constructor(lib: NativeAddon) {
    this.#lib = lib
    lib.relayFront(
      (id, listener, local, localPort, peer, peerPort, fd, plan) => {
        const l = this.#listeners.get(listener) as FrontListener
        // The listener's last word, after every connection it accepted.
        if (id === 0) {
          this.#listeners.delete(listener)
          return l.gone?.()
        }
        // A plan command in force (relayPlan).
        if (id === -1) return l.applied(plan)
        l.handler({ id, local, localPort, peer, peerPort, fd, plan: l.named(plan) })
      },
      (id, errno, timedOut) => {
        const c = this.#conns.get(id)
        const req = c?.req
        // Aborted while its report was on the way: the end follows, and tells.
        if (c === undefined || req === undefined || req === null) return
        const attempted = c.attempted as (a: AttemptEnd) => void
        c.req = null
        c.attempted = null
        if (errno === 0) {
          c.relay = new ThreadRelay(lib, id, NOTHING_BEFORE, this.#slots.array(c.slot), this.#slots.at(c.slot))
          return attempted({ ok: true, relay: c.relay })
        }
        c.release()
        attempted({ ok: false, error: timedOut ? connectTimedOut(req.timeoutMs) : connectError(errno, req.address, req.port) })
      },
    )
  }

  /** Accept on (a duplicate of) `fd` in the thread; `handler` hears of each connection. Returns the listener's number. */
  listen(fd: number, handler: (a: Accepted) => void): number {
    const id = ++this.#lastListener
    this.#lib.relayListen(id, fd)
    this.#listeners.set(id, new FrontListener(handler))
    return id
  }

  /**
   * From now on the thread connects every connection listener `id`
   * accepts as `plan.request` says (no bytes first), at once; null: it
   * waits for connect() again. Connections accepted by a plan name it
   * (Accepted.plan), and adopt() takes their attempt.
   */
  plan(id: number, plan: Plan | null): void {
    const l = this.#listeners.get(id) as FrontListener
    if (plan === null && l.plan === null) return
    // Kept until the thread says it follows the new one: connections accepted meanwhile name it.
    if (l.plan !== null) (l.older ??= new Map()).set(l.number, l.plan)
    const n = ++this.#lastPlan
    l.number = plan === null ? 0 : n
    l.plan = plan
    if (plan === null) this.#lib.relayPlan(id, n, 0)
    else {
      const r = plan.request
      this.#lib.relayPlan(id, n, r.family, r.address, r.port, r.timeoutMs, r.idleMs, r.keepalive)
    }
  }

  /**
   * Stop accepting on listener `id`; the thread has closed its duplicate
   * when this returns. Connections it accepted before are still reported
   * to its handler: the promise settles after the last of them.
   */
  unlisten(id: number): Promise<void> {
    const l = this.#listeners.get(id)
    // Its last word came already.
    if (l === undefined) return Promise.resolve()
    if (l.last === null) {
      // False: the thread could not take the command (out of memory) and still accepts there.
      if (!this.#lib.relayUnlisten(id)) return Promise.resolve()
      l.last = new Promise(resolve => (l.gone = resolve))
    }
    return l.last
  }

  /**
   * Connect accepted connection `id`; `ended` hears how the attempt ended
   * (once connected, the thread relays). `done` hears of the connection's
   * end, whenever it comes: after the relay, or after abort() at any time.
   */
  connect(id: number, req: ConnectRequest, ended: (a: AttemptEnd) => void): void {
    const c = this.#conn(id)
    c.slot = this.#slots.take()
    this.#lib.relayConnect(id, req.family, req.address, req.port, req.timeoutMs, req.idleMs, req.keepalive, req.first, this.#slots.array(c.slot), this.#slots.at(c.slot) / 3)
    c.req = req
    c.attempted = ended
  }

  /**
   * The attempt a plan started for accepted connection `id` (Accepted.plan):
   * `ended` hears how it ended, as connect()'s. Called from the handler that
   * heard of the connection, as onEnd(): the thread's report of the attempt
   * (and of the end) may follow the accept's in the same batch.
   */
  adopt(id: number, plan: Plan, ended: (a: AttemptEnd) => void): void {
    const c = this.#conn(id)
    c.slot = this.#slots.take()
    this.#lib.relayAdopt(id, this.#slots.array(c.slot), this.#slots.at(c.slot) / 3)
    c.req = plan.request
    c.attempted = ended
  }

  /** The record of accepted connection `id`, made on first use. */
  #conn(id: number): FrontConn {
    let c = this.#conns.get(id)
    if (c === undefined) {
      this.#conns.set(id, (c = new FrontConn(id, this.#slots, this.#conns)))
      // The thread's end report lets go of the record, whoever waits for it.
      onThreadEnd(id, c)
    }
    return c
  }

  /** `done` hears of the end of accepted connection `id` (relayed, cut or aborted). */
  onEnd(id: number, done: (r: RelayResult) => void): void {
    this.#conn(id).ended = done
  }

  /** End accepted connection `id` (a refusal, a session's abort): its end is reported to onEnd's `done`, if any. */
  abort(id: number): void {
    const c = this.#conns.get(id)
    if (c !== undefined) {
      c.req = null
      c.attempted = null
    }
    this.#lib.relayAbort(id)
  }

  /**
   * Close a refused connection once this turn's log lines are written (the
   * logger writes them in a setImmediate queued before this one): the client
   * sees the close after the line that says why, as with Node's sockets.
   */
  refuse(id: number): void {
    setImmediate(() => this.abort(id))
  }

  /**
   * Node's socket for accepted connection `a`, for a session that needs
   * one (a program, a PROXY header to read, redirect mode): the thread
   * gives up its descriptor (no duplicate: nothing to fail when
   * descriptors run out), and Node's socket is paused and half-open
   * capable as Node's listeners make them (lib/server/listeners.ts).
   */
  take(a: Accepted): Socket {
    this.#lib.relayRelease(a.id)
    const socket = new Socket({ fd: a.fd, readable: true, writable: true, allowHalfOpen: true, pauseOnCreate: true } as ConstructorParameters<typeof Socket>[0])
    socket.setNoDelay(true)
    return socket
  }
}

let front: ThreadFront | null | undefined

/** The process's front, or null without the addon. */
export function threadFront(): ThreadFront | null {
  if (front === undefined) {
    const lib = relayThread()
    front = lib === undefined ? null : new ThreadFront(lib)
  }
  return front
}
