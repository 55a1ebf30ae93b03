/**
 * The one place tcpproxy's errors are defined. Every error the program reports
 * to a user carries a stable `code` (documented in the man page, EXIT STATUS
 * and DIAGNOSTICS) so scripts and tests never have to match on prose.
 */
import { getSystemErrorMap } from 'node:util'
import { escapeControls } from './text.js'

/** Stable error codes, with the process exit status each one leads to. */
export const ERROR_CODES = {
  /** Bad command line: unknown option, missing value, extra argument. */
  ERR_USAGE: 2,
  /** A configuration file (or a value given on the command line) is invalid. */
  ERR_CONFIG: 2,
  /** A feature this installation cannot provide (transparent proxying without the native addon). */
  ERR_NOT_SUPPORTED: 2,
  /** A listening socket could not be bound. */
  ERR_BIND: 1,
  /** A file the program needs could not be read or written. */
  ERR_IO: 1,
  /** A PROXY protocol header was missing, malformed or too slow. */
  ERR_PROXY_HEADER: 1,
  /** The process could not take on the configured user and group. */
  ERR_PRIVILEGES: 1,
  /** Anything else that stops the program from running. */
  ERR_RUNTIME: 1,
} as const

export type ErrorCode = keyof typeof ERROR_CODES

/**
 * `text` with every control character (lib/text.ts) written as `\uXXXX`: a
 * value quoted into a message must not break it into several lines on a
 * terminal or in a log.
 */
export const oneLineText: (text: string) => string = escapeControls

/** Base class: a one-line, user-facing message plus a stable code. */
export class TcpproxyError extends Error {
  override name = 'TcpproxyError'
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(oneLineText(message), options)
    this.code = code
  }

  /** The exit status a command-line run ends with when this error stops it. */
  get exitCode(): number {
    return ERROR_CODES[this.code]
  }
}

/**
 * An error at a position in a configuration file, rendered `FILE:LINE: message`;
 * line 0 stands for a value from the command line, rendered `OPTION: message`.
 */
export class ConfigError extends TcpproxyError {
  override name = 'ConfigError'
  readonly file: string
  readonly line: number
  /** The message without the position prefix. */
  readonly reason: string

  constructor(file: string, line: number, reason: string, code: ErrorCode = 'ERR_CONFIG') {
    super(code, line > 0 ? `${file}:${line}: ${reason}` : `${file}: ${reason}`)
    this.file = file
    this.line = line
    this.reason = oneLineText(reason)
  }
}

/** A malformed PROXY protocol header; `offset` is the byte where parsing stopped. */
export class ProxyHeaderError extends TcpproxyError {
  override name = 'ProxyHeaderError'
  readonly offset: number

  constructor(reason: string, offset: number) {
    super('ERR_PROXY_HEADER', `bad PROXY header at byte ${offset}: ${reason}`)
    this.offset = offset
  }
}

/** errno names (`EACCES`) to what they mean (`permission denied`), as libuv words them. */
const ERRNO_TEXT = new Map([...getSystemErrorMap().values()])

/**
 * What an errno name means, with the name for searching: `permission
 * denied (EACCES)`. Any other text is returned as it is.
 */
export function errnoText(code: string): string {
  const text = ERRNO_TEXT.get(code)
  return text === undefined ? code : `${text} (${code})`
}

/** The text of any thrown value, for messages and log lines: a bare errno name is spelled out. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message
  return errnoText(String(err))
}

/** True for running out of file descriptors (EMFILE per process, ENFILE system-wide). */
export function isOutOfDescriptors(err: unknown): boolean {
  const code = errorCode(err)
  return code === 'EMFILE' || code === 'ENFILE'
}

/** The errno code of a system error (`EADDRINUSE`), else its text. */
export function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | null)?.code ?? errorText(err)
}
