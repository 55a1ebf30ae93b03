/**
 * The forwarder's listeners in use, by key (specKey): Node's servers, or,
 * with the relay thread's front (lib/relay/front.ts), the thread accepting
 * on a duplicate of each, Node's own listener closed so that only one of
 * them accepts. Connections go to `sink` either way.
 */
import type { Server, Socket } from 'node:net'
import type { ListenSpec } from '../config/address.js'
import { fdOf } from '../native/addon.js'
import type { Accepted, ThreadFront } from '../relay/front.js'
import { closeListener, configureServer, parseKey } from './listeners.js'

export interface ListenerSink {
  /** A connection Node accepted. */
  node(client: Socket, listener: ListenSpec): void
  /** A connection the relay thread accepted. */
  thread(a: Accepted, listener: ListenSpec): void
  /** A listener's error (out of descriptors in accept()). */
  error(err: Error): void
}

export class Listening {
  readonly #front: ThreadFront | null
  readonly #sink: ListenerSink
  readonly #servers = new Map<string, Server>()
  readonly #specs = new Map<string, ListenSpec>()
  /** The front's listener numbers, by key. */
  readonly #inThread = new Map<string, number>()

  constructor(front: ThreadFront | null, sink: ListenerSink) {
    this.#front = front
    this.#sink = sink
  }

  get keys(): string[] {
    return [...this.#servers.keys()]
  }

  get specs(): ListenSpec[] {
    return [...this.#specs.values()]
  }

  /** Serve connections from `server`, listening already (bound here, by the supervisor, or by systemd). */
  adopt(key: string, server: Server): void {
    const spec = parseKey(key)
    this.#servers.set(key, server)
    this.#specs.set(key, spec)
    if (this.#front !== null) {
      this.#inThread.set(key, this.#front.listen(fdOf(server), a => this.#sink.thread(a, spec)))
      void closeListener(server)
      return
    }
    configureServer(server)
    server.on('connection', s => this.#sink.node(s, spec))
    server.on('error', err => this.#sink.error(err))
  }

  /** The server adopted as `key` (closed if the thread accepts on it). */
  server(key: string): Server {
    return this.#servers.get(key) as Server
  }

  /** Stop accepting on `key` (one in use). Open connections go on. */
  async close(key: string): Promise<void> {
    const server = this.#servers.get(key) as Server
    const inThread = this.#inThread.get(key)
    this.#servers.delete(key)
    this.#specs.delete(key)
    this.#inThread.delete(key)
    if (inThread !== undefined) (this.#front as ThreadFront).unlisten(inThread)
    else await closeListener(server)
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.keys.map(key => this.close(key)))
  }
}
