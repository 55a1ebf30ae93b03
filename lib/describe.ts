/** One-line descriptions of services, for `--check` and diagnostics. */
import { formatHostPort } from './address.js'
import type { ResolvedService } from './resolve.js'

/**
 * `LISTEN -> TARGETS (timeout T[, more settings])`: `*:PORT` for the
 * wildcard, a missing server port filled in, `exec PROGRAM ARGS` for a
 * handler (every configured service has one or the other). Settings at
 * their defaults are left out.
 */
export function describeService(s: ResolvedService): string {
  const where = s.addresses === null ? `*:${s.port}` : s.addresses.map(a => formatHostPort(a, s.port)).join(' ')
  const target =
    s.exec !== null
      ? `exec ${s.exec.join(' ')}`
      : (s.servers as NonNullable<ResolvedService['servers']>).map(e => formatHostPort(e.host, e.port ?? s.port)).join(',')
  const extra = [
    `timeout ${s.timeout}`,
    ...(s.acp === null ? [] : [`acp ${s.acp.join(' ')}`]),
    ...(s.acceptProxy === null ? [] : [`accept-proxy ${s.acceptProxy.join(',')}`]),
    ...(s.sendProxy === null ? [] : [`send-proxy ${s.sendProxy}`]),
    ...(s.writefile === null ? [] : [`writefile ${s.writefile}`]),
  ]
  return `${where} -> ${target} (${extra.join(', ')})`
}
