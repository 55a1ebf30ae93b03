/**
 * The forwarder's listeners in use, by key (specKey). Each is accepted on
 * by Node, or by the relay thread's front (lib/relay/front.ts) when every
 * service it can select is one the thread serves whole (threaded): then
 * Node's own listener is closed, so that only the thread accepts, and a
 * never-polled duplicate is kept here to give the socket back to Node if a
 * reload makes one of its services need Node (a program, a PROXY header).
 * Connections go to `sink` either way.
 */
import { closeSync } from 'node:fs'
import type { AddressInfo, Server, Socket } from 'node:net'
import { canonicalIp, type ListenSpec } from '../config/address.js'
import { fdOf, nativeAddon, type NativeAddon } from '../native/addon.js'
import type { Accepted, Plan, ThreadFront } from '../relay/front.js'
import { closeListener, configureServer, listenerOnFd, parseKey } from './listeners.js'

export interface ListenerSink {
  /** A connection Node accepted. */
  node(client: Socket, listener: ListenSpec): void
  /** A connection the relay thread accepted. */
  thread(a: Accepted, listener: ListenSpec): void
  /** A listener's error (out of descriptors in accept()). */
  error(err: Error): void
  /** What the thread may do for every connection on `listener`, its socket bound to `bound` (null: a wildcard), without asking (lib/server/plan.ts), or null. */
  plan(listener: ListenSpec, bound: string | null): Plan | null
}

interface Entry {
  spec: ListenSpec
  /** The address the socket is bound to (canonical), null for a wildcard. */
  bound: string | null
  /** Node's listener; closed while the thread accepts. */
  server: Server
  /** The thread accepts: the front's listener number, and our never-polled duplicate of the socket. */
  thread: { id: number; held: number } | null
}

/** The one address `server` listens on, canonical; null for a wildcard (0.0.0.0, ::). */
function boundTo(server: Server): string | null {
  const a = server.address() as AddressInfo
  const ip = canonicalIp(a.address)
  return ip === '0.0.0.0' || ip === '::' ? null : ip
}

export class Listening {
  readonly #front: ThreadFront | null
  readonly #sink: ListenerSink
  readonly #entries = new Map<string, Entry>()
  /** unlisten() of the thread's listeners moved to Node, until their last word. */
  readonly #releasing = new Set<Promise<void>>()

  constructor(front: ThreadFront | null, sink: ListenerSink) {
    this.#front = front
    this.#sink = sink
  }

  get keys(): string[] {
    return [...this.#entries.keys()]
  }

  get specs(): ListenSpec[] {
    return [...this.#entries.values()].map(e => e.spec)
  }

  /**
   * Serve connections from `server`, listening already (bound here, by the
   * supervisor, or by systemd); `threaded` (only given with a front): the
   * thread accepts on it.
   */
  adopt(key: string, server: Server, threaded: boolean): void {
    const entry: Entry = { spec: parseKey(key), bound: boundTo(server), server, thread: null }
    this.#entries.set(key, entry)
    this.#node(entry, server)
    // Out of descriptors for the thread's copies: Node goes on accepting.
    if (threaded) this.#toThread(entry).catch(err => this.#sink.error(err as Error))
  }

  /** The server adopted as `key` (closed while the thread accepts on it). */
  server(key: string): Server {
    return (this.#entries.get(key) as Entry).server
  }

  /** Whether the thread accepts on `key`. */
  threaded(key: string): boolean {
    return this.#entries.get(key)?.thread != null
  }

  /**
   * Move each listener to the thread or to Node as `threaded` now says (a
   * reload; true only with a front). The thread's plans are replaced
   * before this returns its promise, so that every connection it accepts
   * from then on is planned by the new services (or waits to be asked).
   */
  async retune(threaded: (spec: ListenSpec) => boolean): Promise<void> {
    const moves: Array<[Entry, boolean]> = []
    for (const entry of this.#entries.values()) {
      const want = threaded(entry.spec)
      if (entry.thread !== null) this.#plan(entry, want)
      if (want !== (entry.thread !== null)) moves.push([entry, want])
    }
    for (const [entry, want] of moves) await (want ? this.#toThread(entry) : this.#toNode(entry))
  }

  /** The thread's plan for `entry` (it accepts there): the sink's, or none if it is to go to Node. */
  #plan(entry: Entry, threaded = true): void {
    const { id } = entry.thread as { id: number }
    ;(this.#front as ThreadFront).plan(id, threaded ? this.#sink.plan(entry.spec, entry.bound) : null)
  }

  #node(entry: Entry, server: Server): void {
    entry.server = configureServer(server)
    server.on('connection', s => this.#sink.node(s, entry.spec))
    server.on('error', err => this.#sink.error(err))
  }

  #lib(): NativeAddon {
    return nativeAddon() as NativeAddon
  }

  async #toThread(entry: Entry): Promise<void> {
    const front = this.#front as ThreadFront
    const held = this.#lib().dupFd(fdOf(entry.server))
    try {
      entry.thread = { id: front.listen(held, a => this.#sink.thread(a, entry.spec)), held }
    } catch (err) {
      closeSync(held)
      throw err
    }
    this.#plan(entry)
    // Connections Node accepted meanwhile are served by Node.
    await closeListener(entry.server)
  }

  async #toNode(entry: Entry): Promise<void> {
    const { id, held } = entry.thread as { id: number; held: number }
    const server = await listenerOnFd(this.#lib().dupFd(held))
    // Closed meanwhile (a stop during the reload): close() let go of the thread's listener and `held`.
    if (![...this.#entries.values()].includes(entry)) return closeListener(server)
    this.#node(entry, server)
    entry.thread = null
    // What it accepted before is still reported, and served: closeAll() waits for that too.
    const last = (this.#front as ThreadFront).unlisten(id)
    this.#releasing.add(last)
    void last.then(() => this.#releasing.delete(last))
    closeSync(held)
  }

  /**
   * Stop accepting on `key` (one in use). Open connections go on. Settles
   * when every connection accepted there has gone to the sink: for the
   * thread's listener once it has said its last word, for Node's once the
   * server has closed (after its connections ended).
   */
  async close(key: string): Promise<void> {
    const entry = this.#entries.get(key) as Entry
    this.#entries.delete(key)
    if (entry.thread === null) return closeListener(entry.server)
    const last = (this.#front as ThreadFront).unlisten(entry.thread.id)
    closeSync(entry.thread.held)
    return last
  }

  /**
   * Stop accepting everywhere at once. `reported`: every connection
   * accepted before has gone to the sink (Node's listeners hand theirs
   * over as they accept; the thread's report theirs until their last
   * word); `closed`: Node's servers have closed as well.
   */
  closeAll(): { reported: Promise<void>; closed: Promise<void> } {
    // The thread's listeners a reload gave back to Node, their last words still to come.
    const reported: Array<Promise<void>> = [...this.#releasing]
    const closed: Array<Promise<void>> = []
    for (const [key, entry] of this.#entries) (entry.thread === null ? closed : reported).push(this.close(key))
    const all = (list: Array<Promise<void>>): Promise<void> => Promise.all(list).then(() => undefined)
    return { reported: all(reported), closed: all([...reported, ...closed]) }
  }
}
