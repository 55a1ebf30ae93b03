import t from 'tap'
import { RELAY_NODE_FLAGS, relayExecArgv } from '../lib/node-flags.js'

t.test('relaying children get a capped young generation; flags node was given come after ours and win', async t => {
  t.same(RELAY_NODE_FLAGS, ['--max-semi-space-size=2'])
  t.same(relayExecArgv([]), ['--max-semi-space-size=2'])
  t.same(relayExecArgv(['--max-semi-space-size=8', '--enable-source-maps']), ['--max-semi-space-size=2', '--max-semi-space-size=8', '--enable-source-maps'])
})
