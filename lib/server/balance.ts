/**
 * The order in which a session tries a service's servers (`balance first |
 * roundrobin | leastconn | source`): the chosen server first, then the
 * failover in the mode's order. Pure: the caller passes each server's state
 * (health mark, active sessions) and owns the rotation between calls.
 *
 * Servers marked down are left out while any server is up. When every
 * server is down, all of them are tried in the mode's order: a mark never
 * refuses a client on its own.
 */
import { canonicalIp } from '../config/address.js'

export const BALANCE_MODES = ['first', 'roundrobin', 'leastconn', 'source'] as const

export type BalanceMode = (typeof BALANCE_MODES)[number]

/** What the chooser needs of one server, in the order of the service's server list. */
export interface Candidate {
  /** Stable identity, the same in every worker and across reloads: `host:port` (formatHostPort). */
  key: string
  /** Not marked down (lib/server/health.ts isUp). */
  up: boolean
  /** Sessions of this service connected to it now (leastconn). */
  active: number
}

/**
 * Where the next rotation starts (roundrobin, and leastconn among equally
 * loaded servers). One per service, kept by the caller for as long as the
 * service's server list is unchanged.
 */
export class Rotation {
  #next = 0

  /** The index to start from in a list of `n` servers. */
  start(n: number): number {
    return this.#next % n
  }

  /** The next rotation starts after `index`. */
  chose(index: number): void {
    this.#next = index + 1
  }
}

/** What a choice depends on besides the servers. */
export interface BalanceContext {
  rotation: Rotation
  /** The client's address: the PROXY header's source when one was accepted. */
  client: string
}

/**
 * The indices of `servers` in the order to try them. Empty only for an
 * empty list. Advances `context.rotation` for roundrobin and leastconn.
 */
export function tryOrder(mode: BalanceMode, servers: readonly Candidate[], context: BalanceContext): number[] {
  const n = servers.length
  if (n === 0) return []
  const all = servers.map((_, i) => i)
  const up = all.filter(i => (servers[i] as Candidate).up)
  const pool = up.length > 0 ? up : all
  switch (mode) {
    case 'first':
      return pool
    case 'roundrobin':
      return rotated(pool, context.rotation, n)
    case 'leastconn':
      return leastLoaded(pool, servers, context.rotation, n)
    case 'source':
      return byClientHash(pool, servers, canonicalIp(context.client))
  }
}

/** `pool` (ascending indices) from the first index at or after the rotation's start, wrapping round. */
function rotated(pool: readonly number[], rotation: Rotation, n: number): number[] {
  const start = rotation.start(n)
  const at = pool.findIndex(i => i >= start)
  const order = at <= 0 ? [...pool] : [...pool.slice(at), ...pool.slice(0, at)]
  rotation.chose(order[0] as number)
  return order
}

/**
 * Fewest active sessions first. Equally loaded servers are taken in
 * rotation, as HAProxy and nginx do: under light load every server has 0
 * sessions, and ties in list order would send every connection to the first.
 */
function leastLoaded(pool: readonly number[], servers: readonly Candidate[], rotation: Rotation, n: number): number[] {
  const start = rotation.start(n)
  const distance = (i: number): number => (i - start + n) % n
  const active = (i: number): number => (servers[i] as Candidate).active
  const order = [...pool].sort((a, b) => active(a) - active(b) || distance(a) - distance(b))
  rotation.chose(order[0] as number)
  return order
}

/**
 * Rendezvous (highest random weight) hashing: each server scores
 * hash(client, server key) and the highest score wins. A client keeps its
 * server while the set is unchanged, and when a server is left out only the
 * clients it had move, each to its own next-best server (which is also the
 * failover order). Keyed by the server's text, not its position, so the
 * mapping survives reordering and is the same in every worker.
 */
function byClientHash(pool: readonly number[], servers: readonly Candidate[], client: string): number[] {
  const score = new Map(pool.map(i => [i, mix32(fnv1a32(`${client} ${(servers[i] as Candidate).key}`))]))
  // sort is stable: equal scores (a 32-bit collision) keep the list order.
  return [...pool].sort((a, b) => (score.get(b) as number) - (score.get(a) as number))
}

/** 32-bit FNV-1a over the UTF-16 code units (addresses and server keys are ASCII). */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/**
 * MurmurHash3's 32-bit finaliser. FNV-1a's last bytes reach few high bits,
 * and rendezvous hashing compares whole scores of texts that differ only at
 * the end (the server key), so the scores are mixed before comparing.
 */
function mix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}
