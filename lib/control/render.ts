/**
 * Answers of the control socket: rows as an aligned text table, the way
 * `ss` and HAProxy's `show` commands print them (a header, then one line per
 * row, columns two blanks apart, numbers right-aligned), or as one line of
 * JSON for machines. Every answer ends with an empty line (the protocol's
 * end of answer, lib/control/protocol.ts). Pure.
 */
import { oneLineText } from '../errors.js'

export type Cell = string | number | boolean | null
export type Row = Record<string, Cell>

/** A session's state in `show sessions`: running its ACP, its handler, relaying, or one direction closed. */
export type SessionState = 'acp' | 'handler' | 'relaying' | 'half-closed'

/** One row of `show sessions`; `server` is null until an upstream accepted (ACP, handler). */
export interface SessionRow extends Row {
  id: number
  service: string
  client: string
  client_port: number
  server: string | null
  received: number
  sent: number
  /** Seconds since accept. */
  age: number
  state: SessionState
}

export const SESSION_COLUMNS = ['id', 'service', 'client', 'client_port', 'server', 'received', 'sent', 'age', 'state'] as const

/** A cell as text: `-` for none; control characters (from a peer's host name) shown escaped, never raw. */
function cellText(c: Cell): string {
  if (c === null) return '-'
  return oneLineText(String(c))
}

/** Rows as a table with the given columns, in that order; an empty list is the header alone. */
export function renderTable(columns: readonly string[], rows: readonly Row[]): string {
  const cells = rows.map(r => columns.map(c => cellText(r[c] ?? null)))
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map(line => (line[i] as string).length)))
  const numeric = columns.map(c => rows.length > 0 && rows.every(r => typeof r[c] === 'number'))
  const line = (texts: readonly string[]): string =>
    texts
      .map((t, i) => (numeric[i] ? t.padStart(widths[i] as number) : t.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd()
  return [line(columns), ...cells.map(line)].join('\n') + '\n\n'
}

/** Rows (or any answer) as one line of JSON. */
export function renderJson(value: unknown): string {
  return JSON.stringify(value) + '\n\n'
}

/** `show sessions` in either form. */
export function renderSessions(rows: readonly SessionRow[], json: boolean): string {
  return json ? renderJson(rows) : renderTable(SESSION_COLUMNS, rows)
}

/** A one-line message (an error, `session 12 killed`), as text or as `{"error": ...}` / `{"ok": ...}`. */
export function renderMessage(text: string, json: boolean, isError: boolean): string {
  if (json) return renderJson(isError ? { error: text } : { ok: text })
  return `${oneLineText(text)}\n\n`
}
