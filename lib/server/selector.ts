/**
 * Which service a connection belongs to, and which sockets to listen on.
 * Pure: built once at start-up (and on reload), consulted per connection.
 */
import type { ListenSpec } from '../config/address.js'
import { ConfigError } from '../errors.js'

/** What selection needs of a service: its port and its local addresses (null = any). */
export interface Selectable {
  port: number
  addresses: readonly string[] | null
  ifaceText: string
  /** Takes TPROXY'd connections: its listener must be transparent. */
  transparent?: boolean
  /** Where it is defined, for errors. */
  source?: { file: string; line: number }
}

/**
 * A lookup from (local address, local port) to the service. An exact
 * interface match wins over the wildcard whatever the order of the lines
 * (the original's code, not its man page). Addresses must be canonical
 * (see canonicalIp), so IPv4-mapped IPv6 addresses match their IPv4 form.
 * Two services whose interfaces mean the same address on one port are a
 * configuration error at the second one's line (--check, the start and a
 * reload build it before anything changes: lib/main.ts prepare()).
 */
export function buildSelector<S extends Selectable>(services: readonly S[]): (address: string, port: number) => S | undefined {
  const exact = new Map<string, S>()
  const wildcard = new Map<number, S>()
  for (const s of services) {
    if (s.addresses === null) {
      wildcard.set(s.port, s)
      continue
    }
    for (const a of s.addresses) {
      const key = `${a} ${s.port}`
      const other = exact.get(key)
      if (other !== undefined && other !== s) {
        throw new ConfigError(
          s.source?.file ?? 'configuration',
          s.source?.line ?? 0,
          `interfaces "${other.ifaceText}" and "${s.ifaceText}" both mean ${a} on port ${s.port}`,
        )
      }
      exact.set(key, s)
    }
  }
  return (address, port) => exact.get(`${address} ${port}`) ?? wildcard.get(port)
}

/**
 * One listener per distinct port: on the service's own address(es) when a
 * single service uses the port, else on the wildcard (every address of every
 * family), where selection sorts the connections out.
 */
export function planListeners(services: readonly Selectable[]): ListenSpec[] {
  const byPort = new Map<number, Selectable[]>()
  for (const s of services) {
    const list = byPort.get(s.port)
    if (list === undefined) byPort.set(s.port, [s])
    else list.push(s)
  }
  const specs: ListenSpec[] = []
  for (const [port, list] of byPort) {
    const only = list.length === 1 ? (list[0] as Selectable) : null
    // A shared wildcard listener is transparent when one of its services needs it.
    const transparent = list.some(s => s.transparent === true)
    const spec = (address: string | null): ListenSpec => (transparent ? { address, port, transparent } : { address, port })
    if (only?.addresses) for (const address of only.addresses) specs.push(spec(address))
    else specs.push(spec(null))
  }
  return specs
}
