/**
 * What handler and access control programs learn about their connection:
 * the PROXY_* environment (prefix changeable with -v / setenv), and the
 * client's host name. Everything else of the environment is inherited.
 */
import { lookup, lookupService } from 'node:dns/promises'
import { isIP } from 'node:net'
import { canonicalIp, hostNamePattern } from '../config/address.js'

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

// Stricter than a configured host name: no `_`, as the name reaches programs (PROXY_CLIENTNAME).
const HOSTNAME = hostNamePattern({ underscore: false, finalDot: false })

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
/** How to ask for a name's addresses: getaddrinfo(3) by default. */
export type ForwardLookup = (name: string) => Promise<string[]>

export const systemReverse: ReverseLookup = async ip => (await lookupService(ip, 0)).hostname
export const systemForward: ForwardLookup = async name => (await lookup(name, { all: true })).map(a => a.address)

/**
 * Lookups running at once, by default. The system resolver runs in libuv's
 * thread pool (4 threads unless UV_THREADPOOL_SIZE says otherwise), and a
 * PTR query that is never answered holds its thread for the resolver's
 * whole timeout, whatever PROXY_CLIENTNAME's own bound: two leave the rest
 * of the pool to upstream host names and the disk.
 */
export const NAME_LOOKUPS = 2

/**
 * Client host names for PROXY_CLIENTNAME. A reverse-DNS answer is chosen by
 * whoever controls the client's address space, so it counts only when it
 * is forward-confirmed: a well-formed name whose own addresses include the
 * client's (FCrDNS). At most `concurrency` lookups (reverse and forward) run
 * at once; a connection whose lookup waited or ran longer than its bound
 * goes on with the IP, and a lookup still running keeps its place until the
 * resolver gives up, so slow DNS cannot take more threads.
 */
export class ClientNames {
  #running = 0
  readonly #waiting: Array<() => void> = []

  constructor(
    readonly reverse: ReverseLookup = systemReverse,
    readonly forward: ForwardLookup = systemForward,
    readonly concurrency: number = NAME_LOOKUPS,
  ) {}

  /** The confirmed host name of `ip`, or `ip` itself when there is none within `timeoutMs` (waiting included). */
  async name(ip: string, timeoutMs: number): Promise<string> {
    let timer: NodeJS.Timeout | undefined
    let start: (() => void) | null = null
    const late = new Promise<null>(resolve => {
      timer = setTimeout(() => {
        // Dropped while still waiting for a place: it never runs.
        if (start !== null) this.#waiting.splice(this.#waiting.indexOf(start), 1)
        resolve(null)
      }, timeoutMs)
    })
    const lookup = new Promise<void>(resolve => {
      if (this.#running < this.concurrency) {
        this.#running++
        return resolve()
      }
      start = resolve
      this.#waiting.push(resolve)
    }).then(() => {
      start = null
      return this.#confirmed(ip).finally(() => this.#next())
    })
    try {
      return (await Promise.race([lookup, late])) ?? ip
    } finally {
      clearTimeout(timer)
    }
  }

  /** The place of a finished lookup goes to the longest waiting one, if any. */
  #next(): void {
    const waiting = this.#waiting.shift()
    if (waiting === undefined) this.#running--
    else waiting()
  }

  /** The reverse name of `ip` if it is well-formed and its forward lookup includes `ip`; else null. */
  async #confirmed(ip: string): Promise<string | null> {
    try {
      const name = safeHostName(await this.reverse(ip))
      if (name === null) return null
      const addresses = await this.forward(name)
      return addresses.some(a => canonicalIp(a) === canonicalIp(ip)) ? name : null
    } catch {
      // No name (ENOTFOUND), or no answer: the IP stands for the client.
      return null
    }
  }
}
