/**
 * The byte relay between a client and its upstream. Both sockets must be
 * created with `allowHalfOpen: true`: when one side ends its output (FIN),
 * the other side's write direction is shut down (`end()` = shutdown(SHUT_WR),
 * the original's 1.1.4 behaviour) and the opposite direction keeps flowing
 * until it ends too. Unlike the original, this holds whichever side closes
 * first. An error or reset on either side resets the other and ends both.
 *
 * Backpressure: a chunk is written to the peer only as it arrives, and the
 * reading side is paused while the peer's write buffer is over its high-water
 * mark, so memory per connection stays bounded by the two sockets' buffers.
 *
 * A reset needs care in two places Node does not handle for us:
 *
 *   - a socket whose shutdown (the FIN passed on) is still in flight cannot
 *     be reset: libuv refuses (`reset EINVAL`), and Node then drops the
 *     handle without closing it, so the descriptor leaks and 'close' never
 *     comes. Such a socket is reset once its shutdown has completed;
 *   - a socket whose input has ended is no longer polled, so a reset that
 *     comes after its FIN is not seen until something is written to it.
 *     While one side is half-closed, that side is probed every PROBE_MS
 *     with an empty write, which the kernel fails on a reset connection
 *     without sending anything on a live one.
 *
 * The event handlers are shared functions, not per-connection closures; each
 * socket points at its Relay, which keeps the per-connection cost small.
 */
import type { Socket } from 'node:net'
import type { CloseReason } from './close-reasons.js'

export interface RelayResult {
  /** Bytes written to the client (server to client). */
  received: number
  /** Bytes written to the server (client to server). */
  sent: number
  closedBy: CloseReason
  /** The socket error that ended the session, if any. */
  error: Error | null
}

/** Called with each chunk read from a side, and an empty chunk at its EOF (the `-w` dump). */
export type Tap = (from: 'CLIENT' | 'SERVER', chunk: Buffer) => void

/** How often a half-closed side is probed for a reset (see above). */
export const PROBE_MS = 1000

const EMPTY = Buffer.alloc(0)
const kRelay = Symbol('relay')
type RelaySocket = Socket & { [kRelay]: Relay }

class Relay {
  closedBy: CloseReason | null = null
  error: Error | null = null
  /** Set once the session was cut (error, timeout, shutdown) rather than closed by both sides. */
  cut = false
  open = 2
  /** Probes the half-closed sides for a reset (null: no side half-closed yet). */
  probe: NodeJS.Timeout | null = null

  constructor(
    readonly client: Socket,
    readonly server: Socket,
    readonly done: (r: RelayResult) => void,
    readonly tap: Tap | null,
  ) {}

  side(s: Socket): 'CLIENT' | 'SERVER' {
    return s === this.client ? 'CLIENT' : 'SERVER'
  }

  peer(s: Socket): Socket {
    return s === this.client ? this.server : this.client
  }

  /**
   * Tear both sockets down; `reset` sends RST where the cause was a reset or
   * error. Without arguments: a shutdown (RelayHandle).
   */
  abort(reason: CloseReason = 'shutdown', error: Error | null = null, reset = false): void {
    // The first cut is the cause; it overrides a half-close already seen.
    if (!this.cut) {
      this.cut = true
      this.closedBy = reason
      this.error = error
    }
    this.stopProbe()
    for (const s of [this.client, this.server]) {
      if (s.destroyed) continue
      if (!reset) s.destroy()
      else if (shuttingDown(s)) resetAfterShutdown(s)
      else s.resetAndDestroy()
    }
  }

  /** Probe each side whose input ended and whose output is idle and open (see the file's comment). */
  probeHalfClosed(): void {
    for (const s of [this.client, this.server]) {
      if (s.readableEnded && s.writable && s.writableLength === 0) s.write(EMPTY)
    }
  }

  counts(): RelayCounts {
    // A half-close sets closedBy without cutting.
    return { received: this.client.bytesWritten, sent: this.server.bytesWritten, halfClosed: this.closedBy !== null && !this.cut }
  }

