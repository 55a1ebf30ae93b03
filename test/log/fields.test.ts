import t from 'tap'
import { connectFields, connectionFields, disconnectFields, syslogPriority, SEVERITIES } from '../../lib/log/fields.js'
import { LEVELS, jsonLine } from '../../lib/log/record.js'

const c = { client: '192.0.2.10', clientPort: 51234, service: '0.0.0.0:8080', pid: 4711 }

t.test('every connection event: client, client_port, service, pid', async t => {
  t.same(connectionFields(c), { client: '192.0.2.10', client_port: 51234, service: '0.0.0.0:8080', pid: 4711 })
  t.same(connectionFields(c, { rc: 1, client: 'forged' }), { rc: 1, client: '192.0.2.10', client_port: 51234, service: '0.0.0.0:8080', pid: 4711 }, 'extra cannot replace them')
})

t.test('connect adds the server; disconnect the counts, a numeric duration and closed_by', async t => {
  t.same(connectFields(c, '[2001:db8::1]:80'), { server: '[2001:db8::1]:80', client: '192.0.2.10', client_port: 51234, service: '0.0.0.0:8080', pid: 4711 })
  const d = disconnectFields(c, { server: 'db:5432', received: 1500, sent: 20, seconds: 3.14159, closedBy: 'client' })
  t.same(d, { server: 'db:5432', received: 1500, sent: 20, duration: 3.142, closed_by: 'client', client: '192.0.2.10', client_port: 51234, service: '0.0.0.0:8080', pid: 4711 })
})

t.test('the fields come out in a JSON log line as numbers and strings', async t => {
  const line = jsonLine(
    { tag: '+OK', event: 'disconnect', id: 3, text: 'disconnect: ...', fields: disconnectFields(c, { server: 's:1', received: 0, sent: 7, seconds: 0.0004, closedBy: 'server' }) },
    new Date(0),
  )
  const o = JSON.parse(line) as Record<string, unknown>
  t.equal(o['duration'], 0)
  t.equal(o['sent'], 7)
  t.equal(o['closed_by'], 'server')
  t.equal(o['client_port'], 51234)
})

t.test('syslog priority follows the tag, never below notice', async t => {
  const MAIL = 2
  t.equal(syslogPriority(MAIL, '-ERR'), 19)
  t.equal(syslogPriority(MAIL, '-INFO'), 20)
  t.equal(syslogPriority(MAIL, '+OK'), 21, 'as the original: <21>')
  t.equal(syslogPriority(MAIL, '+INFO'), 21)
  t.equal(syslogPriority(MAIL, ''), 21)
  t.equal(syslogPriority(MAIL, '+DEBUG'), 21)
  t.ok(Object.values(SEVERITIES).every(s => s <= 5), 'a mail.notice rule keeps every line')
})

t.test("one mapping: syslog sends the JSON level's severity, raised to notice", async t => {
  const number = { err: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const
  for (const [tag, level] of Object.entries(LEVELS)) t.equal(SEVERITIES[tag as keyof typeof SEVERITIES], Math.min(number[level], 5), `${tag || 'untagged'}: ${level}`)
})
