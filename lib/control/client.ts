/**
 * The client side of the control socket, for `tcpproxy ctl`: send one
 * command line, read its answer up to the empty line that ends it.
 */
import { createConnection } from 'node:net'
import { TcpproxyError } from '../errors.js'
import { ERROR_PREFIX, type Answer } from './answer.js'

/** Seconds an answer may take (a supervisor asks every worker). */
export const ANSWER_TIMEOUT_MS = 10_000

/** The few ways reaching a socket fails, in words; anything else as Node says it. */
const REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  ECONNREFUSED: 'connection refused (no tcpproxy serves it)',
  EACCES: 'permission denied',
  ENOTSOCK: 'not a socket',
}

/** Whether an answer is an error: `error: ...` text, or JSON `{"error": ...}`. */
export function isErrorAnswer(text: string): boolean {
  return text.startsWith(ERROR_PREFIX) || text.startsWith('{"error":')
}

/** Send `line` to the control socket at `path`; the answer, or ERR_IO naming the path. */
export function request(path: string, line: string, timeoutMs = ANSWER_TIMEOUT_MS): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const c = createConnection(path)
    let text = ''
    const failed = (reason: string): void => {
      c.destroy()
      reject(new TcpproxyError('ERR_IO', `control socket ${path}: ${reason}`))
    }
    c.setTimeout(timeoutMs, () => failed(`no answer within ${timeoutMs / 1000} s`))
    c.setEncoding('utf8')
    c.on('connect', () => c.write(`${line}\n`))
    c.on('data', (chunk: string) => {
      text += chunk
      if (!text.endsWith('\n\n')) return
      c.end()
      resolve({ text, error: isErrorAnswer(text) })
    })
    c.on('end', () => failed('closed before the answer ended'))
    c.on('error', (err: NodeJS.ErrnoException) => failed(REASONS[err.code as string] ?? err.message))
  })
}
