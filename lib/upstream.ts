/**
 * Connecting to an upstream: the server list is tried in order until one
 * accepts, each attempt bounded by the connect timeout. Host names are
 * resolved per attempt by the system resolver, so a changed DNS entry is
 * picked up without a restart.
 */
import { connect, type Socket } from 'node:net'
import type { Endpoint } from './address.js'

export interface Connected {
  socket: Socket
  host: string
  port: number
}

export interface FailedAttempt {
  host: string
  port: number
  error: Error
}

/** Connect one endpoint; rejects on error or after `timeoutMs` (0 = the kernel's limit). */
export function connectOne(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // allowHalfOpen: the relay passes a FIN on instead of closing (see relay.ts).
    const socket = connect({ host, port, allowHalfOpen: true, noDelay: true })
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
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        fail(Object.assign(new Error(`connect timed out after ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' }))
      }, timeoutMs)
    }
  })
}

/**
 * Try `servers` in order. `defaultPort` fills in entries written without a
 * port (the port the client connected to). Each failure is reported to
 * `onFail` before the next is tried; when all fail, the last failure rejects.
 */
export async function connectFirst(
  servers: readonly Endpoint[],
  defaultPort: number,
  timeoutMs: number,
  onFail: (f: FailedAttempt) => void,
): Promise<Connected> {
  let last: FailedAttempt | undefined
  for (const ep of servers) {
    const port = ep.port ?? defaultPort
    try {
      return { socket: await connectOne(ep.host, port, timeoutMs), host: ep.host, port }
    } catch (err) {
      last = { host: ep.host, port, error: err as Error }
      onFail(last)
    }
  }
  throw last
}
