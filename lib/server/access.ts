/**
 * Client access lists (`allow ADDR[/BITS] ...`, `deny ADDR[/BITS] ...`): a
 * client matching any deny item is refused; when there are allow items, a
 * client must match one. The lines accumulate: a service's own lines add to
 * the defaults given before the first `port`, and deny wins over allow
 * whatever the order of the lines.
 *
 * The lists are plain data (canonical `address/prefix` texts, as
 * lib/config/cidr.ts makes them), so they cross to the workers over IPC; the
 * matcher is built from them once per service, not per connection.
 */
import { canonicalIp } from '../config/address.js'
import { cidrMatcher, parseCidrList } from '../config/cidr.js'

export interface AccessLists {
  /** Empty: every client not denied may connect. */
  allow: readonly string[]
  deny: readonly string[]
}

export const OPEN_ACCESS: AccessLists = Object.freeze({ allow: Object.freeze([]), deny: Object.freeze([]) })

export type AccessKeyword = 'allow' | 'deny'

/**
 * `lists` with one more `allow` or `deny` line's value (addresses and
 * networks separated by commas or blanks). Throws TcpproxyError ERR_CONFIG
 * for a bad item; the caller adds the position.
 */
export function addAccessLine(lists: AccessLists, keyword: AccessKeyword, value: string): AccessLists {
  const items = parseCidrList(value)
  return { ...lists, [keyword]: [...new Set([...lists[keyword], ...items])] }
}

/** A service's lists: its own lines added to the defaults (given before the first `port`). */
export function combineAccess(defaults: AccessLists, own: AccessLists): AccessLists {
  return {
    allow: [...new Set([...defaults.allow, ...own.allow])],
    deny: [...new Set([...defaults.deny, ...own.deny])],
  }
}

/** Why a client was refused: it matches a deny item, or no allow item. */
export type AccessVerdict = { allowed: true } | { allowed: false; by: AccessKeyword }

const ALLOWED: AccessVerdict = Object.freeze({ allowed: true })

/**
 * The check of client addresses against `lists`, built once. The address
 * is the real client's (the PROXY header's source when one was accepted);
 * IPv4-mapped IPv6 is checked in its IPv4 form.
 */
export function accessChecker(lists: AccessLists): (client: string) => AccessVerdict {
  const denied = lists.deny.length === 0 ? null : cidrMatcher(lists.deny)
  const allowed = lists.allow.length === 0 ? null : cidrMatcher(lists.allow)
  return client => {
    const ip = canonicalIp(client)
    if (denied?.(ip) === true) return { allowed: false, by: 'deny' }
    if (allowed !== null && !allowed(ip)) return { allowed: false, by: 'allow' }
    return ALLOWED
  }
}

/** The text of the log line for a refused client: `access denied by acl: client= 10.0.0.9:4711 (...)`. */
export function accessDeniedText(client: string, verdict: { by: AccessKeyword }): string {
  const why = verdict.by === 'deny' ? 'on a deny list' : 'on no allow list'
  return `access denied by acl: client= ${client} (${why})`
}
