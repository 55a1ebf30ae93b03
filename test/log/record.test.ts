/**
 * Log records: the classic text and the JSON line.
 */
import t from 'tap'
import { MAX_MESSAGE_BYTES, formatText, jsonLine, type LogEntry } from '../../lib/log/record.js'

t.test('formatText writes TAG: text', async t => {
  t.equal(formatText({ tag: '+INFO', event: 'connect', text: 'connect: client= 127.0.0.1' }), '+INFO: connect: client= 127.0.0.1')
  t.equal(formatText({ tag: '-ERR', event: 'error', text: "can't connect" }), "-ERR: can't connect")
})

t.test('formatText writes untagged lines without a colon', async t => {
  t.equal(formatText({ tag: '', event: 'bound', text: 'bound to 127.0.0.1:8025' }), 'bound to 127.0.0.1:8025')
})

t.test('formatText appends the connection id', async t => {
  t.equal(formatText({ tag: '+OK', event: 'disconnect', text: 'disconnect: client= ::1', id: 7 }), '+OK: disconnect: client= ::1, id= 7')
  t.equal(formatText({ tag: '', event: 'x', text: 'untagged', id: 0 }), 'untagged, id= 0', 'id 0 is an id too')
})
t.test('jsonLine: stable keys, levels from tags, fields after id', async t => {
  const now = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678))
  t.equal(
    jsonLine(
      {
        tag: '+OK',
        event: 'disconnect',
        id: 9,
        text: 'disconnect: client= ::1',
        fields: { client: '::1', server: 'example.org:25', received: 1, sent: 2, duration: 0.5, closedBy: 'server', reason: null },
      },
      now,
    ),
    '{"time":"2024-01-02T03:04:05.678Z","level":"info","event":"disconnect","id":9,"client":"::1","server":"example.org:25",' +
      '"received":1,"sent":2,"duration":0.5,"closedBy":"server","reason":null,"message":"disconnect: client= ::1"}',
  )
  t.equal(jsonLine({ tag: '', event: 'ready', text: 'ready' }, now), '{"time":"2024-01-02T03:04:05.678Z","level":"notice","event":"ready","message":"ready"}')
  const level = (tag: LogEntry['tag']): unknown => (JSON.parse(jsonLine({ tag, event: 'e', text: '' }, now)) as { level: string }).level
  t.same(
    (['-ERR', '-INFO', '', '+INFO', '+OK', '+DEBUG'] as const).map(level),
    ['err', 'warning', 'notice', 'info', 'info', 'debug'],
  )
})

t.test('jsonLine: fields cannot take over the fixed keys', async t => {
  const now = new Date(0)
  const fields = JSON.parse('{"time":"x","level":"x","event":"x","id":1,"message":"x","__proto__":"p","ok":"\\u001b[1m\\n"}') as Record<string, string>
  const line = jsonLine({ tag: '+INFO', event: 'e\n', text: 'm\r\n', fields }, now)
  t.equal(line, '{"time":"1970-01-01T00:00:00.000Z","level":"info","event":"e","__proto__":"p","ok":"[1m","message":"m"}')
})

t.test('jsonLine: bounded, longest string first, always valid JSON', async t => {
  const now = new Date(0)
  const size = (s: string): number => Buffer.byteLength(s)
  const plain = jsonLine({ tag: '+INFO', event: 'e', text: 'a'.repeat(5000) }, now)
  t.equal(size(plain), MAX_MESSAGE_BYTES)

  // Escapes count double: cut by the JSON size, not the text's.
  const quoted = jsonLine({ tag: '+INFO', event: 'e', text: '"\\'.repeat(2000) }, now)
  t.ok(size(quoted) >= MAX_MESSAGE_BYTES - 1 && size(quoted) <= MAX_MESSAGE_BYTES, 'cut by just enough')
  t.match(JSON.parse(quoted), { message: /^("\\)+"?$/ })
  // A lone surrogate becomes a 6-byte \udxxx; a pair is one 4-byte character.
  const surrogates = jsonLine({ tag: '+INFO', event: 'e', text: '\ud800😀'.repeat(500) }, now)
  t.ok(size(surrogates) <= MAX_MESSAGE_BYTES)
  t.match(JSON.parse(surrogates), { message: /^(\ud800😀)+\ud800?$/ })

  const wide = JSON.parse(jsonLine({ tag: '+INFO', event: 'e', text: '€'.repeat(1000) }, now)) as { message: string }
  t.match(wide.message, /^€+$/, 'cut between characters')

  const longMessage = JSON.parse(jsonLine({ tag: '+INFO', event: 'e', text: 'm'.repeat(700), fields: { client: 'c'.repeat(600) } }, now)) as Record<string, string>
  t.equal(longMessage['client'], 'c'.repeat(600), 'the shorter string is kept')
  t.match(longMessage['message'], /^m+$/)

  const both = jsonLine({ tag: '+INFO', event: 'e', text: 'm'.repeat(2000), fields: { client: 'c'.repeat(2000), port: 25 } }, now)
  t.ok(size(both) <= MAX_MESSAGE_BYTES)
  t.match(JSON.parse(both), { message: '', client: /^c+$/, port: 25 })

  // Only program-chosen keys and numbers left: the line is what it is.
  const numbers = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`counter${i}`, i]))
  const many = jsonLine({ tag: '+INFO', event: 'e', text: 'm'.repeat(100), fields: { ...numbers, host: 'h'.repeat(50) } }, now)
  t.ok(size(many) > MAX_MESSAGE_BYTES)
  t.match(JSON.parse(many), { message: '', host: '', counter99: 99 })
})
