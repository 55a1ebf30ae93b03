// lib/stats/ipc.ts holds message shapes only: they go through a JSON round trip (process.send) unchanged.
import t from 'tap'
import type { AnswerMessage, AskMessage, StatsMessage } from '../../lib/stats/ipc.js'

t.test('the messages are plain JSON', async t => {
  const messages: (AskMessage | AnswerMessage | StatsMessage)[] = [
    { type: 'ask', id: 1, what: 'kill', session: 3 },
    { type: 'answer', id: 1, rows: [], ok: true },
    { type: 'stats', snapshot: { services: {} }, process: { residentMemoryBytes: 1, cpuSecondsTotal: 0.5, openFds: 3 } },
  ]
  t.same(JSON.parse(JSON.stringify(messages)), messages)
})
