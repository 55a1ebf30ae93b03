/**
 * The lines of a session's upstream connect, as the original wrote them:
 * each failed attempt, the failure of them all, the connect. Pure, shared by
 * both kinds of session (session.ts with Node's sockets, direct.ts with the
 * relay thread's), which log them with their id and who the connection is.
 */
import { errorText } from '../errors.js'
import { connectFields } from '../log/fields.js'
import type { EndLine } from './end-lines.js'

/** A failed attempt, logged before the next server is tried. */
export function connectFailedLine(server: string, error: Error): EndLine {
  return { tag: '-INFO', event: 'connect-failed', text: `can't connect to server ${server}, error= ${errorText(error)}`, fields: c => connectFields(c, server) }
}

/** Every attempt failed; `server`: the last one tried. */
export function connectionErrorLine(client: string, server: string, error: Error): EndLine {
  return { tag: '-ERR', event: 'connection-error', text: `connection error: client= ${client}, server= ${server}, error= ${errorText(error)}`, fields: c => connectFields(c, server) }
}

/** Connected; `timeout`: the service's idle timeout in seconds, as configured. */
export function connectLine(client: string, server: string, timeout: number): EndLine {
  return { tag: '+INFO', event: 'connect', text: `connect: client= ${client}, server= ${server}, timeout= ${timeout}`, fields: c => connectFields(c, server) }
}
