/**
 * Control characters (lib/text.ts): one set, four treatments.
 */
import t from 'tap'
import { blankControls, escapeControls, hasControl, removeControls, secondsText } from '../lib/text.js'

// C0 (NUL, TAB, LF, CR, ESC, US), DEL, C1 (first, NEL, CSI, last), LINE and PARAGRAPH SEPARATOR.
const CONTROLS = ['\u0000', '\t', '\n', '\r', '\u001b', '\u001f', '\u007f', '\u0080', '\u0085', '\u009b', '\u009f', '\u2028', '\u2029']
// Printable neighbours of the ranges, and non-ASCII text.
const PRINTABLE = [' ', '~', '\u00a0', 'é', '\u2027', '\u202a', '🙂']

t.test('hasControl finds each control character and nothing printable', async t => {
  for (const c of CONTROLS) t.ok(hasControl(`a${c}b`), escapeControls(c))
  for (const p of PRINTABLE) t.notOk(hasControl(`a${p}b`), p)
  t.notOk(hasControl(''))
  t.ok(hasControl('x\u0000'))
  t.ok(hasControl('x\u0000'), 'asked again: no state is kept between calls')
})

t.test('escapeControls writes each as \\uXXXX, removeControls drops it, blankControls makes a run one blank', async t => {
  t.equal(escapeControls('a\nb\u2028c\u0085d\te'), 'a\\u000ab\\u2028c\\u0085d\\u0009e')
  t.equal(removeControls('a\nb\u2028c\u0085d\te'), 'abcde')
  t.equal(blankControls('a\r\nb\u2028\u2029c\u001b[31md'), 'a b c [31md')
  const printable = PRINTABLE.join('')
  t.equal(escapeControls(printable), printable)
  t.equal(removeControls(printable), printable)
  t.equal(blankControls(printable), printable)
})

t.test('secondsText writes milliseconds as seconds with the unit', async t => {
  t.equal(secondsText(10_000), '10 s')
  t.equal(secondsText(2500), '2.5 s')
  t.equal(secondsText(0), '0 s')
})
