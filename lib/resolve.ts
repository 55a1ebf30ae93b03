/**
 * Turning interface host names into addresses, once at start-up: the
 * per-connection selection then compares canonical IPs only.
 */
import { lookup as dnsLookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { canonicalIp } from './address.js'
import type { ServiceDef } from './config.js'
import { ConfigError, errorText } from './errors.js'

export interface ResolvedService extends ServiceDef {
  /** Canonical local addresses the service answers on; null = every address. */
  addresses: string[] | null
}

export type AddressLookup = (host: string) => Promise<string[]>

/** The system resolver (getaddrinfo), every address of every family. */
export const systemLookup: AddressLookup = async host =>
  (await dnsLookup(host, { all: true, verbatim: true })).map(r => r.address)

/** Resolve every service's interface; a name that does not resolve is an error at its line. */
export async function resolveServices(services: readonly ServiceDef[], lookup: AddressLookup = systemLookup): Promise<ResolvedService[]> {
  return Promise.all(
    services.map(async s => {
      if (s.iface === null) return { ...s, addresses: null }
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
