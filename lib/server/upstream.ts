/**
 * Connecting to an upstream: the server list is tried in order until one
 * accepts, each attempt bounded by the connect timeout. Host names are
 * resolved per attempt by the system resolver, so a changed DNS entry is
 * picked up without a restart.
 */
import { connect, createServer, isIP, type Socket } from 'node:net'
import type { Endpoint } from '../config/address.js'
import type { ServiceDef } from '../config/config.js'
import { settingError } from '../config/problem.js'
import { errorCode } from '../errors.js'
import { secondsText } from '../text.js'
import { transparentConnect } from '../transparent/sockets.js'

/**
 * Where upstream connections come from: the kernel's choice, a fixed local
 * address (srcip), or the client's own address and port (forge-addr,
 * forge-port: IP_TRANSPARENT, see lib/transparent/sockets.ts).
 */
export type Source = { kind: 'any' } | { kind: 'address'; address: string } | { kind: 'forged'; address: string; port: number }

export const ANY_SOURCE: Source = Object.freeze({ kind: 'any' })

/** Where a session's upstream connections come from: the client's address (forge-addr, with its port for forge-port), `srcip`, or any. */
export function sourceFor(service: Pick<ServiceDef, 'forgeAddr' | 'forgePort' | 'sourceAddress'>, clientIp: string, clientPort: number): Source {
  if (service.forgeAddr) return { kind: 'forged', address: clientIp, port: service.forgePort ? clientPort : 0 }
  return service.sourceAddress === null ? ANY_SOURCE : { kind: 'address', address: service.sourceAddress }
}

/** A socket connecting to `host`:`port` from `from`. allowHalfOpen: the relay passes a FIN on instead of closing (see lib/relay/event-loop.ts). */
function open(host: string, port: number, from: Source): Socket {
  if (from.kind === 'forged') {
    return transparentConnect({ family: isIP(from.address) === 6 ? 6 : 4, localAddress: from.address, localPort: from.port, host, port })
  }
  const localAddress = from.kind === 'address' ? { localAddress: from.address } : {}
  return connect({ host, port, allowHalfOpen: true, noDelay: true, ...localAddress })
}

/** A connect attempt that ran out of time (here, or in the relay thread: lib/relay/front.ts). */
export function connectTimedOut(timeoutMs: number): Error {
  return Object.assign(new Error(`connect timed out after ${secondsText(timeoutMs)}`), { code: 'ETIMEDOUT' })
}

/** One connect attempt as it ended: the connected socket, or the error. */
export type Attempt = { ok: true; socket: Socket; host: string; port: number } | { ok: false; host: string; port: number; error: Error }

/** How an attempt ended, whoever made it (Node here, or the relay thread: lib/session/direct.ts). */
export type AttemptOutcome = { ok: true; host: string; port: number } | { ok: false; host: string; port: number; error: Error }

export type Connected = Extract<Attempt, { ok: true }>
export type FailedAttempt = Extract<Attempt, { ok: false }>

/** Connect one endpoint; rejects on error or after `timeoutMs` (0 = the kernel's limit). */
export function connectOne(host: string, port: number, timeoutMs: number, from: Source = ANY_SOURCE): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = open(host, port, from)
    let timer: NodeJS.Timeout | undefined
    const fail = (err: Error): void => {
      clearTimeout(timer)
      socket.destroy()
      reject(err)
    }
    socket.once('error', fail)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.off('error', fail)
      resolve(socket)
    })
    if (timeoutMs > 0) timer = setTimeout(() => fail(connectTimedOut(timeoutMs)), timeoutMs)
  })
}

/**
 * Try `servers` in order. `defaultPort` fills in entries written without a
 * port (the port the client connected to). Each attempt is yielded as it
 * ends, so the caller hears of a failure before the next server is tried;
 * the first that connects is the last yielded. When none connects, every
 * attempt yielded was a failure.
 */
export async function* connectAttempts(
  servers: readonly Endpoint[],
  defaultPort: number,
  timeoutMs: number,
  from: Source = ANY_SOURCE,
): AsyncGenerator<Attempt, void, undefined> {
  for (const ep of servers) {
    const port = ep.port ?? defaultPort
    let socket: Socket
    try {
      socket = await connectOne(ep.host, port, timeoutMs, from)
    } catch (err) {
      yield { ok: false, host: ep.host, port, error: err as Error }
      continue
    }
    yield { ok: true, socket, host: ep.host, port }
    return
  }
}

/**
 * The start-up (and reload) check of `srcip`: each source address must be
 * one of this host's, else every connection of the service would fail with
 * EADDRNOTAVAIL. Binding a throw-away listener to port 0 asks the kernel.
 */
export async function checkSourceAddresses(services: readonly ServiceDef[]): Promise<void> {
  for (const s of services) {
    const address = s.sourceAddress
    if (address === null) continue
    const server = createServer()
    await new Promise<void>((resolve, reject) => {
      server.once('error', err => {
        const reason = `${address}: cannot use it as a source address: ${errorCode(err)}`
        reject(settingError(s, 'srcip', `srcip ${reason}`, reason))
      })
      server.listen(0, address, () => server.close(() => resolve()))
    })
  }
}
