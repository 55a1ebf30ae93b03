import t from 'tap'
import { RELAY_NODE_FLAGS, nodeOptionsWithoutInspector, refuseDebugger, relayExecArgv, withoutInspectorFlags } from '../../lib/daemon/node-flags.js'

t.test('relaying children get a capped young generation; flags node was given come after ours and win', async t => {
  t.same(RELAY_NODE_FLAGS, ['--max-semi-space-size=2'])
  t.same(relayExecArgv([]), ['--max-semi-space-size=2'])
  t.same(relayExecArgv(['--max-semi-space-size=8', '--enable-source-maps']), ['--max-semi-space-size=2', '--max-semi-space-size=8', '--enable-source-maps'])
})

t.test('inspector flags are never passed on to a child', async t => {
  t.same(
    withoutInspectorFlags(['--inspect', '--inspect=0.0.0.0:1', '--inspect-brk', '--inspect-port', '9', '--inspect-port=9', '--debug-port', '9', '--inspect-wait', '--inspect-publish-uid', 'http', '--enable-source-maps']),
    ['--enable-source-maps'],
  )
  t.same(withoutInspectorFlags(['--inspector-not-a-flag', '--import', 'x']), ['--inspector-not-a-flag', '--import', 'x'])
  t.same(relayExecArgv(['--inspect', '--enable-source-maps']), ['--max-semi-space-size=2', '--enable-source-maps'])
})

t.test('NODE_OPTIONS loses its inspector flags, and is left alone without them', async t => {
  t.equal(nodeOptionsWithoutInspector(undefined), undefined)
  t.equal(nodeOptionsWithoutInspector('--import "a b.js"  --max-old-space-size=64'), '--import "a b.js"  --max-old-space-size=64')
  t.equal(nodeOptionsWithoutInspector('--inspect=127.0.0.1:9 --max-old-space-size=64'), '--max-old-space-size=64')
  t.equal(nodeOptionsWithoutInspector(' --inspect-brk '), undefined)
})

t.test('refuseDebugger: USR1 and USR2 taken over, an open inspector closed, NODE_OPTIONS cleaned', async t => {
  const handled: string[] = []
  let closed = 0
  const env: NodeJS.ProcessEnv = { NODE_OPTIONS: '--inspect --max-old-space-size=64' }
  const proc = {
    env,
    on: (signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void) => {
      listener(signal)
      handled.push(signal)
    },
  }
  refuseDebugger(proc, { url: () => 'ws://127.0.0.1:9229/x', close: () => closed++ })
  t.same(handled, ['SIGUSR1', 'SIGUSR2'])
  t.equal(closed, 1)
  t.equal(env['NODE_OPTIONS'], '--max-old-space-size=64')
  env['NODE_OPTIONS'] = '--inspect'
  refuseDebugger(proc, { url: () => undefined, close: () => closed++ })
  t.equal(closed, 1, 'nothing to close')
  t.notOk('NODE_OPTIONS' in env)
  refuseDebugger(proc, null)
  t.notOk('NODE_OPTIONS' in env)
})
