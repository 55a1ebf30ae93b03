// lib/control/backend.ts is an interface only: this checks that a plain
// object satisfies it (the way the control socket's tests stand it in).
import t from 'tap'
import type { ControlBackend } from '../../lib/control/backend.js'

t.test('a plain object is a ControlBackend', async t => {
  const backend: ControlBackend = {
    total: () => ({ services: {} }),
    sessions: async () => [],
    kill: async id => id === 1,
    disable: async server => server === 'a:1',
    enable: async server => server === 'a:1',
  }
  t.same(backend.total(), { services: {} })
  t.same(await backend.sessions(), [])
  t.equal(await backend.kill(1), true)
  t.equal(await backend.disable('a:1'), true)
  t.equal(await backend.enable('b:2'), false)
})
