/** One-line descriptions of services, for `--check` and diagnostics. */
import { formatHostPort } from '../config/address.js'
import { DEFAULT_SETTINGS } from '../config/config.js'
import { serviceName, type ResolvedService } from '../config/resolve.js'

/**
 * `LISTEN -> TARGETS (timeout T[, more settings])`: `*:PORT` for the
 * wildcard, a missing server port filled in, `exec PROGRAM ARGS` for a
 * handler, "the original destination" for a forward-only service without
 * a server. The idle timeout is always shown; acp, accept-proxy,
 * send-proxy, writefile, redirect-mode, transparent, srcip and forge-addr
 * (with forge-port) only when set; the other timeouts and max-connections
 * not at all. The upstream and client policy (balance, max-fails and
 * fail-timeout, check-interval, allow, deny, max-per-client) only where it differs from
 * the defaults, so a service without it reads as before.
 */
export function describeService(s: ResolvedService): string {
  const where = serviceName(s)
  const target =
    s.exec !== null
      ? `exec ${s.exec.join(' ')}`
      : s.servers === null
        ? 'the original destination'
        : s.servers.map(e => formatHostPort(e.host, e.port ?? s.port)).join(',')
  const extra = [
    `timeout ${s.timeout}`,
    ...(s.keepalive === 0 ? [] : [`keepalive ${s.keepalive}`]),
    ...(s.acp === null ? [] : [`acp ${s.acp.join(' ')}`]),
    ...(s.acceptProxy === null ? [] : [`accept-proxy ${s.acceptProxy.join(',')}`]),
    ...(s.sendProxy === null ? [] : [`send-proxy ${s.sendProxy}`]),
    ...(s.writefile === null ? [] : [`writefile ${s.writefile}`]),
    ...(s.redirectMode === 'none' ? [] : [`redirect-mode ${s.redirectMode}`]),
    ...(s.transparent ? ['transparent'] : []),
    ...(s.sourceAddress === null ? [] : [`srcip ${s.sourceAddress}`]),
    ...(s.forgeAddr ? [s.forgePort ? 'forge-addr, forge-port' : 'forge-addr'] : []),
    ...(s.balance === DEFAULT_SETTINGS.balance ? [] : [`balance ${s.balance}`]),
    ...(s.maxFails === DEFAULT_SETTINGS.maxFails && s.failTimeout === DEFAULT_SETTINGS.failTimeout ? [] : [`max-fails ${s.maxFails}`, `fail-timeout ${s.failTimeout}`]),
    ...(s.checkInterval === 0 ? [] : [`check-interval ${s.checkInterval}`]),
    ...(s.allow.length === 0 ? [] : [`allow ${s.allow.join(',')}`]),
    ...(s.deny.length === 0 ? [] : [`deny ${s.deny.join(',')}`]),
    ...(s.maxPerClient === 0 ? [] : [`max-per-client ${s.maxPerClient}`]),
  ]
  return `${where} -> ${target} (${extra.join(', ')})`
}
