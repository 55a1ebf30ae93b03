// lib/control/backend.ts is an interface: what the control socket needs of
// the daemon. This checks that the in-memory one the tests use satisfies it.
import t from 'tap'
import type { ControlBackend } from '../../lib/control/backend.js'
import { FakeBackend } from '../fixtures/control.js'

t.test('a backend answers every question the control socket asks', async t => {
  const b: ControlBackend = new FakeBackend()
  t.same(Object.keys(b.total()), ['services'])
  t.equal((await b.sessions()).length, 1)
  t.equal(await b.kill(7), true)
  t.equal(await b.disable('127.0.0.1:9'), true)
  t.equal(await b.enable('x:1'), false)
})
