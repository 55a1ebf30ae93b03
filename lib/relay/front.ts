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

interface Attempt {
  req: ConnectRequest
  ended: (a: AttemptEnd) => void
}

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

/** Node's error for a failed connect (`connect ECONNREFUSED 127.0.0.1:25`), from the thread's errno. */
function connectError(errno: number, address: string, port: number): Error {
  const code = getSystemErrorName(-errno)
  return Object.assign(new Error(`connect ${code} ${address}:${port}`), { code, errno: -errno, syscall: 'connect', address, port })
}

export class ThreadFront {
  readonly #lib: NativeAddon
  /** Listeners' handlers, by the front's listener number. */
  readonly #listeners = new Map<number, (a: Accepted) => void>()
  /** Connections with an attempt under way. */
  readonly #attempts = new Map<number, Attempt>()
  readonly #slots = new LiveSlots()
  /** The live-count slot of each connection with an attempt or a relay, until the thread is done with it. */
  readonly #slotOf = new Map<number, number>()
  /** The relays running, whose counts are frozen at their end (their slot is given back). */
  readonly #relays = new Map<number, ThreadRelay>()
  #lastListener = 0

  constructor(lib: NativeAddon) {
    this.#lib = lib
    lib.relayFront(
      (id, listener, local, localPort, peer, peerPort, fd) => {
        // The listener's last word, after every connection it accepted.
        if (id === 0) return void this.#listeners.delete(listener)
        ;(this.#listeners.get(listener) as (a: Accepted) => void)({ id, local, localPort, peer, peerPort, fd })
      },
      (id, errno, timedOut) => {
        const a = this.#attempts.get(id)
        // Aborted while its report was on the way: the end follows, and tells.
        if (a === undefined) return
        this.#attempts.delete(id)
        const slot = this.#slotOf.get(id) as number
        if (errno === 0) {
          const relay = new ThreadRelay(lib, id, { sent: 0, received: 0 }, this.#slots.array(slot), this.#slots.at(slot))
          this.#relays.set(id, relay)
          return a.ended({ ok: true, relay })
        }
        this.#release(id)
        a.ended({ ok: false, error: timedOut ? connectTimedOut(a.req.timeoutMs) : connectError(errno, a.req.address, a.req.port) })
      },
    )
  }

  /** Accept on (a duplicate of) `fd` in the thread; `handler` hears of each connection. Returns the listener's number. */
  listen(fd: number, handler: (a: Accepted) => void): number {
    const id = ++this.#lastListener
    this.#lib.relayListen(id, fd)
    this.#listeners.set(id, handler)
    return id
  }

  /**
   * Stop accepting on listener `id`; the thread has closed its duplicate
   * when this returns. Connections it accepted before are still reported
   * to its handler.
   */
  unlisten(id: number): void {
    this.#lib.relayUnlisten(id)
  }

  /**
   * Connect accepted connection `id`; `ended` hears how the attempt ended
   * (once connected, the thread relays). `done` hears of the connection's
   * end, whenever it comes: after the relay, or after abort() at any time.
   */
  connect(id: number, req: ConnectRequest, ended: (a: AttemptEnd) => void): void {
    const slot = this.#slots.take()
    this.#slotOf.set(id, slot)
    this.#lib.relayConnect(id, req.family, req.address, req.port, req.timeoutMs, req.idleMs, req.keepalive, req.first, this.#slots.array(slot), this.#slots.at(slot) / 3)
    this.#attempts.set(id, { req, ended })
  }

  /** The thread is done with connection `id`'s live counts. */
  #release(id: number): void {
    const slot = this.#slotOf.get(id)
    if (slot === undefined) return
    this.#slotOf.delete(id)
    this.#slots.give(slot)
  }

  /** `done` hears of the end of accepted connection `id` (relayed, cut or aborted). */
  onEnd(id: number, done: (r: RelayResult) => void): void {
    onThreadEnd(id, r => {
      this.#relays.get(id)?.end(r)
      this.#relays.delete(id)
      this.#release(id)
      done(r)
    })
  }

  /** End accepted connection `id` (a refusal, a session's abort): its end is reported to onEnd's `done`, if any. */
  abort(id: number): void {
    this.#attempts.delete(id)
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
