/**
 * The lines of tcpproxy.conf, as the original reads them: one directive per
 * line, a case-insensitive keyword and its value, `#` comment lines, blank
 * lines ignored. A `#` after a value is refused rather than taken as part of
 * it. What the keywords mean is the parser's (parse.ts).
 */
import { ConfigError } from '../errors.js'

/** A configuration line longer than this is refused rather than split (the original cut at 300 bytes). */
export const MAX_LINE = 4096

/** One directive: where it is, its keyword in lower case, and its value as written. */
export interface Directive {
  line: number
  keyword: string
  value: string
}

/** The lines of `text`: CRLF files parse too, the CR going with the line end. */
function linesOf(text: string): string[] {
  return text.split(/\r?\n/)
}

/** The number of the last line, for errors about the file as a whole. */
export function lastLine(text: string): number {
  const lines = linesOf(text)
  // A final newline ends the last line rather than starting another.
  return Math.max(1, lines.length - (lines[lines.length - 1] === '' ? 1 : 0))
}

/**
 * The directives of `text`, one at a time, so that errors come in the
 * order of the lines. Throws ConfigError at a line that is too long or
 * carries a comment after its value.
 */
export function* directives(text: string, file: string): Generator<Directive> {
  const lines = linesOf(text)
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1
    const line = (lines[i] as string).trim()
    if (line === '' || line.startsWith('#')) continue
    if (line.length > MAX_LINE) throw new ConfigError(file, lineNo, `line longer than ${MAX_LINE} characters`)
    // `#` starts a comment only at the start of a line (as in the original):
    // after a value it would become part of it, in an `exec` line program arguments.
    const comment = /\s#/.exec(line)
    if (comment !== null) {
      throw new ConfigError(file, lineNo, `a comment must be on a line of its own, not after a value: "${line.slice(comment.index).trim()}"`)
    }
    // `s`: the value may hold a lone CR or U+2028, which `.` alone does not match.
    const m = /^(\S+)(?:\s+(.*))?$/s.exec(line) as RegExpExecArray
    yield { line: lineNo, keyword: (m[1] as string).toLowerCase(), value: m[2] ?? '' }
  }
}

/** Throws ConfigError when the value of `d` is missing, or is more than one word where one is due. */
export function checkValue(d: Directive, file: string, oneWord: boolean): void {
  if (d.value === '') throw new ConfigError(file, d.line, `missing value for "${d.keyword}"`)
  if (oneWord && /\s/.test(d.value)) throw new ConfigError(file, d.line, `unexpected text after "${d.keyword} ${d.value.split(/\s/)[0]}"`)
}
