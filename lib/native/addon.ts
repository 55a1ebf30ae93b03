/**
 * tcpproxy's own Node-API addon (lib/native/, plain C): the Linux socket
 * options Node's `net` cannot reach (lib/transparent/sockets.ts) and the relay
 * thread for established connections (lib/relay/thread.ts). The package
 * ships it prebuilt for Linux (prebuilds/, made by scripts/prebuild.mjs when
 * it is packed), so installing needs no compiler and no install script; other
 * platforms build it from source (scripts/install.mjs).
 *
 * It is loaded on first use, so a machine where it neither fits nor was
 * built runs every other feature: transparent proxying fails with
 * ERR_NOT_SUPPORTED, and connections are relayed in JavaScript.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { Server, Socket } from 'node:net'
import { basename, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { TcpproxyError, errorText } from '../errors.js'
import type { CloseReason } from '../relay/close-reasons.js'

/** A destination as the kernel reports it. */
export interface Destination {
  address: string
  port: number
  family: 4 | 6
}

/** What the addon exports (lib/native/addon.c lists the C files). */
export interface NativeAddon {
  originalDst(fd: number): Destination | null
  transparentSocket(family: 4 | 6, address: string, port: number): number
  setTransparent(fd: number): void
  probeTransparent(family: 4 | 6): void
  /** A close-on-exec duplicate of `fd` (the supervisor's unpolled hold on a listener). */
  dupFd(fd: number): number
  /** Whether TCP_NODELAY is set on socket `fd` (for the tests: Node cannot ask). */
  noDelay(fd: number): boolean
  /** One sd_notify datagram to a socket path (or, `abstract`, an abstract name); the bytes sent. */
  notifySend(address: Buffer, abstract: boolean, message: Buffer): number
  keepCapabilities(): void
  limitCapabilities(): void
  /** Start the relay thread; `onEnd` hears of every connection handed over, once, on this thread. */
  relayInit(onEnd: (id: number, toServer: number, toClient: number, reason: CloseReason, errno: number, syscall: string) => void): void
  /** Hand a connection over (the descriptors are duplicated); the buffers are sent first. */
  /** `live`: where the thread keeps bytes to the server, to the client, and the directions shut (bit 0 to the server, bit 1 to the client). */
  relayAdd(id: number, clientFd: number, serverFd: number, idleMs: number, toServer: Buffer | null, toClient: Buffer | null, live: BigUint64Array | null): void
  relayAbort(id: number): void
  /**
   * The thread's front (lib/relay/front.ts, front.c): once after relayInit,
   * the callbacks for connections the thread accepts (id 0: a listener
   * relayUnlisten closed, after all it accepted) and for each connect
   * attempt's end (errno 0: connected, relaying). `plan` (not 0): the
   * listener's plan was followed, the attempt is under way; id -1: plan
   * command `plan` is in force (relayPlan).
   */
  relayFront(
    onAccept: (id: number, listener: number, localIp: string, localPort: number, peerIp: string, peerPort: number, fd: number, plan: number) => void,
    onConnect: (id: number, errno: number, timedOut: boolean) => void,
  ): void
  /** The thread accepts on (a duplicate of) `fd` from now on. */
  relayListen(id: number, fd: number): void
  /** The thread has let go of listener `id` when this returns; false: no such listener. */
  relayUnlisten(id: number): boolean
  /** JavaScript takes accepted connection `id` with its descriptor (the thread forgets it, reports nothing more). */
  relayRelease(id: number): void
  /** One connect attempt for accepted connection `id`; `first`: bytes for the server before the client's. */
  /** `live`: kept by JavaScript for the life of the process; the thread keeps the counts at 3 × `slot`. */
  relayConnect(id: number, family: 4 | 6, address: string, port: number, timeoutMs: number, idleMs: number, keepalive: number, first: Buffer | null, live: BigUint64Array, slot: number): void
  /**
   * Connect every connection listener `listener` accepts from now on at
   * once, as relayConnect would (no bytes first), and name `plan` (above
   * every number given before) in its onAccept; family 0: none (the rest
   * may be left out). onAccept(-1, listener, ..., plan) says when the
   * thread follows it. False: no such listener.
   */
  relayPlan(listener: number, plan: number, family: 0 | 4 | 6, address?: string, port?: number, timeoutMs?: number, idleMs?: number, keepalive?: number): boolean
  /** Where a planned connection's live counts go (as relayConnect's `live` and `slot`). */
  relayAdopt(id: number, live: BigUint64Array, slot: number): void
  /** The close reason names of relay_thread.c, in the order of its enum. */
  closeReasons(): CloseReason[]
}

