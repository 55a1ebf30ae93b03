/**
 * tcpproxy's own Node-API addon (lib/native/, plain C, built by the
 * package's `install` script with the machine's compiler): the Linux socket
 * options Node's `net` cannot reach (lib/transparent.ts) and the relay
 * thread for established connections (lib/relay-thread.ts).
 *
 * It is loaded on first use, so a machine where it was not built (no
 * compiler at install time) runs every other feature: transparent proxying
 * fails with ERR_NOT_SUPPORTED, and connections are relayed in JavaScript.
 */
import { createRequire } from 'node:module'
import type { Server, Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { TcpproxyError, errorText } from './errors.js'

/** A destination as the kernel reports it. */
export interface Destination {
  address: string
  port: number
  family: 4 | 6
}

/** Why a relayed connection ended; the names of lib/relay.ts's CloseReason. */
export type NativeCloseReason = 'client' | 'server' | 'timeout' | 'client-error' | 'server-error' | 'shutdown'

/** What lib/native/tcpproxy_native.c and relay_thread.c export. */
export interface NativeAddon {
  originalDst(fd: number): Destination | null
  transparentSocket(family: 4 | 6, address: string, port: number): number
  setTransparent(fd: number): void
  probeTransparent(family: 4 | 6): void
  /** A close-on-exec duplicate of `fd` (the supervisor's unpolled hold on a listener). */
  dupFd(fd: number): number
  keepCapabilities(): void
  limitCapabilities(): void
  /** Start the relay thread; `onEnd` hears of every connection handed over, once, on this thread. */
  relayInit(onEnd: (id: number, toServer: number, toClient: number, reason: NativeCloseReason, errno: number, syscall: string) => void): void
  /** Hand a connection over (the descriptors are duplicated); the buffers are sent first. */
  relayAdd(id: number, clientFd: number, serverFd: number, idleMs: number, toServer: Buffer | null, toClient: Buffer | null): void
  relayAbort(id: number): void
}

/** Where `npm install` builds the addon; the same path from dist/ and lib/. */
export const NATIVE_PATH = fileURLToPath(new URL('../lib/native/build/Release/tcpproxy_native.node', import.meta.url))

let addon: NativeAddon | undefined
let loadFailure = ''
let tried = false

/**
 * (Re)load the addon from `path`; true when it loaded. Called on first use
 * with the default path; tests point it elsewhere to see the failure mode.
 */
export function loadNative(path: string = NATIVE_PATH): boolean {
  tried = true
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon
    loadFailure = ''
    return true
  } catch (err) {
    addon = undefined
    // Node's "Cannot find module" message goes on with the require stack.
    loadFailure = errorText(err).split('\n')[0] as string
    return false
  }
}

/** The addon, loaded on first use; undefined when it does not load. */
export function nativeAddon(): NativeAddon | undefined {
  if (!tried) loadNative()
  return addon
}

/** Why the addon did not load (empty when it did or was not tried). */
export function nativeLoadFailure(): string {
  return loadFailure
}

/** True when the addon is built and loads. */
export function nativeAvailable(): boolean {
  return nativeAddon() !== undefined
}

/** The descriptor under a net.Socket or net.Server (Node keeps it on the handle), for the addon. */
export function fdOf(target: Socket | Server): number {
  const fd = (target as unknown as { _handle: { fd?: number } | null })._handle?.fd ?? -1
  if (fd < 0) throw new TcpproxyError('ERR_RUNTIME', 'the socket has no file descriptor (not open, or already closed)')
  return fd
}
