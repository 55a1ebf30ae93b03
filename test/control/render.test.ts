import t from 'tap'
import { renderJson, renderMessage, renderSessions, renderTable, type SessionRow } from '../../lib/control/render.js'

const rows: SessionRow[] = [
  { id: 7, service: '0.0.0.0:8080', client: '192.0.2.10', client_port: 51234, server: 'db.example:5432', received: 123456, sent: 42, age: 3.5, state: 'relaying' },
  { id: 12, service: '[::]:25', client: '2001:db8::7', client_port: 40000, server: null, received: 0, sent: 0, age: 0, state: 'acp' },
]

t.test('show sessions as a table: header, aligned columns, numbers on the right, - for none', async t => {
  t.equal(
    renderSessions(rows, false),
    [
      'id  service       client       client_port  server           received  sent  age  state',
      ' 7  0.0.0.0:8080  192.0.2.10         51234  db.example:5432    123456    42  3.5  relaying',
      '12  [::]:25       2001:db8::7        40000  -                       0     0    0  acp',
      '',
      '',
    ].join('\n'),
  )
})

t.test('no rows: the header alone', async t => {
  t.equal(renderSessions([], false), 'id  service  client  client_port  server  received  sent  age  state\n\n')
})

t.test('json: one line, then the empty line that ends an answer', async t => {
  const out = renderSessions(rows, true)
  t.equal(out.split('\n').length, 3)
  t.same(JSON.parse(out), rows)
  t.equal(renderJson({ a: 1 }), '{"a":1}\n\n')
})

t.test('cells never carry control characters; booleans and missing cells show', async t => {
  t.equal(renderTable(['name', 'up', 'x'], [{ name: 'evil\nline\u001b', up: true }]), `${'name'.padEnd(20)}  up    x\nevil\\u000aline\\u001b  true  -\n\n`)
})

t.test('messages: one line of text, or JSON with ok or error', async t => {
  t.equal(renderMessage('session 7 killed', false, false), 'session 7 killed\n\n')
  t.equal(renderMessage('no session 8\nx', false, true), 'no session 8\\u000ax\n\n')
  t.equal(renderMessage('no session 8', true, true), '{"error":"no session 8"}\n\n')
  t.equal(renderMessage('session 7 killed', true, false), '{"ok":"session 7 killed"}\n\n')
})
