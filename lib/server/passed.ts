/**
 * Listening sockets systemd passed (socket activation; which passed socket
 * serves which listen spec: lib/systemd/activation.ts). Held here, so that
 * bindListener (listeners.ts) serves a spec from its passed socket instead
 * of binding it: in one process, and in the supervisor, which hands the
 * socket to its workers like one it bound. A reload that keeps a spec keeps
 * its listener; one that brings a spec back serves it from the passed socket
 * again, which stays open (unpolled, like the supervisor's held copies).
 *
 * With the addon every listener is a duplicate of the passed descriptor.
 * Without it (no way to duplicate a descriptor in Node) the one net.Server
 * on the passed descriptor is handed out once; connections it accepts
 * before that are replayed to its new owner.
 */
import { closeSync } from 'node:fs'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import type { ListenSpec } from '../config/address.js'
import { matchListeners, type BoundFd, type PassedFd } from '../systemd/activation.js'

interface Held extends BoundFd {
  /** Without the addon: the server on the passed descriptor until it is handed out, then null. */
  server: Server | null
  /** Its connections accepted before the hand-out. */
  early: Socket[]
}

let held: Held[] = []
let dupFd: ((fd: number) => number) | undefined

/** A server listening on `fd` (which it owns from now on): synchronous, so no connection is accepted before the caller wires it. */
function listening(fd: number): Server {
  // As configureServer (listeners.ts) makes them, from the first accept on.
  return createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }).listen({ fd })
}

/**
 * Hold the passed sockets; returns each with the address it is bound to.
 * `dup`: the addon's dupFd (undefined without the addon).
 */
export function holdPassed(fds: readonly PassedFd[], dup: ((fd: number) => number) | undefined): BoundFd[] {
  dupFd = dup
  held = fds.map(f => {
    const server = listening(dup === undefined ? f.fd : dup(f.fd))
    const a = server.address() as AddressInfo
    const h: Held = { ...f, host: a.address, port: a.port, server: null, early: [] }
    // With a duplicate, the address was all this server was for.
    if (dup !== undefined) server.close()
    else {
      h.server = server
      server.on('connection', s => h.early.push(s))
    }
    return h
  })
  return held.map(({ fd, name, host, port }) => ({ fd, name, host, port }))
}

/** Close a passed socket no spec wants. */
export function closePassed(fd: number): void {
  const h = held.find(x => x.fd === fd) as Held
  held = held.filter(x => x !== h)
  if (h.server === null) closeSync(fd)
  else h.server.close()
}

/**
 * The listener for `spec` on the passed socket that serves it (a new one
 * each call), or null: none does (bind it), or, without the addon, its
 * one server is handed out already.
 */
export function passedListener(spec: ListenSpec): Server | null {
  const match = matchListeners(held, [spec]).served[0]
  if (match === undefined) return null
  const h = held.find(x => x.fd === match.fd) as Held
  if (dupFd !== undefined) return listening(dupFd(h.fd))
  const server = h.server
  if (server === null) return null
  h.server = null
  server.removeAllListeners('connection')
  // Once its new owner listens for them (it adopts the server in this turn).
  setImmediate(() => {
    for (const s of h.early.splice(0)) server.emit('connection', s)
  })
  return server
}