/**
 * Where `node-gyp rebuild -C lib/native` puts the addon: a checkout, or
 * `npm rebuild tcpproxy` where no prebuilt binary fits. TCPPROXY_NATIVE
 * names another build instead: a test and debug hook (`npm run test:asan`
 * runs the relay tests against a sanitizer build).
 */
export const NATIVE_PATH = process.env.TCPPROXY_NATIVE || fileURLToPath(new URL('../../lib/native/build/Release/tcpproxy_native.node', import.meta.url))

/**
 * The directory of the prebuilt binary for a platform, as scripts/prebuild.mjs
 * names them: linux-x64, linux-arm64, linux-x64-musl. `glibc` is the C
 * library's version that Node reports, undefined on musl (Alpine).
 */
export function prebuildName(platform: string, arch: string, glibc: string | undefined): string {
  return `${platform}-${arch}${platform === 'linux' && glibc === undefined ? '-musl' : ''}`
}

/** The glibc version Node runs on, from its diagnostic report: undefined on musl and off Linux. */
function glibcVersion(): string | undefined {
  // Without excludeNetwork (Node 20.13+, not in @types/node 20) the report
  // looks up the host name of every open socket's addresses.
  const report = process.report as typeof process.report & { excludeNetwork: boolean }
  const excluded = report.excludeNetwork
  report.excludeNetwork = true
  try {
    return (report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime
  } finally {
    report.excludeNetwork = excluded
  }
}

/** Where `npm pack` put the prebuilt binary for this machine (the package's prebuilds/). */
export function prebuildPath(): string {
  const glibc = glibcVersion()
  const name = prebuildName(process.platform, process.arch, glibc)
  return fileURLToPath(new URL(`../../prebuilds/${name}/tcpproxy_native.node`, import.meta.url))
}

/** Which binary loaded: one the package shipped, or one built on this machine. */
export interface NativeOrigin {
  path: string
  kind: 'prebuilt' | 'built from source'
}

let addon: NativeAddon | undefined
let origin: NativeOrigin | undefined
let loadFailure = ''
let tried = false

/** require() the binary at `path`; the error's first line when it does not load. */
function tryLoad(path: string): string {
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon
    return ''
  } catch (err) {
    // Node's "Cannot find module" message goes on with the require stack.
    return errorText(err).split('\n')[0] as string
  }
}

/** TCPPROXY_NATIVE is exclusive: a sanitizer run must never fall back to another build unnoticed. */
function defaultCandidates(): string | string[] {
  return process.env.TCPPROXY_NATIVE ? NATIVE_PATH : [NATIVE_PATH, prebuildPath()]
}

/**
 * (Re)load the addon; true when it loaded. `path` is one binary to load, or
 * a list to try in turn, those that exist. The default list has a build from
 * source first, since it was made on purpose for this machine (and in a
 * checkout it is the one that matches the C sources), then the prebuilt
 * binary for this platform. Tests give a path to see the failure modes.
 */
export function loadNative(path: string | readonly string[] = defaultCandidates()): boolean {
  tried = true
  addon = undefined
  origin = undefined
  const candidates = typeof path === 'string' ? [path] : path.filter(p => existsSync(p))
  const failures: string[] = []
  for (const c of candidates) {
    const failure = tryLoad(c)
    if (failure === '') {
      origin = { path: c, kind: basename(dirname(dirname(c))) === 'prebuilds' ? 'prebuilt' : 'built from source' }
      loadFailure = ''
      return true
    }
    failures.push(failure)
  }
  loadFailure = candidates.length === 0 ? `none of ${[path].flat().join(', ')} exists` : failures.join('; ')
  return false
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

/** Which binary loaded (undefined when none did or it was not tried). */
export function nativeOrigin(): NativeOrigin | undefined {
  return origin
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
