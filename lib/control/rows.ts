/**
 * The rows of `show services`, `show servers` and `show stats`, from the
 * aggregated counters (lib/stats/counters.ts), for lib/control/render.ts.
 * Services and servers sorted by name, so answers compare line by line.
 * Pure: the time and the disabled servers are passed in.
 */
import { sortedEntries, type ServiceStats, type Snapshot } from '../stats/counters.js'
import type { Row } from './render.js'

export const SERVICE_COLUMNS = ['service', 'active', 'connections', 'denied', 'received', 'sent', 'connect_failures'] as const
export const SERVER_COLUMNS = ['service', 'server', 'state', 'since', 'active', 'connections', 'connect_failures', 'received', 'sent'] as const
export const STATS_COLUMNS = ['services', 'servers', 'active', 'connections', 'denied', 'received', 'sent', 'connect_failures'] as const

const sum = (ns: readonly number[]): number => ns.reduce((a, b) => a + b, 0)

/** A service's byte and failure totals over its servers. */
function serverTotals(s: ServiceStats): { received: number; sent: number; connect_failures: number } {
  const servers = Object.values(s.servers)
  return {
    received: sum(servers.map(u => u.received)),
    sent: sum(servers.map(u => u.sent)),
    connect_failures: sum(servers.map(u => u.connectFailures)),
  }
}

export function serviceRows(snap: Snapshot): Row[] {
  return sortedEntries(snap.services).map(([service, s]) => ({
    service,
    active: s.active,
    connections: s.connections,
    denied: sum(Object.values(s.denied)),
    ...serverTotals(s),
  }))
}

/**
 * One row per upstream of each service. `state`: disabled (by `disable
 * server`, `HOST:PORT` in `disabled`), else up or down from the last connect
 * attempt, else unknown; `since`: seconds since that attempt (at `nowMs`).
 */
export function serverRows(snap: Snapshot, disabled: ReadonlySet<string>, nowMs: number): Row[] {
  return sortedEntries(snap.services).flatMap(([service, s]) =>
    sortedEntries(s.servers).map(([server, u]) => ({
      service,
      server,
      state: disabled.has(server) ? 'disabled' : u.up === null ? 'unknown' : u.up.up ? 'up' : 'down',
      since: u.up === null ? null : Math.max(0, Math.round((nowMs - u.up.at) / 1000)),
      active: u.active,
      connections: u.connections,
      connect_failures: u.connectFailures,
      received: u.received,
      sent: u.sent,
    })),
  )
}

/** `show stats`: one row of totals since start. */
export function statsRow(snap: Snapshot): Row {
  const services = serviceRows(snap)
  const total = (key: keyof (typeof services)[number]): number => sum(services.map(r => r[key] as number))
  return {
    services: services.length,
    servers: new Set(Object.values(snap.services).flatMap(s => Object.keys(s.servers))).size,
    active: total('active'),
    connections: total('connections'),
    denied: total('denied'),
    received: total('received'),
    sent: total('sent'),
    connect_failures: total('connect_failures'),
  }
}
