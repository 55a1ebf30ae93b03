/**
 * The lines that end a relayed session, as the original wrote them: a
 * timeout, or the side whose error closed it, then `disconnect` with the
 * byte counts, the duration and who closed first (closed-by=). Pure: the
 * session logs them with its id and who the connection is.
 */
import { errorText } from '../errors.js'
import { connectFields, connectionFields, disconnectFields, type ConnectionFacts, type Fields } from '../log/fields.js'
import type { Tag } from '../log/record.js'
import type { EndResult } from './observer.js'

export interface EndLine {
  tag: Tag
  event: string
  text: string
  /** The JSON fields beyond who the connection is (lib/log/fields.ts). */
  fields: (c: ConnectionFacts) => Fields
}

/** The end of a session with `client` relayed to `server` for `seconds`. */
export function endLines(r: EndResult, client: string, server: string, seconds: number): EndLine[] {
  const lines: EndLine[] = []
  if (r.closedBy === 'timeout') {
    lines.push({ tag: '-ERR', event: 'timeout', text: `connection timed out: client= ${client}, server= ${server}`, fields: c => connectFields(c, server) })
  } else if (r.error !== null) {
    const side = r.closedBy === 'client-error' ? 'client' : 'server'
    lines.push({ tag: '-INFO', event: 'socket-error', text: `${side} close() detected, error= ${errorText(r.error)}`, fields: connectionFields })
  }
  lines.push({
    tag: '+OK',
    event: 'disconnect',
    text:
      `disconnect: client= ${client}, server= ${server}, received= ${r.received}, send= ${r.sent}, ` +
      `duration= ${seconds.toFixed(3)}, closed-by= ${r.closedBy}`,
    fields: c => disconnectFields(c, { ...r, server, seconds }),
  })
  return lines
}
