/**
 * Text for messages and log lines. Control characters in text that came
 * from outside (a client, a resolver, a program, a configuration file):
 * one definition of which characters are meant; what each user does with
 * them differs, so each has a helper. And how a duration is written.
 */

/**
 * C0 controls (newlines and TAB among them), DEL, C1 controls (NEL among
 * them) and the Unicode line and paragraph separators, which
 * JSON.stringify leaves as they are: each can break a line on a terminal
 * or in a log, or drive a terminal.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g
const CONTROL_RUN = new RegExp(`${CONTROL.source}+`, 'g')

/** True when `text` holds a control character. */
export function hasControl(text: string): boolean {
  return text.search(CONTROL) !== -1
}

/** Every control character written as `\uXXXX`: error messages show what was there. */
export function escapeControls(text: string): string {
  return text.replace(CONTROL, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** Every control character removed: a syslog line has no room for escapes a reader would not expect. */
export function removeControls(text: string): string {
  return text.replace(CONTROL, '')
}

/** Each run of control characters made one blank: a program's output read as words on one line. */
export function blankControls(text: string): string {
  return text.replace(CONTROL_RUN, ' ')
}

/** A duration for a message: milliseconds as seconds with their unit (`2.5 s`). */
export function secondsText(ms: number): string {
  return `${ms / 1000} s`
}
