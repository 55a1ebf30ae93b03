/**
 * How an error about a service's settings is worded. A service is defined
 * either in a file, where an error names FILE:LINE and the settings as
 * written there (`"forge-addr yes"`), or on the command line, where it names
 * the options (`--forge-addr`). A problem is written once, against a
 * Wording, and rendered in the words of the place the service came from.
 *
 * Runtime checks (lib/server/upstream.ts, lib/transparent/sockets.ts) use
 * settingError from here: they need the wording, not the parser.
 */
import { ConfigError, TcpproxyError, type ErrorCode } from '../errors.js'
import type { ServiceDef } from './config.js'

/** The command-line options of the keywords that errors about a command-line service must name instead. */
export const KEYWORD_OPTIONS: Readonly<Record<string, string>> = Object.freeze({
  'redirect-mode': '-r',
  srcip: '-q',
  'forge-addr': '--forge-addr',
  'forge-port': '--forge-port',
  transparent: '--transparent',
})

/** How a reason names settings where the service was defined. */
export interface Wording {
  /** A setting as it is written: `"forge-addr yes"` in a file, `--forge-addr` on the command line. */
  setting: (keyword: string, value?: string) => string
  /** A setting to write instead, in running text: `redirect-mode accept`, `-r accept`. */
  advice: (keyword: string, value: string) => string
  /** What follows "a handler": ` ("exec")` in a file; nothing on the command line, where the handler is the server argument. */
  handler: string
}

/** Why a service is unusable (lib/config/rules.ts), in the words of a Wording. */
export type Problem = (w: Wording) => string

export const FILE_WORDING: Wording = Object.freeze({
  setting: (keyword: string, value?: string) => `"${value === undefined ? keyword : `${keyword} ${value}`}"`,
  advice: (keyword: string, value: string) => `${keyword} ${value}`,
  handler: ' ("exec")',
})

const option = (keyword: string): string => KEYWORD_OPTIONS[keyword] as string

export const OPTION_WORDING: Wording = Object.freeze({
  // A flag option (`--forge-addr`) is the "yes" of its keyword.
  setting: (keyword: string, value?: string) => (value === undefined || value === 'yes' ? option(keyword) : `${option(keyword)} ${value}`),
  advice: (keyword: string, value: string) => `${option(keyword)} ${value}`,
  handler: '',
})

/**
 * The error for a service's problem: a file's service at its interface
 * line (ERR_CONFIG), the command line's service as a usage error.
 */
export function problemError(s: ServiceDef, problem: Problem): TcpproxyError {
  if (s.source.line > 0) return new ConfigError(s.source.file, s.source.line, `service ${s.ifaceText} port ${s.port} ${problem(FILE_WORDING)}`)
  return new TcpproxyError('ERR_USAGE', `the command line's service ${problem(OPTION_WORDING)}`)
}

/**
 * An error about one setting of service `s`, found after parsing (at
 * start-up or reload): a file's service is named by FILE:LINE and
 * `fileReason`, a command-line service by the option of `keyword` and
 * `cliReason`.
 */
export function settingError(s: ServiceDef, keyword: string, fileReason: string, cliReason: string, code?: ErrorCode): ConfigError {
  if (s.source.line > 0) return new ConfigError(s.source.file, s.source.line, fileReason, code)
  return new ConfigError(`option ${option(keyword)}`, 0, cliReason, code)
}
