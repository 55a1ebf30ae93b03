/**
 * Turning interface host names into addresses, once at start-up: the
 * per-connection selection then compares canonical IPs only.
 */
import { lookup as dnsLookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { canonicalIp, formatHostPort } from './address.js'
import { cidrMatcher } from './cidr.js'
import type { ServiceDef } from './config.js'
import { ConfigError, errorText } from '../errors.js'

/**
 * A service's timeouts in milliseconds, as the runtime uses them. The
 * settings (and what describe and --check print) are in seconds; this is
 * the one place they are converted.
 */
export interface Timeouts {
  /** timeout: close after this long without a byte in either direction (0 = never). */
  idleMs: number
  /** connect-timeout: per upstream connect attempt (0 = the kernel's limit). */
  connectMs: number
  /** acp-timeout: the access control program's limit. */
  acpMs: number
  /** proxy-timeout: for a trusted peer's PROXY header to arrive. */
  proxyHeaderMs: number
  /** fail-timeout: the window of max-fails, and how long a server stays marked down. */
  failMs: number
  /** check-interval: between probes of a server marked down (0 = no probes). */
  checkMs: number
}

export interface ResolvedService extends ServiceDef {
  /** Canonical local addresses the service answers on; null = every address. */
  addresses: string[] | null
  /** Whether a peer must send a PROXY header (built once from acceptProxy); null = nobody. */
  trustsProxy: ((ip: string) => boolean) | null
  /** The timeouts in milliseconds (built once from the settings in seconds). */
  timeouts: Timeouts
}

/** Where a service listens, as --check and the JSON log's `service` field show it: `*:PORT`, or its addresses with the port. */
export function serviceName(s: Pick<ResolvedService, 'addresses' | 'port'>): string {
  return s.addresses === null ? `*:${s.port}` : s.addresses.map(a => formatHostPort(a, s.port)).join(' ')
}

/** A service as it crosses a process boundary (IPC): plain data only, nothing derived. */
export type ServiceData = Omit<ResolvedService, 'trustsProxy' | 'timeouts'>

/** Plain data for IPC. */
export function serviceData(s: ResolvedService): ServiceData {
  const { trustsProxy: _, timeouts: __, ...data } = s
  return data
}

/** Rebuild what plain data leaves out (the accept-proxy matcher, the timeouts in milliseconds). */
export function hydrateService(d: ServiceData): ResolvedService {
  return {
    ...d,
    trustsProxy: d.acceptProxy === null ? null : cidrMatcher(d.acceptProxy),
    timeouts: { idleMs: d.timeout * 1000, connectMs: d.connectTimeout * 1000, acpMs: d.acpTimeout * 1000, proxyHeaderMs: d.proxyTimeout * 1000, failMs: d.failTimeout * 1000, checkMs: d.checkInterval * 1000 },
  }
}

export type AddressLookup = (host: string) => Promise<string[]>

/** The system resolver (getaddrinfo), every address of every family. */
export const systemLookup: AddressLookup = async host =>
  (await dnsLookup(host, { all: true, verbatim: true })).map(r => r.address)

/** Resolve every service's interface; a name that does not resolve is an error at its line. */
export async function resolveServices(services: readonly ServiceDef[], lookup: AddressLookup = systemLookup): Promise<ResolvedService[]> {
  return Promise.all(
    services.map(async def => {
      const s = hydrateService({ ...def, addresses: null })
      if (s.iface === null) return s
      if (isIP(s.iface) !== 0) return { ...s, addresses: [s.iface] }
      try {
        const found = [...new Set((await lookup(s.iface)).map(canonicalIp))]
        // A service with no address would never be listened on nor selected.
        if (found.length === 0) throw new Error('no addresses')
        return { ...s, addresses: found }
      } catch (err) {
        throw new ConfigError(s.source.file, s.source.line, `cannot resolve interface "${s.iface}": ${errorText(err)}`)
      }
    }),
  )
}

/**
 * A service's identity in log marks, counters, `show` tables and across a
 * reload: its canonical `interface:port` (`*:25` for every address).
 */
export function serviceKey(s: Pick<ServiceDef, 'iface' | 'port'>): string {
  return formatHostPort(s.iface ?? '*', s.port)
}
