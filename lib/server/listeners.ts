/**
 * Listening sockets: binding them, naming them, and making any net.Server
 * (one created here, or one received from the supervisor over IPC) accept
 * connections the way the relay needs them.
 */
import { createServer, type Server } from 'node:net'
import { formatHostPort, type ListenSpec } from '../config/address.js'
import { TcpproxyError, errorCode } from '../errors.js'
import { setTransparent as makeTransparent } from '../transparent/sockets.js'
import { passedListener } from './passed.js'

/** A stable name for a listen spec, used to tell unchanged listeners on reload. */
export function specKey(spec: ListenSpec): string {
  const where = spec.address === null ? `*:${spec.port}` : formatHostPort(spec.address, spec.port)
  // Part of the name: turning it on or off on reload binds the listener anew.
  return spec.transparent === true ? `${where}${TRANSPARENT}` : where
}

const TRANSPARENT = ' (transparent)'

/** The listen spec a key names (the inverse of specKey). */
export function parseKey(key: string): ListenSpec {
  const transparent = key.endsWith(TRANSPARENT)
  const where = transparent ? key.slice(0, -TRANSPARENT.length) : key
  const at = where.lastIndexOf(':')
  const host = where.slice(0, at)
  const spec: ListenSpec = { address: host === '*' ? null : host.replace(/^\[(.*)\]$/, '$1'), port: Number(where.slice(at + 1)) }
  return transparent ? { ...spec, transparent } : spec
}

/**
 * How accepted sockets must be: half-open capable (lib/relay/event-loop.ts), not read
 * before a session decides (a handler gets the untouched descriptor), and
 * without Nagle delays (the relay forwards whatever arrives at once).
 * net.Server keeps these as plain properties read at each accept, so a
 * server received from another process can be given them as well.
 */
export function configureServer(server: Server): Server {
  const s = server as Server & { allowHalfOpen: boolean; pauseOnConnect: boolean; noDelay: boolean }
  s.allowHalfOpen = true
  s.pauseOnConnect = true
  s.noDelay = true
  return server
}

/** Listen on one address; rejects with the system error. */
function listenOn(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port, backlog: 511 }, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

/**
 * Bind one listener; the wildcard is `::` (dual stack), or 0.0.0.0 where
 * IPv6 is off. Throws ERR_BIND naming the address and the reason. A spec
 * a socket systemd passed serves is served from that socket (passed.ts).
 */
export async function bindListener(spec: ListenSpec): Promise<Server> {
  const passed = passedListener(spec)
  if (passed !== null) return configureServer(passed)
  const server = configureServer(createServer())
  const hosts = spec.address === null ? ['::', '0.0.0.0'] : [spec.address]
  let code = ''
  for (const host of hosts) {
    try {
      await listenOn(server, host, spec.port)
      if (spec.transparent === true) makeTransparent(server)
      return server
    } catch (err) {
      if (err instanceof TcpproxyError) {
        server.close()
        throw new TcpproxyError(err.code, `cannot bind ${specKey(spec)}: ${err.message}`)
      }
      code = errorCode(err)
      // Only a machine without IPv6 makes the dual-stack wildcard fail this way.
      /* c8 ignore next */
      if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') break
    }
  }
  throw new TcpproxyError('ERR_BIND', `cannot bind ${specKey(spec)}: ${code}`)
}

/** The address a listener is bound to, as the `bound to` line shows it. */
export function boundAddress(server: Server): string {
  const a = server.address() as { address: string; port: number }
  return formatHostPort(a.address, a.port)
}

/** Close a listener; resolves when it is closed (open connections are not affected). */
export function closeListener(server: Server): Promise<void> {
  return new Promise(resolve => server.close(() => resolve()))
}

/** What reconcileListeners does to make a set of listeners match the specs. */
export interface ListenerOps {
  bind(key: string, spec: ListenSpec): Promise<void>
  unbind(key: string): Promise<void>
}

/**
 * Make the listeners `current` (keys) match `wanted`: bind the new ones,
 * unbind the ones no longer wanted, keep the rest (their sockets and queued
 * connections stay). A wanted port held by a listener that goes away is
 * freed first (`*:25` becoming `10.0.0.1:25`). If a bind fails, what this
 * call bound is unbound, what it freed early is bound again, and the error
 * is thrown: the caller keeps its old configuration, whole.
 */
export async function reconcileListeners(current: readonly string[], wanted: readonly ListenSpec[], ops: ListenerOps): Promise<void> {
  const want = new Map(wanted.map(spec => [specKey(spec), spec]))
  const removed = current.filter(k => !want.has(k))
  const added = [...want].filter(([k]) => !current.includes(k))
  const addedPorts = new Set(added.map(([, spec]) => spec.port))
  const early = removed.filter(k => addedPorts.has(parseKey(k).port))
  for (const k of early) await ops.unbind(k)
  const fresh: string[] = []
  try {
    for (const [k, spec] of added) {
      await ops.bind(k, spec)
      fresh.push(k)
    }
  } catch (err) {
    for (const k of fresh) await ops.unbind(k)
    for (const k of early) await ops.bind(k, parseKey(k))
    throw err
  }
  for (const k of removed) if (!early.includes(k)) await ops.unbind(k)
}

/** A net.Server listening on (a duplicate of) `fd`, for handing over. */
export function listenerOnFd(fd: number): Promise<Server> {
  const server = configureServer(createServer())
  return new Promise(resolve => server.listen({ fd }, () => resolve(server)))
}