  stopProbe(): void {
    if (this.probe !== null) clearInterval(this.probe)
    this.probe = null
  }
}

/** Whether `s` has passed its FIN to the kernel and the shutdown has not completed (libuv then refuses a reset). */
function shuttingDown(s: Socket): boolean {
  return s.writableEnded && !s.writableFinished && s.writableLength === 0
}

/**
 * Reset `s` once its shutdown completes. That is on the next turn of the
 * loop: Node starts a shutdown only when nothing is left to write, and libuv
 * (>= 1.44, Node >= 18) then runs it without waiting for the socket to be
 * writable. A socket destroyed meanwhile needs nothing more.
 */
function resetAfterShutdown(s: Socket): void {
  s.pause()
  s.once('finish', () => s.resetAndDestroy())
}

function onData(this: RelaySocket, chunk: Buffer): void {
  // Returning false means the peer's buffer is full: stop reading until 'drain'.
  if (!this[kRelay].peer(this).write(chunk)) this.pause()
}

/** onData with the dump tap: a separate function so the common path pays nothing for it. */
function onDataTapped(this: RelaySocket, chunk: Buffer): void {
  const r = this[kRelay]
  ;(r.tap as Tap)(r.side(this), chunk)
  if (!r.peer(this).write(chunk)) this.pause()
}

function onDrain(this: RelaySocket): void {
  this[kRelay].peer(this).resume()
}

function onEnd(this: RelaySocket): void {
  const r = this[kRelay]
  r.closedBy ??= this === r.client ? 'client' : 'server'
  r.tap?.(r.side(this), Buffer.alloc(0))
  const peer = r.peer(this)
  // Half-close: pass the FIN on, keep relaying the other direction.
  if (!peer.destroyed) peer.end()
  r.probe ??= setInterval(() => r.probeHalfClosed(), PROBE_MS).unref()
}

function onError(this: RelaySocket, err: Error): void {
  const r = this[kRelay]
  r.abort(this === r.client ? 'client-error' : 'server-error', err, true)
}

function onTimeout(this: RelaySocket): void {
  this[kRelay].abort('timeout')
}

function onClose(this: RelaySocket): void {
  const r = this[kRelay]
  r.stopProbe()
  if (--r.open > 0) return
  r.done({
    received: r.client.bytesWritten,
    sent: r.server.bytesWritten,
    // Both sockets only close after an end (half-close) or a cut, each of which sets it.
    closedBy: r.closedBy as CloseReason,
    error: r.error,
  })
}

/** Bytes moved so far, and whether one direction has ended (`show sessions`). */
export interface RelayCounts {
  received: number
  sent: number
  halfClosed: boolean
}

/** A running relay; `abort` ends it at once (graceful shutdown, reload); `counts` for `show sessions`. */
export interface RelayHandle {
  abort(): void
  counts(): RelayCounts
}

/**
 * Relay between two connected sockets until both directions have ended, an
 * error occurs, or neither side moved a byte for `idleMs` (0 = no limit).
 * `done` is called once, after both sockets have closed. `tap` sees every
 * chunk (for the traffic dump).
 */
export function relay(client: Socket, server: Socket, idleMs: number, done: (r: RelayResult) => void, tap: Tap | null = null): RelayHandle {
  const r: Relay = new Relay(client, server, done, tap)
  for (const s of [client, server] as RelaySocket[]) {
    s[kRelay] = r
    s.on('data', tap === null ? onData : onDataTapped)
    s.on('drain', onDrain)
    s.on('end', onEnd)
    s.on('error', onError)
    s.on('close', onClose)
    // Each socket's timer is refreshed by its reads and its writes, so either
    // timer firing means no byte moved in either direction for idleMs.
    if (idleMs > 0) {
      s.setTimeout(idleMs)
      s.on('timeout', onTimeout)
    }
    s.resume()
  }
  // A side whose EOF was consumed before the relay started (while a PROXY
  // header was read) would never emit 'end' again: pass that FIN on now.
  for (const s of [client, server] as RelaySocket[]) if (s.readableEnded) onEnd.call(s)
  // The Relay itself: no handle object or closure per connection.
  return r
}
