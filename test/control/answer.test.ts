import t from 'tap'
import { answerLine, type AnswerContext } from '../../lib/control/answer.js'
import { HELP_TEXT } from '../../lib/control/protocol.js'
import { FakeBackend } from '../fixtures/control.js'

const context = (): AnswerContext & { backend: FakeBackend } => ({ backend: new FakeBackend(), disabled: new Set(), now: () => 4_000 })

t.test('help, as text and as JSON', async t => {
  const cx = context()
  t.same(await answerLine('help', cx), { text: `${HELP_TEXT}\n\n`, error: false })
  const j = await answerLine('help json', cx)
  t.same(JSON.parse(j.text).help, HELP_TEXT.split('\n'))
})

t.test('show sessions: the backend\'s rows, as a table or JSON', async t => {
  const cx = context()
  const a = await answerLine('show sessions', cx)
  t.equal(a.error, false)
  t.match(a.text, /^id +service +client .*\n 7 +\*:8080 +192\.0\.2\.1 +40000 +127\.0\.0\.1:9 +100 +10 +3 +relaying\n\n$/)
  t.same(JSON.parse((await answerLine('show sessions --json', cx)).text), cx.backend.rows)
})

t.test('show services, servers and stats from the snapshot', async t => {
  const cx = context()
  t.match((await answerLine('show services', cx)).text, /^service +active +connections +denied .*\n\*:8080 +1 +5 +2 +100 +10 +1\n\n$/)
  t.match((await answerLine('show servers', cx)).text, /\n\*:8080 +127\.0\.0\.1:9 +up +3 +1 +3 +1 +100 +10\n\n$/)
  t.same(JSON.parse((await answerLine('show services json', cx)).text)[0].service, '*:8080')
  t.match((await answerLine('show stats', cx)).text, /^services +servers .*\n +1 +1 +1 +5 +2 +100 +10 +1\n\n$/)
  t.same(JSON.parse((await answerLine('show stats json', cx)).text), { services: 1, servers: 1, active: 1, connections: 5, denied: 2, received: 100, sent: 10, connect_failures: 1 })
})

t.test('kill session: ok, or an error for a session that is not open', async t => {
  const cx = context()
  t.same(await answerLine('kill session 7', cx), { text: 'session 7 killed\n\n', error: false })
  t.same(await answerLine('kill session 8', cx), { text: 'error: no session 8\n\n', error: true })
  t.same(await answerLine('kill session 8 json', cx), { text: '{"error":"no session 8"}\n\n', error: true })
  t.same(cx.backend.killed, [7, 8, 8])
})

t.test('disable and enable server: shown as disabled in show servers until enabled', async t => {
  const cx = context()
  t.same(await answerLine('disable server 127.0.0.1:9', cx), { text: 'server 127.0.0.1:9 disabled\n\n', error: false })
  t.match((await answerLine('show servers', cx)).text, /127\.0\.0\.1:9 +disabled/)
  t.same(await answerLine('enable server 127.0.0.1:9 json', cx), { text: '{"ok":"server 127.0.0.1:9 enabled"}\n\n', error: false })
  t.match((await answerLine('show servers', cx)).text, /127\.0\.0\.1:9 +up/)
  t.same(await answerLine('disable server [::1]:9', cx), { text: 'error: no service uses server [::1]:9\n\n', error: true })
  t.same(cx.backend.toggled, ['-127.0.0.1:9', '+127.0.0.1:9', '-[::1]:9'])
  t.same([...cx.disabled], [])
})

t.test('a bad line gets one error line (JSON when it asked for JSON); a failing backend too', async t => {
  const cx = context()
  t.same(await answerLine('show sesions', cx), { text: 'error: unknown command "show sesions"; try help\n\n', error: true })
  t.same(await answerLine('show sesions json', cx), { text: '{"error":"unknown command \\"show sesions\\"; try help"}\n\n', error: true })
  cx.backend.broken = new Error('worker 2 did not answer')
  t.same(await answerLine('show sessions', cx), { text: 'error: worker 2 did not answer\n\n', error: true })
})
