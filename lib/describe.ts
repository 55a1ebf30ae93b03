/** One-line descriptions of services, for `--check` and diagnostics. */
import { formatHostPort } from './address.js'
import type { ResolvedService } from './resolve.js'

/**
 * `LISTEN -> TARGETS (timeout T)`: `*:PORT` for the wildcard, a missing server
 * port filled in. Every configured service has servers (the parser insists).
 */
export function describeService(s: ResolvedService): string {
  const where = s.addresses === null ? `*:${s.port}` : s.addresses.map(a => formatHostPort(a, s.port)).join(' ')
  const servers = (s.servers as NonNullable<ResolvedService['servers']>).map(e => formatHostPort(e.host, e.port ?? s.port))
  return `${where} -> ${servers.join(',')} (timeout ${s.timeout})`
}
