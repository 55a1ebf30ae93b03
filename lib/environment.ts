/**
 * What handler and access control programs learn about their connection:
 * the PROXY_* environment (prefix changeable with -v / setenv), and the
 * client's host name. Everything else of the environment is inherited.
 */
import { lookupService } from 'node:dns/promises'
import { isIP } from 'node:net'

/** Facts about one connection, as the environment reports them. */
export interface ConnectionFacts {
  client: string
  clientName: string
  clientPort: number
  iface: string
  port: number
  /** `interface:port` of the chosen service as configured (`*:8025`, `127.0.0.1:25`). */
  config: string
  pid: number
  proxyName: string
  logName: string
  /** Epoch seconds when the connection was accepted. */
  started: number
  /** With a PROXY header: the address of the proxy that sent it. */
  peer?: string
  /** With a PROXY header: the destination it reports. */
  destination?: { address: string; port: number }
  /** redirect-mode: where the client meant to connect before a firewall rule sent it here. */
  origdst?: { address: string; port: number }
}

/** The variables, named with `prefix` (PROXY_ by default). */
export function connectionEnv(prefix: string, f: ConnectionFacts): Record<string, string> {
  return {
    [`${prefix}CLIENT`]: f.client,
    [`${prefix}CLIENTNAME`]: f.clientName,
    [`${prefix}CLIENTPORT`]: String(f.clientPort),
    [`${prefix}INTERFACE`]: f.iface,
    [`${prefix}PORT`]: String(f.port),
    [`${prefix}CONFIG`]: f.config,
    [`${prefix}PID`]: String(f.pid),
    [`${prefix}PROXYNAME`]: f.proxyName,
    [`${prefix}LOGNAME`]: f.logName,
    [`${prefix}STARTED`]: String(f.started),
    ...(f.peer === undefined ? {} : { [`${prefix}PEER`]: f.peer }),
    ...(f.destination === undefined
      ? {}
      : { [`${prefix}DESTINATION`]: f.destination.address, [`${prefix}DESTPORT`]: String(f.destination.port) }),
    ...(f.origdst === undefined
      ? {}
      : { [`${prefix}ORIGDST_SERVER`]: f.origdst.address, [`${prefix}ORIGDST_PORT`]: String(f.origdst.port) }),
  }
}

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/

/**
 * A reverse-DNS answer is chosen by whoever controls the client's address
 * space: only a well-formed host name is passed on (lower case), anything
 * else (control characters, shell metacharacters, an address) yields null.
 */
export function safeHostName(name: string): string | null {
  const lower = name.toLowerCase().replace(/\.$/, '')
  return HOSTNAME.test(lower) && isIP(lower) === 0 ? lower : null
}

/** How to ask for a host name: getnameinfo(3) by default (hosts file, then DNS). */
export type ReverseLookup = (ip: string) => Promise<string>

export const systemReverse: ReverseLookup = async ip => (await lookupService(ip, 0)).hostname

/**
 * The client's host name for PROXY_CLIENTNAME: the reverse lookup, bounded
 * by `timeoutMs`; the IP itself when there is no (valid) name in time.
 */
export async function clientName(ip: string, timeoutMs: number, reverse: ReverseLookup = systemReverse): Promise<string> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<null>(resolve => (timer = setTimeout(() => resolve(null), timeoutMs)))
  try {
    const name = await Promise.race([reverse(ip).catch(() => null), timeout])
    return (name === null ? null : safeHostName(name)) ?? ip
  } finally {
    clearTimeout(timer)
  }
}
