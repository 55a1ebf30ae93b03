/**
 * `max-per-client N`: concurrent sessions per client address, for one
 * service. Only clients with sessions open have an entry (it goes when the
 * count reaches zero), so memory follows the open sessions, not the number
 * of clients ever seen.
 *
 * Sessions are counted even with no limit (0), so that a reload which sets
 * one (setLimit) knows the sessions already open. Pure: no timers.
 */
import { canonicalIp } from '../config/address.js'

export class ClientLimit {
  #limit: number
  readonly #open = new Map<string, number>()

  /** `limit` 0: no limit. */
  constructor(limit: number) {
    this.#limit = limit
  }

  /** A reload's new limit; the open sessions stay counted. */
  setLimit(limit: number): void {
    this.#limit = limit
  }

  /**
   * Count a new session of `client`; false (and nothing counted) when the
   * client already has `limit` sessions, unless `always` (a session that
   * may not be refused any more). Each true needs one release.
   */
  acquire(client: string, always = false): boolean {
    const ip = canonicalIp(client)
    const n = this.#open.get(ip) ?? 0
    if (!always && this.#limit > 0 && n >= this.#limit) return false
    this.#open.set(ip, n + 1)
    return true
  }

  /** A session of `client` that acquire admitted has ended. */
  release(client: string): void {
    const ip = canonicalIp(client)
    const n = this.#open.get(ip)
    if (n === undefined) return
    if (n > 1) this.#open.set(ip, n - 1)
    else this.#open.delete(ip)
  }

  /** Open sessions of `client`. */
  sessions(client: string): number {
    return this.#open.get(canonicalIp(client)) ?? 0
  }

  /** Clients with sessions open (the entries held). */
  get clients(): number {
    return this.#open.size
  }
}
