/**
 * The control socket: a UNIX stream socket where an admin (root, or the
 * members of `control-group`) asks the running daemon questions, one line
 * per command (lib/control/protocol.ts), one answer per line ending in an
 * empty line. It lives on the filesystem only: nothing of it is reachable
 * over the network.
 *
 * Life cycle: a socket file left by a dead tcpproxy (connect refused) is
 * replaced; one a live tcpproxy answers on is refused (two daemons would
 * fight over it); a file that is not a socket is never removed. The socket
 * is created mode 0600 (0660 and chowned to the group with `gid`), through
 * the umask so that it is never reachable by others, not even for a moment.
 * It is removed when the server closes, or at exit, but only while the
 * inode is still ours (a newer daemon may have replaced it).
 *
 * Bounds, so the control socket can never hurt the daemon: at most
 * `maxClients` connections, each closed after `idleMs` of silence; a line
 * over MAX_LINE ends its connection; a client that does not read its
 * answers is cut once `maxPending` bytes wait for it; lines are answered
 * one at a time, reading paused meanwhile.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, chownSync, lstatSync, renameSync, unlinkSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { TcpproxyError, errorText } from '../errors.js'
import { ERROR_PREFIX, type Answer } from './answer.js'
import { MAX_LINE } from './protocol.js'

export interface ControlServerOptions {
  path: string
  /** Group allowed in (mode 0660); null: the owner only (0600). */
  gid: number | null
  answer: (line: string) => Promise<Answer>
  /** Connections at once (default 16). */
  maxClients?: number
  /** Bytes of answers waiting for a client before it is cut (default 1 MiB). */
  maxPending?: number
  /** A connection silent this long (no command, no read) is closed, so idle ones never hold the slots (default 10 min). */
  idleMs?: number
  /** The process's umask, swapped while the socket is created. */
  umask: (mask: number) => number
}

/** Why a path cannot be made a control socket, or null when it is free (after removing a stale one). */
function probe(path: string): Promise<string | null> {
  let isSocket: boolean
  try {
    isSocket = lstatSync(path).isSocket()
  } catch (err) {
    return Promise.resolve((err as NodeJS.ErrnoException).code === 'ENOENT' ? null : errorText(err))
  }
  if (!isSocket) return Promise.resolve('exists and is not a socket')
  return new Promise(resolve => {
    const c = createConnection(path)
    c.on('connect', () => {
      c.destroy()
      resolve('in use by a running tcpproxy')
    })
    c.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNREFUSED') return resolve(errorText(err))
      // Nobody listens: a dead daemon's socket.
      unlinkSync(path)
      resolve(null)
    })
  })
}

export class ControlServer {
  readonly #o: Required<ControlServerOptions>
  readonly #server: Server
  readonly #clients = new Set<Socket>()
  #ino = -1

  private constructor(o: ControlServerOptions) {
    this.#o = { maxClients: 16, maxPending: 1 << 20, idleMs: 600_000, ...o }
    this.#server = createServer({ allowHalfOpen: true }, c => this.#serve(c))
  }

  /** Create the socket at `o.path` and serve it; ERR_RUNTIME naming the path when it cannot be. */
  static async open(o: ControlServerOptions): Promise<ControlServer> {
    const problem = await probe(o.path)
    if (problem !== null) throw new TcpproxyError('ERR_RUNTIME', `control socket ${o.path}: ${problem}`)
    const s = new ControlServer(o)
    await s.#listen()
    return s
  }

  async #listen(): Promise<void> {
    const { path, gid, umask } = this.#o
    const listening = new Promise<void>((resolve, reject) => {
      this.#server.once('listening', resolve)
      this.#server.once('error', reject)
    })
    // Bound under a name of its own, then renamed into place: the socket
    // appears at `path` with its final mode and group, and libuv, which
    // unlinks the name it bound when the server closes, never removes a
    // socket a newer daemon has put at `path` since. bind() happens inside
    // listen(): with this umask the socket is born 0600.
    const bound = `${path}.${randomBytes(4).toString('hex')}.new`
    const old = umask(0o177)
    try {
      this.#server.listen(bound)
    } finally {
      umask(old)
    }
    try {
      await listening
      if (gid !== null) {
        chownSync(bound, -1, gid)
        chmodSync(bound, 0o660)
      }
      renameSync(bound, path)
      this.#ino = lstatSync(path).ino
    } catch (err) {
      this.#server.close()
      throw new TcpproxyError('ERR_RUNTIME', `control socket ${path}: ${errorText(err)}`)
    }
  }

  /** Control connections open now. */
  get connections(): number {
    return this.#clients.size
  }

  /** Remove the socket file if it is still ours (for process exit: synchronous). */
  removeSync(): void {
    try {
      if (lstatSync(this.#o.path).ino === this.#ino) unlinkSync(this.#o.path)
    } catch {
      // Already gone.
    }
  }

  /** Stop serving: cut the connections, remove the socket. */
  close(): Promise<void> {
    for (const c of this.#clients) c.destroy()
    this.removeSync()
    return new Promise(resolve => this.#server.close(() => resolve()))
  }

  #serve(c: Socket): void {
    c.on('error', () => {})
    // Say why, and read on (discarding) so that the client's end closes the socket.
    const bye = (text: string): void => void c.end(`${ERROR_PREFIX}${text}\n\n`).resume()
    if (this.#clients.size >= this.#o.maxClients) return bye(`too many control connections (${this.#o.maxClients})`)
    this.#clients.add(c)
    c.on('close', () => this.#clients.delete(c))
    c.setTimeout(this.#o.idleMs, () => c.destroy())
    let buffered = ''
    let busy = false
    let ended = false
    const send = (text: string): void => {
      c.write(text)
      // A client that does not read: its answers pile up in our memory.
      if (c.writableLength > this.#o.maxPending) c.destroy()
    }
    const work = async (): Promise<void> => {
      busy = true
      c.pause()
      for (let nl = buffered.indexOf('\n'); nl >= 0 && !c.destroyed; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        send((await this.#o.answer(line)).text)
      }
      // Still busy: what more comes is not looked at.
      if (buffered.length > MAX_LINE + 1) return bye(`command too long (over ${MAX_LINE} characters)`)
      busy = false
      if (ended) c.end()
      else c.resume()
    }
    c.setEncoding('utf8')
    c.on('data', (chunk: string) => {
      buffered += chunk
      if (!busy) void work()
    })
    // The client has said all it will (`echo show stats | socat ...`): finish answering, then close.
    c.on('end', () => {
      ended = true
      // A last line without its newline is still a command.
      if (buffered !== '') buffered += '\n'
      if (!busy) void work()
    })
  }
}
