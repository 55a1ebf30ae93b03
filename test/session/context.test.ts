/**
 * lib/session/context.ts: what the process gives every session. Types, and
 * the default bound on programs at once, which the forwarder applies
 * (test/server/forwarder.test.ts).
 */
import t from 'tap'
import { DEFAULT_MAX_PROGRAMS, OPEN_POLICY } from '../../lib/session/context.js'

t.test('the default bound on programs at once is a positive whole number', async t => {
  t.ok(Number.isInteger(DEFAULT_MAX_PROGRAMS) && DEFAULT_MAX_PROGRAMS > 0)
})

t.test('no policy: every client admitted, the servers in their order', async t => {
  const servers = [{ host: 'b', port: 1 }, { host: 'a', port: null }]
  t.ok(OPEN_POLICY.admit('192.0.2.1', 1))
  t.equal(OPEN_POLICY.order(servers), servers)
  t.equal(OPEN_POLICY.attempted({ ok: false, host: 'b', port: 1, error: new Error('x') }), undefined)
})
