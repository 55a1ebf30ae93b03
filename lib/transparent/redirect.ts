/**
 * The original destination of a connection a firewall rule sent to the
 * proxy (redirect-mode, tcpproxy 2.0's `-r`), and the redirect loops that
 * forwarding to it can make.
 *
 * - After a REDIRECT or DNAT rule the kernel keeps the destination the
 *   client asked for in conntrack: SO_ORIGINAL_DST (lib/transparent/sockets.ts).
 * - On a TPROXY (transparent) listener nothing is rewritten: the accepted
 *   socket's own local address is the original destination.
 *
 * A loop is forwarding that comes back to this proxy: the original
 * destination is one of its own listening endpoints, or the connection is
 * the proxy's own upstream connection sent back by a rule that also catches
 * locally generated traffic (`-t nat -A OUTPUT ... -j REDIRECT`).
 */
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os'
import type { Socket } from 'node:net'
import { canonicalIp, formatHostPort, type ListenSpec } from '../config/address.js'
import type { Destination } from '../native/addon.js'
import { originalDestination } from './sockets.js'

/** Every address of this host's interfaces (canonical), read when asked: addresses come and go. */
export function localAddresses(): Set<string> {
  const found = new Set<string>()
  // (The values are never undefined: Node types every dictionary's values so.)
  for (const list of Object.values(networkInterfaces()) as NetworkInterfaceInfo[][]) for (const a of list) found.add(canonicalIp(a.address))
  return found
}

export class Redirects {
  /** `address port` of upstream connections to original destinations that are open now. */
  readonly #own = new Set<string>()
  readonly #listening: () => readonly ListenSpec[]
  readonly #addresses: () => Set<string>

  /**
   * `listening` gives the listeners in use (for the loop check); `addresses`
   * this host's addresses (os.networkInterfaces() unless a test says).
   */
  constructor(listening: () => readonly ListenSpec[], addresses: () => Set<string> = localAddresses) {
    this.#listening = listening
    this.#addresses = addresses
  }

  /**
   * Where `client` meant to go, or null when it came straight to the proxy.
   * `listener` is the listener that accepted it (null in inetd mode).
   * Throws ERR_NOT_SUPPORTED without the addon, ERR_RUNTIME when the socket
   * is gone.
   */
  find(client: Socket, listener: ListenSpec | null): Destination | null {
    if (listener?.transparent !== true) {
      const d = originalDestination(client)
      return d === null ? null : { ...d, address: canonicalIp(d.address) }
    }
    const address = canonicalIp(client.localAddress as string)
    const port = client.localPort as number
    const direct = port === listener.port && (listener.address === null ? this.#addresses().has(address) : address === listener.address)
    return direct ? null : { address, port, family: address.includes(':') ? 6 : 4 }
  }

  /**
   * Why forwarding a connection from `clientIp`:`clientPort` to `dest` would
   * come back here, or null. Call it after the current I/O callbacks have
   * run (setImmediate): an own upstream connection is registered once it is
   * connected, which the kernel may report in the same poll as the accept.
   */
  loop(dest: Destination, clientIp: string, clientPort: number): string | null {
    if (this.#own.has(`${clientIp} ${clientPort}`)) return 'the connection is this proxy\'s own upstream connection, redirected back'
    const mine = this.#listening().some(
      l => l.port === dest.port && (l.address === null ? this.#addresses().has(dest.address) : l.address === dest.address),
    )
    return mine ? `${formatHostPort(dest.address, dest.port)} is this proxy's own listener` : null
  }

  /**
   * Remember a connected upstream connection to an original destination
   * until the returned function is called (when its session ends).
   */
  track(socket: Socket): () => void {
    const key = `${canonicalIp(socket.localAddress as string)} ${socket.localPort as number}`
    this.#own.add(key)
    return () => this.#own.delete(key)
  }

  /** Whether any upstream connection to an original destination is open. */
  get tracking(): boolean {
    return this.#own.size > 0
  }
}
