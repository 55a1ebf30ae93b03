/**
 * One request line of the control socket to its answer: parsed
 * (lib/control/protocol.ts), asked of the daemon (lib/control/backend.ts),
 * rendered (lib/control/render.ts, lib/control/rows.ts). An error answer
 * is one line starting with `error: ` (or JSON `{"error": ...}`), so that
 * `tcpproxy ctl` and a script can tell it from a table.
 */
import { formatHostPort } from '../config/address.js'
import { errorText } from '../errors.js'
import type { ControlBackend } from './backend.js'
import { HELP_TEXT, parseCommand, type Command } from './protocol.js'
import { renderJson, renderMessage, renderSessions, renderTable } from './render.js'
import { SERVER_COLUMNS, SERVICE_COLUMNS, STATS_COLUMNS, serverRows, serviceRows, statsRow } from './rows.js'

/** Text answers that are errors start with this. */
export const ERROR_PREFIX = 'error: '

export interface Answer {
  text: string
  error: boolean
}

/** What the answers need besides the backend: the servers disabled by command, and the clock. */
export interface AnswerContext {
  backend: ControlBackend
  disabled: Set<string>
  now: () => number
}

const ok = (text: string, json: boolean): Answer => ({ text: renderMessage(text, json, false), error: false })
const fail = (text: string, json: boolean): Answer => ({ text: renderMessage(json ? text : ERROR_PREFIX + text, json, true), error: true })

async function run(c: Command, cx: AnswerContext): Promise<Answer> {
  const { json } = c
  const table = (columns: readonly string[], rows: Parameters<typeof renderTable>[1], value: unknown = rows): Answer => ({
    text: json ? renderJson(value) : renderTable(columns, rows),
    error: false,
  })
  switch (c.kind) {
    case 'help':
      return { text: json ? renderJson({ help: HELP_TEXT.split('\n') }) : `${HELP_TEXT}\n\n`, error: false }
    case 'show': {
      if (c.what === 'sessions') return { text: renderSessions(await cx.backend.sessions(), json), error: false }
      const snap = cx.backend.total()
      if (c.what === 'services') return table(SERVICE_COLUMNS, serviceRows(snap))
      if (c.what === 'servers') return table(SERVER_COLUMNS, serverRows(snap, cx.disabled, cx.now()))
      const row = statsRow(snap)
      return table(STATS_COLUMNS, [row], row)
    }
    case 'kill-session':
      return (await cx.backend.kill(c.id)) ? ok(`session ${c.id} killed`, json) : fail(`no session ${c.id}`, json)
    default: {
      const server = formatHostPort(c.host, c.port)
      const disable = c.kind === 'disable-server'
      if (!(await (disable ? cx.backend.disable(server) : cx.backend.enable(server)))) return fail(`no service uses server ${server}`, json)
      if (disable) cx.disabled.add(server)
      else cx.disabled.delete(server)
      return ok(`server ${server} ${disable ? 'disabled' : 'enabled'}`, json)
    }
  }
}

/** The answer to one request line; never throws (a failing backend is an error answer). */
export async function answerLine(line: string, cx: AnswerContext): Promise<Answer> {
  const parsed = parseCommand(line)
  if (!parsed.ok) return fail(parsed.error, /(^|[ \t])(--)?json[ \t\r]*$/.test(line))
  try {
    return await run(parsed.command, cx)
  } catch (err) {
    return fail(errorText(err), parsed.command.json)
  }
}
