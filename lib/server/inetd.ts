/**
 * inetd mode: the connection arrives as an open socket on standard input
 * (inetd `nowait`, or a handler that exec'd tcpproxy). Node has no
 * getsockname() on a bare descriptor, so the descriptor is wrapped in a
 * net.Socket, paused before a single byte is read: a handler started
 * later must find every byte the client sent still in the kernel.
 */
import { fstatSync } from 'node:fs'
import { Socket } from 'node:net'

/** True when descriptor `fd` is a socket. */
export function isSocket(fd: number): boolean {
  try {
    return fstatSync(fd).isSocket()
  } catch {
    return false
  }
}

/** True when descriptors `a` and `b` are the same socket (inetd passes the connection as 0, 1 and 2). */
export function sameSocket(a: number, b: number): boolean {
  try {
    const x = fstatSync(a)
    const y = fstatSync(b)
    return x.isSocket() && y.isSocket() && x.ino === y.ino && x.dev === y.dev
  } catch {
    return false
  }
}

/**
 * The connected TCP socket on descriptor `fd`, or null when it is not one
 * (a unix socket, a listening socket). `pauseOnCreate` is what net.Server's
 * pauseOnConnect uses: the handle is opened without starting to read.
 */
export function inheritedConnection(fd: number): Socket | null {
  if (!isSocket(fd)) return null
  const options = { fd, allowHalfOpen: true, readable: true, writable: true, pauseOnCreate: true }
  let socket: Socket
  try {
    socket = new Socket(options)
  } catch {
    // Not a stream socket (a UDP socket from inetd's dgram services).
    return null
  }
  if (socket.remoteAddress === undefined || socket.localPort === undefined) {
    socket.destroy()
    return null
  }
  return socket
}

/**
 * Why the socket on descriptor `fd` is no TCP connection, in words for the
 * user, or null when it is not a socket at all. A unix-domain socket
 * (socat without `nofork`, a socket pair) has no port; a listening or
 * unconnected TCP socket has one but no peer; a datagram socket cannot be
 * opened as a stream.
 */
export function notTcpConnection(fd: number): string | null {
  if (!isSocket(fd)) return null
  let socket: Socket
  try {
    socket = new Socket({ fd, readable: false, writable: false, pauseOnCreate: true } as never)
  } catch {
    return 'standard input is a datagram socket, not a TCP connection'
  }
  const local = socket.address() as { port?: number }
  socket.destroy()
  return local.port === undefined
    ? 'standard input is a unix-domain socket, not a TCP connection (socat: use its nofork option)'
    : 'standard input is a TCP socket without a peer (a listening socket?), not a connection'
}
