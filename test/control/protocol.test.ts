import t from 'tap'
import fc from 'fast-check'
import { HELP_TEXT, MAX_LINE, formatCommand, parseCommand, parseServer, type Command } from '../../lib/control/protocol.js'

t.test('the commands, with and without json', async t => {
  t.same(parseCommand('show sessions'), { ok: true, command: { kind: 'show', what: 'sessions', json: false } })
  t.same(parseCommand('  show\tstats json\r'), { ok: true, command: { kind: 'show', what: 'stats', json: true } })
  t.same(parseCommand('show servers --json'), { ok: true, command: { kind: 'show', what: 'servers', json: true } })
  t.same(parseCommand('show services'), { ok: true, command: { kind: 'show', what: 'services', json: false } })
  t.same(parseCommand('help'), { ok: true, command: { kind: 'help', json: false } })
  t.same(parseCommand('kill session 42'), { ok: true, command: { kind: 'kill-session', id: 42, json: false } })
  t.same(parseCommand('disable server [2001:DB8::1]:80 json'), {
    ok: true,
    command: { kind: 'disable-server', host: '2001:db8::1', port: 80, json: true },
  })
  t.same(parseCommand('enable server db.example:5432'), { ok: true, command: { kind: 'enable-server', host: 'db.example', port: 5432, json: false } })
  t.match(HELP_TEXT, /^show sessions/)
})

t.test('what is not a command gets one line naming it', async t => {
  t.same(parseCommand('show sesions'), { ok: false, error: 'unknown command "show sesions"; try help' })
  t.same(parseCommand('frobnicate now json'), { ok: false, error: 'unknown command "frobnicate now"; try help' })
  t.same(parseCommand('help me'), { ok: false, error: 'unknown command "help me"; try help' })
  t.same(parseCommand('show'), { ok: false, error: 'unknown command "show"; try help' })
  t.same(parseCommand('show stats now'), { ok: false, error: 'unknown command "show stats now"; try help' })
  t.same(parseCommand('kill session 1 2'), { ok: false, error: 'unknown command "kill session 1 2"; try help' })
  t.same(parseCommand(''), { ok: false, error: 'empty command; try help' })
  t.same(parseCommand('--json'), { ok: false, error: 'nothing before --json; try help' })
  t.same(parseCommand('kill session'), { ok: false, error: 'kill session: not a session id: ""' })
  t.same(parseCommand('kill session 0'), { ok: false, error: 'kill session: not a session id: "0"' })
  t.same(parseCommand('kill session 1234567890123456'), { ok: false, error: 'kill session: not a session id: "1234567890123456"' })
  t.same(parseCommand('disable server'), { ok: false, error: 'disable server: not HOST:PORT: ""' })
  t.same(parseCommand('enable server a:0'), { ok: false, error: 'enable server: not HOST:PORT: "a:0"' })
  t.same(parseCommand('x\u001b[2J'), { ok: false, error: 'unknown command "x\\u001b[2J"; try help' })
  t.same(parseCommand('x'.repeat(MAX_LINE + 1)), { ok: false, error: `command too long (over ${MAX_LINE} characters)` })
})

t.test('servers: names, IPv4, bracketed IPv6, ports 1-65535', async t => {
  t.same(parseServer('10.0.0.1:1'), { host: '10.0.0.1', port: 1 })
  t.same(parseServer('[::1]:65535'), { host: '::1', port: 65535 })
  t.equal(parseServer('[::1]:65536'), null)
  t.equal(parseServer('::1:80'), null, 'IPv6 needs brackets')
  t.equal(parseServer('[db.example]:80'), null, 'brackets are for IPv6')
  t.equal(parseServer('db.example'), null)
  t.equal(parseServer('[1.2.3.4]:80'), null)
  t.equal(parseServer('[fe:zz]:80'), null)
})

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ kind: fc.constant('show' as const), what: fc.constantFrom('sessions' as const, 'services' as const, 'servers' as const, 'stats' as const), json: fc.boolean() }),
  fc.record({ kind: fc.constant('kill-session' as const), id: fc.integer({ min: 1, max: 999999999999999 }), json: fc.boolean() }),
  fc.record({
    kind: fc.constantFrom('disable-server' as const, 'enable-server' as const),
    host: fc.oneof(fc.domain(), fc.ipV4(), fc.ipV6()),
    port: fc.integer({ min: 1, max: 65535 }),
    json: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('help' as const), json: fc.boolean() }),
)

t.test('property: every command round-trips through its line', async t => {
  t.doesNotThrow(() => fc.assert(fc.property(command, c => JSON.stringify(parseCommand(formatCommand(c))) === JSON.stringify({ ok: true, command: c })), { numRuns: 500 }))
})

t.test('property: any line parses without throwing; errors are one line', async t => {
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), command.map(formatCommand).map(l => l + ' x')), line => {
        const r = parseCommand(line)
        return r.ok || !/[\n\r]/.test(r.error)
      }),
      { numRuns: 1000 },
    ),
  )
})
