/**
 * A tcpproxy started by a handler logs as itself (lib/log/nested.ts): the pure
 * parts; test/e2e/programs.test.ts runs the service-routing example with a
 * foreground and a syslog parent.
 */
import t from 'tap'
import { PassThrough } from 'node:stream'
import { streamLogger } from '../../lib/log/logger.js'
import type { LogSettings } from '../../lib/log/open.js'
import { isOwnLogLine, logPlaceOf, nestedLogSettings } from '../../lib/log/nested.js'

t.test('isOwnLogLine: a text log line carrying the handler\'s own pid', async t => {
  t.ok(isOwnLogLine('tcpproxy[42]: +OK: disconnect: client= 1.2.3.4, id= 1', 42))
  t.ok(isOwnLogLine('smtp-gw[42]: ready', 42), 'any log name')
  t.notOk(isOwnLogLine('tcpproxy[43]: ready', 42), 'another pid')
  t.notOk(isOwnLogLine('tcpproxy[42] ready', 42), 'not the shape')
  t.notOk(isOwnLogLine('some text [42]: x', 42), 'a name has no blanks')
  t.notOk(isOwnLogLine('tcpproxy[42]: ready', undefined), 'no pid: the handler never started')
})

const stderr: LogSettings = { target: 'stderr', ident: 'tcpproxy', debug: false, format: 'text', syslogSocket: '/dev/log', facility: 16 }

t.test('the place told to programs, and the inner settings it leads to', async t => {
  t.equal(logPlaceOf(stderr), 'stderr')
  t.equal(logPlaceOf({ ...stderr, target: 'syslog', facility: 24, syslogSocket: '/run/x log' }), 'syslog 24 /run/x log')
  const none = { socket: false, facility: false }
  t.same(nestedLogSettings(stderr, 'syslog 24 /run/x log', none), { ...stderr, target: 'syslog', facility: 24, syslogSocket: '/run/x log' })
  t.same(nestedLogSettings(stderr, 'syslog 24 /run/log', { socket: true, facility: true }), { ...stderr, target: 'syslog' }, 'its own options win')
  t.equal(nestedLogSettings(stderr, 'stderr', none), stderr)
  t.equal(nestedLogSettings(stderr, undefined, none), stderr)
  t.equal(nestedLogSettings(stderr, 'syslog x /dev/log', none), stderr, 'malformed: ignored')
  const toSyslog = { ...stderr, target: 'syslog' as const }
  t.equal(nestedLogSettings(toSyslog, 'syslog 24 /run/log', none), toSyslog, 'already syslog (stderr is the client): unchanged')
})

t.test('a text stream logger passes a line through unchanged; a JSON one cannot', async t => {
  const out = new PassThrough()
  const logger = streamLogger(out, 'tcpproxy', 7, false)
  logger.passThrough?.('tcpproxy[42]: +OK: disconnect: id= 1')
  logger.log({ tag: '+INFO', event: 'x', text: 'mine', id: 3 })
  logger.flush()
  t.equal(out.read()?.toString(), 'tcpproxy[42]: +OK: disconnect: id= 1\ntcpproxy[7]: +INFO: mine, id= 3\n')
  t.equal(streamLogger(out, 'tcpproxy', 7, false, 'json').passThrough, undefined)
})
