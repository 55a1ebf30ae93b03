/**
 * The control socket's line protocol, in the manner of HAProxy's stats
 * socket: a client sends one command per line, the server answers with a
 * text table (or JSON) followed by an empty line, so that `socat -
 * UNIX:PATH` and `tcpproxy ctl` speak it alike and a script knows where an
 * answer ends.
 *
 * Syntax (words are separated by blanks, lower case):
 *
 *     show sessions | show services | show servers | show stats
 *     kill session ID                 ID: a session id, as in the log (`id= N`)
 *     disable server HOST:PORT        HOST: a name, an IPv4 address or [IPv6]
 *     enable server HOST:PORT
 *     help
 *
 * Any command may end in `json` or `--json` (HAProxy writes `show stat json`;
 * `tcpproxy ctl --json` passes its option on as it is): the answer is then
 * one line of JSON. A line that is not a command gets one line of error
 * text naming what was wrong. Pure: parseCommand never throws.
 */
import { isIP } from 'node:net'
import { oneLineText } from '../errors.js'

export type ShowWhat = 'sessions' | 'services' | 'servers' | 'stats'

export type Command =
  | { kind: 'show'; what: ShowWhat; json: boolean }
  | { kind: 'kill-session'; id: number; json: boolean }
  | { kind: 'disable-server' | 'enable-server'; host: string; port: number; json: boolean }
  | { kind: 'help'; json: boolean }

export type Parsed = { ok: true; command: Command } | { ok: false; error: string }

/** Longer lines are refused without being looked at (a command is a few dozen bytes). */
export const MAX_LINE = 1024

const SHOWS: readonly string[] = ['sessions', 'services', 'servers', 'stats']

/** The command list, as `help` answers it. */
export const HELP_TEXT = [
  'show sessions              one row per live session',
  'show services              each service with its counters',
  'show servers               each upstream: state, active sessions, failures',
  'show stats                 totals since start',
  'kill session ID            end a session (logged closed-by= killed)',
  'disable server HOST:PORT   new sessions skip this server',
  'enable server HOST:PORT    new sessions may use it again',
  'help                       this list',
  'Any command may end in json (or --json) for one line of JSON.',
].join('\n')

const fail = (error: string): Parsed => ({ ok: false, error: oneLineText(error) })

/** `HOST:PORT` with `[v6]` for IPv6 addresses, or null. */
export function parseServer(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9_.-]+)):(\d{1,5})$/.exec(text)
  if (m === null) return null
  const port = Number(m[3])
  const host = m[1] ?? (m[2] as string)
  if (port < 1 || port > 65535) return null
  if (m[1] !== undefined && isIP(host) !== 6) return null
  return { host: host.toLowerCase(), port }
}

function formatServer(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}

/** One request line (without its newline; a trailing CR is dropped) to a command, or an error text. */
export function parseCommand(line: string): Parsed {
  if (line.length > MAX_LINE) return fail(`command too long (over ${MAX_LINE} characters)`)
  const words = line.replace(/\r$/, '').split(/[ \t]+/).filter(w => w !== '')
  const last = words[words.length - 1]
  const json = last === 'json' || last === '--json'
  if (json) words.pop()
  const [verb, object, arg, ...extra] = words
  const quoted = JSON.stringify(words.join(' '))
  if (verb === undefined) return fail(json ? `nothing before ${last}; try help` : 'empty command; try help')
  if (verb === 'help' && object === undefined) return { ok: true, command: { kind: 'help', json } }
  if (verb === 'show' && object !== undefined && SHOWS.includes(object) && arg === undefined) {
    return { ok: true, command: { kind: 'show', what: object as ShowWhat, json } }
  }
  if (verb === 'kill' && object === 'session' && extra.length === 0) {
    if (arg === undefined || !/^[1-9]\d{0,14}$/.test(arg)) return fail(`kill session: not a session id: ${JSON.stringify(arg ?? '')}`)
    return { ok: true, command: { kind: 'kill-session', id: Number(arg), json } }
  }
  if ((verb === 'disable' || verb === 'enable') && object === 'server' && extra.length === 0) {
    const server = parseServer(arg ?? '')
    if (server === null) return fail(`${verb} server: not HOST:PORT: ${JSON.stringify(arg ?? '')}`)
    return { ok: true, command: { kind: `${verb}-server`, ...server, json } }
  }
  return fail(`unknown command ${quoted}; try help`)
}

/** The line that parses back to `c` (ctl sends this). */
export function formatCommand(c: Command): string {
  const tail = c.json ? ' json' : ''
  if (c.kind === 'help') return `help${tail}`
  if (c.kind === 'show') return `show ${c.what}${tail}`
  if (c.kind === 'kill-session') return `kill session ${c.id}${tail}`
  return `${c.kind === 'disable-server' ? 'disable' : 'enable'} server ${formatServer(c.host, c.port)}${tail}`
}
