/**
 * Where an established connection is relayed: by the addon's relay thread
 * (lib/native/relay_thread.c) when it can be, else by lib/relay/event-loop.ts in the
 * event loop. The thread moves the bytes with recv()/send() through one
 * native buffer, so no chunk becomes a JavaScript object and the event loop
 * is free for accepting, connecting and logging (bench/RESULTS.md, "Profile",
 * measured the JS relay's per-chunk cost as the one-stream ceiling).
 *
 * The hand-over: whatever Node has already read from either socket (and
 * the bytes to send first, a PROXY header) goes to the thread with the two
 * descriptors, which it duplicates; then Node's sockets are destroyed,
 * closing only Node's descriptors. Half-close, reset, idle timeout and the
 * byte counts are the JS relay's (the C file's comment lists them), so the
 * log lines are the same either way.
 *
 * The JS relay stays for what needs the bytes in JavaScript (the `-w`
 * dump), for a socket with writes still queued in Node, for a machine
 * without the addon, and with --no-relay-thread.
 */
import type { Socket } from 'node:net'
import { getSystemErrorName } from 'node:util'
import { fdOf, nativeAddon, type NativeAddon } from '../native/addon.js'
import type { CloseReason } from './close-reasons.js'
import { relay, type RelayCounts, type RelayHandle, type RelayResult, type Tap } from './event-loop.js'

export interface RelayRequest {
  client: Socket
  server: Socket
  /** Close after this long without a byte in either direction (0 = never). */
  idleMs: number
  /** Bytes to send to the server before anything the client sends (a PROXY header, data read with it). */
  first: readonly Buffer[]
  /** Called once, when both sockets are closed. */
  done: (r: RelayResult) => void
  /** The `-w` dump: it needs every chunk, so the relay is the JS one. */
  tap: Tap | null
  /** Hand the connection to the relay thread if the addon is there. */
  thread: boolean
}

export interface Running {
  done(r: RelayResult): void
  /** Node's counts before the hand-over (an ACP's greeting went to the client through Node). */
  sent: number
  received: number
}

/** Connections with the thread, by id. */
const running = new Map<number, Running>()
let lastId = 0
let started = false

/** Node's kind of socket error ("read ECONNRESET"), from the thread's errno. */
function systemError(errno: number, syscall: string): Error {
  const code = getSystemErrorName(-errno)
  return Object.assign(new Error(`${syscall} ${code}`), { code, errno: -errno, syscall })
}

function onEnd(id: number, toServer: number, toClient: number, reason: CloseReason, errno: number, syscall: string): void {
  const r = running.get(id)
  // A connection the thread accepted and no session waits for (refused, served by Node: lib/relay/front.ts).
  if (r === undefined) return
  running.delete(id)
  r.done({
    sent: r.sent + toServer,
    received: r.received + toClient,
    closedBy: reason,
    error: errno === 0 ? null : systemError(errno, syscall),
  })
}

/** The addon with its relay thread started, or undefined without the addon. */
export function relayThread(): NativeAddon | undefined {
  const lib = nativeAddon()
  if (lib !== undefined && !started) {
    lib.relayInit(onEnd)
    started = true
  }
  return lib
}

/** `r` hears of the end of connection `id`, one the thread accepted (lib/relay/front.ts). */
export function onThreadEnd(id: number, r: Running): void {
  running.set(id, r)
}

/** Whether the thread can take the sockets as they are: open, with nothing queued in Node to write. */
function canHandOver(client: Socket, server: Socket): boolean {
  for (const s of [client, server]) {
    if (s.destroyed || s.writableLength > 0 || s.readableFlowing === true) return false
  }
  return true
}

/**
 * A connection the thread relays; abort() cuts it (shutdown). counts():
 * Node's bytes from before the hand-over plus what the thread has moved so
 * far, which it keeps in `live` (bytes to the server, to the client, the
 * directions shut) for `show sessions`.
 */
export class ThreadRelay implements RelayHandle {
  constructor(
    readonly lib: NativeAddon,
    readonly id: number,
    readonly before: { sent: number; received: number },
    readonly live: BigUint64Array,
    /** Where in `live` this connection's three counts are. */
    readonly at = 0,
  ) {}

  abort(): void {
    this.lib.relayAbort(this.id)
  }

  /** The counts at the end, once the thread has let go of `live` (it may serve another connection). */
  #final: RelayCounts | null = null

  end(r: RelayResult): void {
    this.#final = { sent: this.before.sent + r.sent, received: this.before.received + r.received, halfClosed: true }
  }

  counts(): RelayCounts {
    if (this.#final !== null) return this.#final
    return {
      sent: this.before.sent + Number(Atomics.load(this.live, this.at)),
      received: this.before.received + Number(Atomics.load(this.live, this.at + 1)),
      halfClosed: Atomics.load(this.live, this.at + 2) !== 0n,
    }
  }
}

/** All of a paused socket's buffered bytes (null: none). */
function buffered(s: Socket): Buffer | null {
  return s.readableLength > 0 ? (s.read() as Buffer) : null
}

/**
 * A relay started: its handle, and who relays. 'thread': the relay thread
 * took the connection and Node's two sockets are already destroyed (the
 * caller may drop them); 'event-loop': Node's sockets relay it.
 */
export interface StartedRelay {
  handle: RelayHandle
  by: 'thread' | 'event-loop'
}

/**
 * Relay `req.client` and `req.server` until both directions have ended (see
 * lib/relay/event-loop.ts for the semantics either relay keeps).
 */
export function startRelay(req: RelayRequest): StartedRelay {
  const { client, server } = req
  const lib = req.thread && req.tap === null ? relayThread() : undefined
  const toServer = [...req.first]
  let reply: Buffer | null = null
  if (lib !== undefined && canHandOver(client, server)) {
    const fromClient = buffered(client)
    if (fromClient !== null) toServer.push(fromClient)
    reply = buffered(server)
    const id = ++lastId
    const live = new BigUint64Array(3)
    try {
      lib.relayAdd(id, fdOf(client), fdOf(server), req.idleMs, toServer.length > 0 ? Buffer.concat(toServer) : null, reply, live)
      const before = { sent: server.bytesWritten, received: client.bytesWritten }
      running.set(id, { done: req.done, ...before })
      client.destroy()
      server.destroy()
      return { handle: new ThreadRelay(lib, id, before, live), by: 'thread' }
    } catch {
      // Out of descriptors or memory for the duplicates: the JS relay
      // serves it, with the bytes already taken from Node.
    }
  }
  for (const b of toServer) server.write(b)
  if (reply !== null) client.write(reply)
  return { handle: relay(client, server, req.idleMs, req.done, req.tap), by: 'event-loop' }
}
