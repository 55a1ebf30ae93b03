/**
 * Transparent proxying: the Linux socket options that Node's `net` cannot
 * reach, through tcpproxy's own Node-API addon (lib/native/transparent.c;
 * lib/native/addon.ts says how it is shipped and loaded).
 *
 * - the original destination of a connection that an iptables/nftables
 *   REDIRECT or DNAT rule sent to the proxy (SO_ORIGINAL_DST, and
 *   IP6T_SO_ORIGINAL_DST for IPv6);
 * - upstream connections from a forged source address and port
 *   (IP_TRANSPARENT / IPV6_TRANSPARENT set before bind());
 * - TPROXY listeners (the same option on the listening socket), whose
 *   accepted connections carry the original destination as their local
 *   address.
 *
 * The addon is loaded on first use, so a machine where it neither fits nor
 * was built runs every other feature and fails only here, with
 * ERR_NOT_SUPPORTED.
 */
import { Socket, type Server, type SocketConstructorOpts } from 'node:net'
import { canonicalIp, formatHostPort } from '../config/address.js'
import type { ServiceDef } from '../config/config.js'
import { settingError } from '../config/problem.js'
import { TcpproxyError, errorCode, errorText, type ErrorCode } from '../errors.js'
import { fdOf, nativeAddon, nativeLoadFailure, type Destination, type NativeAddon } from '../native/addon.js'

export interface TransparentConnectOptions {
  /** The address family of the connection (and of `localAddress`). */
  family: 4 | 6
  /** The source address to forge: any address, local or not. */
  localAddress: string
  /** The source port to forge; 0 lets the kernel choose one. */
  localPort: number
  host: string
  port: number
}

function native(): NativeAddon {
  const lib = nativeAddon()
  if (lib === undefined) {
    throw new TcpproxyError(
      'ERR_NOT_SUPPORTED',
      `transparent proxying needs the native addon: ${nativeLoadFailure()} ` +
        '(no prebuilt binary loads here, and building it from source needs python3, make and a C compiler: ' +
        'install them and run `npm rebuild tcpproxy`)',
    )
  }
  return lib
}

/**
 * `call` with the addon (ERR_NOT_SUPPORTED without it). A TcpproxyError it
 * throws goes through as it is; any other error (the addon's errno errors)
 * becomes `wrap(err)`.
 */
function callNative<T>(call: (lib: NativeAddon) => T, wrap: (err: unknown) => TcpproxyError): T {
  const lib = native()
  try {
    return call(lib)
  } catch (err) {
    throw err instanceof TcpproxyError ? err : wrap(err)
  }
}

/**
 * Where the client meant to connect before a REDIRECT or DNAT rule sent the
 * connection here, or null when it was not redirected. Under TPROXY there is
 * no NAT: the connection's own local address is the original destination.
 */
export function originalDestination(socket: Socket): Destination | null {
  return callNative(
    lib => lib.originalDst(fdOf(socket)),
    err => new TcpproxyError('ERR_RUNTIME', `cannot read the original destination: ${errorText(err)}`, { cause: err }),
  )
}

const PRIVILEGE_CODES = new Set(['EPERM', 'EACCES'])

/** ERR_PRIVILEGES when the kernel refused the option, else ERR_RUNTIME. */
function transparentError(err: unknown): TcpproxyError {
  if (PRIVILEGE_CODES.has(errorCode(err))) {
    return new TcpproxyError(
      'ERR_PRIVILEGES',
      `transparent proxying unavailable: ${errorText(err)} (IP_TRANSPARENT needs CAP_NET_ADMIN or CAP_NET_RAW)`,
      { cause: err },
    )
  }
  return new TcpproxyError('ERR_RUNTIME', `transparent proxying unavailable: ${errorText(err)}`, { cause: err })
}

/**
 * Set IP_TRANSPARENT once on a throw-away socket of `family`: call at
 * start-up, so missing privileges stop the program with ERR_PRIVILEGES
 * instead of failing every connection.
 */
export function probeTransparent(family: 4 | 6): void {
  callNative(lib => lib.probeTransparent(family), transparentError)
}

