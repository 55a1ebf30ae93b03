/**
 * Read a PROXY protocol header off a freshly accepted socket, before anything
 * else touches the connection (proxy-protocol.txt §2: the receiver "MUST NOT
 * start processing the connection before it receives a complete and valid
 * PROXY protocol header").
 *
 * The socket is read in paused mode with bounded `read(n)` calls, so at most
 * one header's worth of bytes is taken from it: 107 bytes until a v2 header
 * has announced its length, then exactly up to the end of that header.
 */
import type { Socket } from 'node:net'
import { ProxyHeaderError, errorText } from '../errors.js'
import type { ProxyHeader } from './header.js'
import { parseProxyHeader } from './parse.js'
import { PROXY_V1_MAX } from './v1.js'
import { v2HeaderLength } from './v2.js'

/**
 * Resolve with the header and the bytes that arrived after it in the same
 * read (`rest`, often empty: the caller decides whether to `unshift` them).
 * Rejects with ProxyHeaderError on a malformed header, on EOF, close or a
 * socket error before the header is complete, and after `timeoutMs`.
 * Whatever the outcome, every listener added here is removed again and the
 * socket is left in non-flowing mode with unread data still buffered; it is
 * never destroyed here (the caller owns it). Node goes on reading into that
 * buffer (up to the high-water mark) after the header, so a reset can come
 * at any time afterwards: the caller must have an 'error' listener of its
 * own on the socket before calling this, as a Session has from its start.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<{ header: ProxyHeader; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let storage = Buffer.allocUnsafe(PROXY_V1_MAX)
    let size = 0
    const closed = (): ProxyHeaderError =>
      new ProxyHeaderError('connection closed before the PROXY header was complete', size)
    if (socket.destroyed || socket.readableEnded) {
      reject(closed())
      return
    }

    const finish = (): void => {
      clearTimeout(timer)
      socket.off('readable', onReadable)
      socket.off('end', onClose)
      socket.off('close', onClose)
      socket.off('error', onError)
    }
    const fail = (err: unknown): void => {
      finish()
      reject(err)
    }
    function onClose(): void {
      fail(closed())
    }
    function onError(err: unknown): void {
      fail(new ProxyHeaderError(`connection failed before the PROXY header was complete: ${errorText(err)}`, size))
    }
    function onReadable(): void {
      for (;;) {
        const limit = headerLimit(storage, size)
        if (limit > storage.length) {
          const grown = Buffer.allocUnsafe(limit)
          storage.copy(grown, 0, 0, size)
          storage = grown
        }
        // Never ask for more than the header can still need (always at least
        // one byte while the parser says "incomplete"), nor more than the
        // high-water mark (a larger read(n) would raise the socket's).
        const want = Math.min(socket.readableLength, limit - size, socket.readableHighWaterMark)
        // With nothing buffered, read() returns null and lets 'end' be emitted at EOF.
        const chunk = (want > 0 ? socket.read(want) : socket.read()) as Buffer | null
        if (chunk === null) return
        chunk.copy(storage, size)
        size += chunk.length
        let result
        try {
          result = parseProxyHeader(storage.subarray(0, size))
        } catch (err) {
          fail(err)
          return
        }
        if (result.status === 'complete') {
          finish()
          resolve({ header: result.header, rest: storage.subarray(result.header.length, size) })
          return
        }
      }
    }

    const timer = setTimeout(() => {
      fail(new ProxyHeaderError(`no complete PROXY header within ${timeoutMs} ms`, size))
    }, timeoutMs)
    socket.on('end', onClose)
    socket.on('close', onClose)
    socket.on('error', onError)
    socket.on('readable', onReadable)
  })
}

/**
 * How many bytes the header can occupy, judging by what has been read: a v2
 * header announces its size in its fixed part (proxy-protocol.txt §2.2);
 * until then, and for v1, at most 107 bytes (§2.1) are needed.
 */
function headerLimit(storage: Buffer, size: number): number {
  return v2HeaderLength(storage.subarray(0, size)) ?? PROXY_V1_MAX
}
