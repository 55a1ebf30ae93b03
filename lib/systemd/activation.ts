/**
 * systemd socket activation (sd_listen_fds(3)): the listening sockets
 * systemd (or `systemd-socket-activate`) passed, and which of the wanted
 * listen specs they serve.
 *
 * The passed sockets are descriptors 3, 4, ... (LISTEN_FDS of them), meant
 * for the process LISTEN_PID names; LISTEN_FDNAMES, when set, names each
 * (FileDescriptorName=, colon-separated), else every one is `unknown` as
 * sd_listen_fds_with_names(3) says. The caller deletes ACTIVATION_VARS
 * from the environment its workers and programs inherit, so that no other
 * process takes the sockets for its own.
 *
 * Pure: the environment and the pid are passed in, and the caller reads the
 * passed sockets' addresses (getsockname) for matchListeners.
 */
import { isIP } from 'node:net'
import { canonicalIp, type ListenSpec } from '../config/address.js'
import { TcpproxyError } from '../errors.js'

/** SD_LISTEN_FDS_START: the first passed descriptor. */
export const LISTEN_FDS_START = 3

/** The variables of the protocol, to remove from children's environments. */
export const ACTIVATION_VARS = ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES'] as const

/** More sockets than any configuration binds; a larger count is a garbled variable. */
const MAX_FDS = 4096

export interface PassedFd {
  fd: number
  name: string
}

function bad(reason: string): never {
  throw new TcpproxyError('ERR_CONFIG', `socket activation: ${reason}`)
}

/** A decimal number as the variables carry it, or null. */
function decimal(text: string): number | null {
  return /^\d{1,10}$/.test(text) ? Number(text) : null
}

/**
 * The sockets passed to process `pid`; [] without LISTEN_FDS (not
 * activated). Inconsistent variables are a one-line ERR_CONFIG naming the
 * variable and its value.
 */
export function parseListenFds(env: Readonly<Record<string, string | undefined>>, pid: number): PassedFd[] {
  const fds = env['LISTEN_FDS']
  if (fds === undefined || fds === '') return []
  const count = decimal(fds)
  if (count === null || count > MAX_FDS) bad(`LISTEN_FDS=${JSON.stringify(fds)} is not a number of sockets (0-${MAX_FDS})`)
  const owner = env['LISTEN_PID']
  if (owner === undefined) bad(`LISTEN_FDS=${fds} without LISTEN_PID`)
  const ownerPid = decimal(owner)
  if (ownerPid === null || ownerPid === 0) bad(`LISTEN_PID=${JSON.stringify(owner)} is not a process id`)
  if (ownerPid !== pid) bad(`LISTEN_PID=${ownerPid} is not this process (${pid}): the sockets were meant for another one`)
  const names = env['LISTEN_FDNAMES']
  // `''.split(':')` is one empty name; an empty LISTEN_FDNAMES names no socket.
  const list = names === undefined ? Array.from({ length: count }, () => 'unknown') : names === '' ? [] : names.split(':')
  if (list.length !== count) bad(`LISTEN_FDNAMES=${JSON.stringify(names)} names ${list.length} socket(s), LISTEN_FDS=${count}`)
  return list.map((name, i) => ({ fd: LISTEN_FDS_START + i, name }))
}

/** A passed socket with the address it is bound to (as getsockname reports it). */
export interface BoundFd extends PassedFd {
  host: string
  port: number
  /** IPV6_V6ONLY on a `::` socket (BindIPv6Only=ipv6-only): it takes no IPv4 connections. */
  v6only?: boolean
}

export interface Matched {
  /** Wanted specs a passed socket serves (one socket may serve several, see matchListeners). */
  served: { spec: ListenSpec; fd: number }[]
  /** Wanted specs no passed socket serves: bind them as usual. */
  toBind: ListenSpec[]
  /** Passed sockets no spec wants: log them and close them. */
  unused: BoundFd[]
}

const isAny4 = (f: BoundFd): boolean => f.host === '0.0.0.0'
const isAny6 = (f: BoundFd): boolean => canonicalIp(f.host) === '::'
const dualStack = (f: BoundFd): boolean => isAny6(f) && f.v6only !== true

/**
 * Which passed socket serves each wanted spec: an exact address and port
 * first; for a spec on every address (`address` null), a wildcard socket on
 * its port (`::` dual stack, else 0.0.0.0, else `::` IPv6-only); for a
 * specific address, else a wildcard socket of its family on its port, which
 * takes its connections already (binding the address beside it would fail
 * with EADDRINUSE; the forwarder tells services apart by local address).
 * TPROXY specs (`transparent`) are never matched: their socket needs
 * IP_TRANSPARENT set by tcpproxy. Ports must be equal; addresses are IPs
 * (the caller resolves names before).
 */
export function matchListeners(fds: readonly BoundFd[], wanted: readonly ListenSpec[]): Matched {
  const served: Matched['served'] = []
  const toBind: ListenSpec[] = []
  const used = new Set<number>()
  for (const spec of wanted) {
    const onPort = spec.transparent === true ? [] : fds.filter(f => f.port === spec.port)
    const address = spec.address === null ? null : canonicalIp(spec.address)
    const v4 = address !== null && isIP(address) === 4
    const found =
      address === null
        ? (onPort.find(dualStack) ?? onPort.find(isAny4) ?? onPort.find(isAny6))
        : (onPort.find(f => canonicalIp(f.host) === address) ?? onPort.find(f => (v4 ? isAny4(f) || dualStack(f) : isAny6(f))))
    if (found === undefined) {
      toBind.push(spec)
      continue
    }
    served.push({ spec, fd: found.fd })
    used.add(found.fd)
  }
  return { served, toBind, unused: fds.filter(f => !used.has(f.fd)) }
}