/**
 * Make a listening server transparent (TPROXY): the kernel hands it
 * connections addressed to any address, which then show as their local
 * address. Call once it is listening.
 */
export function setTransparent(server: Server): void {
  callNative(lib => lib.setTransparent(fdOf(server)), transparentError)
}

/**
 * Connect to `host`:`port` from `localAddress`:`localPort`, which need not
 * be local (the client's address: forge_addr, forge_port). Returns at once,
 * like net.connect(): the socket emits 'connect', or 'error' when the
 * forged address cannot be bound (EADDRINUSE for a port in use, EPERM
 * without privileges) or the connection fails. The replies come back only
 * if policy routing delivers them locally (see test/transparent/sockets.test.ts).
 * IPv4-mapped addresses (::ffff:a.b.c.d, as a dual-stack listener reports
 * IPv4 clients) are taken as IPv4.
 */
export function transparentConnect(opts: TransparentConnectOptions): Socket {
  const lib = native()
  const local = canonicalIp(opts.localAddress)
  let fd: number
  try {
    fd = lib.transparentSocket(opts.family, local, opts.localPort)
  } catch (err) {
    const error = Object.assign(
      new Error(`cannot open a transparent socket from ${formatHostPort(local, opts.localPort)}: ${errorText(err)}`, {
        cause: err,
      }),
      { code: errorCode(err) },
    )
    const failed = new Socket({ allowHalfOpen: true })
    process.nextTick(() => failed.destroy(error))
    return failed
  }
  // Node opens the bound, unconnected descriptor as a TCP handle, and
  // connect() uses that handle. `manualStart` (what Node's own modules pass
  // for the same purpose) keeps the constructor from reading before the
  // connection exists: while a host name is looked up, a read would fail
  // with ENOTCONN. No happy eyeballs: it would make handles of its own,
  // without the option.
  const socket = new Socket({ fd, allowHalfOpen: true, manualStart: true } as SocketConstructorOpts)
  const host = canonicalIp(opts.host)
  return socket.connect({ host, port: opts.port, family: opts.family, autoSelectFamily: false, noDelay: true })
}

/** The keyword that makes a service depend on the addon (and on CAP_NET_ADMIN), or null. */
function transparentKeyword(s: ServiceDef): string | null {
  if (s.forgeAddr) return 'forge-addr'
  if (s.transparent) return 'transparent'
  return s.redirectMode === 'none' ? null : `redirect-mode ${s.redirectMode}`
}

/** Whether upstream connections of `services` need CAP_NET_ADMIN (forged sources). */
export function needsNetAdmin(services: readonly ServiceDef[]): boolean {
  return services.some(s => s.forgeAddr)
}

/**
 * The start-up check: when a service uses transparent proxying, the addon
 * must load and (for forge-addr and transparent listeners) this process must
 * be allowed IP_TRANSPARENT — a clear error naming the service now, not a
 * failure per connection later. `probe` false skips the privilege test (a
 * root supervisor: its worker tests for itself after giving up root).
 */
export function checkTransparentSupport(services: readonly ServiceDef[], probe = true): void {
  for (const s of services) {
    const keyword = transparentKeyword(s)
    if (keyword === null) continue
    const fail = (err: unknown): never => {
      throw settingError(s, keyword.split(' ')[0] as string, `${keyword}: ${errorText(err)}`, errorText(err), errorCode(err) as ErrorCode)
    }
    try {
      native()
      if (probe && (s.forgeAddr || s.transparent)) probeTransparent(4)
    } catch (err) {
      fail(err)
    }
  }
}

/**
 * Give up root with `drop` but keep CAP_NET_ADMIN, alone, for forged
 * upstream sources: PR_SET_KEEPCAPS across setuid(), then every other
 * capability dropped. Programs this process runs get none.
 */
export function dropKeepingNetAdmin(drop: () => void): void {
  callNative(
    lib => {
      lib.keepCapabilities()
      drop()
      lib.limitCapabilities()
    },
    err => new TcpproxyError('ERR_PRIVILEGES', `cannot keep CAP_NET_ADMIN: ${errorText(err)}`, { cause: err }),
  )
}
