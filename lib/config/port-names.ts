/**
 * Port names from /etc/services. Node has no getservbyname(3), so the file is
 * parsed here (services(5): `name port/protocol [aliases...] [# comment]`).
 * Only the tcp entries matter to a TCP proxy.
 */
import { readFileSync } from 'node:fs'

/** Maps a tcp service name or alias to its port number. */
export type PortLookup = (name: string) => number | undefined

/** Parse services(5) text into a lookup table of tcp names and aliases. */
export function parseServices(text: string): Map<string, number> {
  const table = new Map<string, number>()
  for (const raw of text.split('\n')) {
    const hash = raw.indexOf('#')
    const words = (hash >= 0 ? raw.slice(0, hash) : raw).trim().split(/\s+/)
    const [name, spec, ...aliases] = words
    const m = spec === undefined ? null : /^(\d+)\/tcp$/i.exec(spec)
    if (name === undefined || m === null) continue
    const port = Number(m[1])
    if (port < 1 || port > 65535) continue
    // The first entry for a name wins, as getservbyname(3) returns the first match.
    for (const n of [name, ...aliases]) if (!table.has(n)) table.set(n, port)
  }
  return table
}

/** A lookup over the services file at `path`; a missing or unreadable file knows no names. */
export function loadServices(path = '/etc/services'): PortLookup {
  let table: Map<string, number>
  try {
    table = parseServices(readFileSync(path, 'utf8'))
  } catch {
    table = new Map()
  }
  return name => table.get(name)
}

/**
 * A port as written by a user: a decimal number 1-65535 or a service name.
 * Returns undefined when it is neither, so the caller can name the position.
 */
export function parsePort(text: string, lookup: PortLookup): number | undefined {
  if (/^\d+$/.test(text)) {
    const n = Number(text)
    return n >= 1 && n <= 65535 ? n : undefined
  }
  return lookup(text)
}

/** Why parsePort() found no port in `text`: a number out of range, or a name /etc/services does not know. */
export function badPortText(text: string): string {
  return /^\d+$/.test(text) ? `port ${text} is out of range (1-65535)` : `unknown port or service name: ${JSON.stringify(text)}`
}
