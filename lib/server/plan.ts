/**
 * A listener's plan (lib/relay/front.ts plan(), front.c relayPlan): the
 * upstream the relay thread connects every connection it accepts there to
 * at once, instead of waiting for the event loop to ask (bench/RESULTS.md,
 * "Connection rate": that wait, behind whatever else the event loop was
 * doing, was the part of a short connection's life tcpproxy added).
 *
 * Only where the forwarder would give every connection on the listener the
 * same answer whoever the client is: one service on the port (the local
 * address chooses nothing), served whole by the thread (isPlain), nothing
 * that could refuse a client (max-connections, allow/deny, max-per-client)
 * and one server given as an address (its marks and the balance mode
 * change nothing: policy.ts tries a lone server whatever they say), and no
 * PROXY header to send (it names each client). The forwarder still serves
 * each such connection as any other (its lines, counters, policy, end):
 * the plan only starts the attempt it would have asked for. A connection
 * is served as the plan it was connected by says, even when a reload has
 * replaced it before the forwarder heard of the connection: no list or
 * limit refuses it (it was accepted when none applied).
 */
import type { Endpoint } from '../config/address.js'
import type { ResolvedService } from '../config/resolve.js'
import type { Plan } from '../relay/front.js'
import type { ServicePolicy } from './policy.js'
import { connectRequest, isPlain } from '../session/direct.js'

/** A plan with what the forwarder serves its connections by: the service it was made for, and its policy then. */
export interface ServicePlan extends Plan {
  readonly service: ResolvedService
  readonly policy: ServicePolicy
}

/**
 * The service whose connections on a listener of `port`, its socket bound
 * to address `bound` (canonical; null: a wildcard), can be planned, and
 * the attempt; null: each is asked for. A service of one address on a
 * wildcard socket (one systemd passed) selects by each connection's local
 * address: no plan.
 */
export function planFor(services: readonly ResolvedService[], port: number, bound: string | null, maxConnections: number | null): Omit<ServicePlan, 'policy'> | null {
  const on = services.filter(s => s.port === port)
  const s = on[0]
  if (on.length !== 1 || s === undefined || maxConnections !== null || !isPlain(s)) return null
  if (s.addresses !== null && (bound === null || !s.addresses.includes(bound))) return null
  if (s.maxConnections !== null || s.allow.length > 0 || s.deny.length > 0 || s.maxPerClient > 0 || s.sendProxy !== null) return null
  const servers = s.servers ?? []
  if (servers.length !== 1) return null
  return { service: s, request: connectRequest(s, servers[0] as Endpoint, port, null) }
}
