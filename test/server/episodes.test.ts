/** lib/server/episodes.ts: one line per episode, with the count of those not logged. */
import t from 'tap'
import { Episodes } from '../../lib/server/episodes.js'

t.test('a recurring condition is logged once per interval, with how many were not', async t => {
  const lines: string[] = []
  const e = new Episodes(100)
  for (let i = 0; i < 3; i++) e.report(more => lines.push(`hit${more}`))
  t.same(lines, ['hit'], 'the first at once, then quiet')
  await new Promise(r => setTimeout(r, 150))
  e.report(more => lines.push(`hit${more}`))
  t.same(lines, ['hit', 'hit (2 more since the last report)'])
})
