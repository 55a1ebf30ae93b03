import t from 'tap'
import { PassThrough } from 'node:stream'
import { openLogger, parseFacility, type LogSettings } from '../../lib/log/open.js'

const base: LogSettings = { target: 'stderr', ident: 'tp', debug: false, format: 'text', syslogSocket: '/nonexistent/log', facility: 2 }

t.test('facility names map to their numbers; an unknown one is a usage error listing them', async t => {
  t.equal(parseFacility('mail'), 2)
  t.equal(parseFacility('local7'), 23)
  t.throws(() => parseFacility('email'), { code: 'ERR_USAGE', message: /^option --syslog-facility: unknown facility "email" \(kern, user, mail, .*local7\)$/ })
})

t.test('the stderr target writes ident[pid] lines; closing it writes what is pending', async t => {
  const out = new PassThrough()
  let text = ''
  out.on('data', d => (text += d))
  const log = openLogger(base, 42, out)
  log.log({ tag: '+INFO', event: 'x', text: 'hello' })
  await log.close()
  t.equal(text, 'tp[42]: +INFO: hello\n')
})

t.test('the syslog target falls back to the given stream when syslog cannot be reached', async t => {
  const out = new PassThrough()
  let text = ''
  out.on('data', d => (text += d))
  const log = openLogger({ ...base, target: 'syslog' }, 43, out)
  log.log({ tag: '-ERR', event: 'x', text: 'lost?' })
  await log.close()
  t.match(text, /tp\[43\]: -ERR: syslog unreachable \(.*\), logging to stderr\n/)
  t.match(text, 'tp[43]: -ERR: lost?\n')
})
