/**
 * Upstreams an admin took out of rotation (`disable server HOST:PORT` on
 * the control socket): new sessions skip them, open ones go on. Kept by
 * each forwarder (each worker gets the command), named as the counters
 * name servers: formatHostPort(host, port).
 */
import { formatHostPort, type Endpoint } from '../config/address.js'
import type { ResolvedService } from '../config/resolve.js'

/** An upstream's name; a server without a port takes the service's (lib/server/upstream.ts). */
function nameOf(e: Endpoint, service: ResolvedService): string {
  return formatHostPort(e.host, e.port ?? service.port)
}

export class DisabledServers {
  readonly #names = new Set<string>()

  /** Take `server` out of rotation; false when none of `services` has it. */
  disable(server: string, services: readonly ResolvedService[]): boolean {
    if (!services.some(s => (s.servers ?? []).some(e => nameOf(e, s) === server))) return false
    this.#names.add(server)
    return true
  }

  /** Put it back; false when it was not disabled. */
  enable(server: string): boolean {
    return this.#names.delete(server)
  }

  /**
   * The servers a new session of `service` may try: its own list (the same
   * array, or null for a handler service) when none is disabled, empty when
   * every one is.
   */
  usable(service: ResolvedService): Endpoint[] | null {
    const all = service.servers
    if (this.#names.size === 0 || all === null) return all
    const left = all.filter(e => !this.#names.has(nameOf(e, service)))
    return left.length === all.length ? all : left
  }
}
