/**
 * lib/session/context.ts: what the process gives every session. Types, and
 * the default bound on programs at once, which the forwarder applies
 * (test/server/forwarder.test.ts).
 */
import t from 'tap'
import { DEFAULT_MAX_PROGRAMS } from '../../lib/session/context.js'

t.test('the default bound on programs at once is a positive whole number', async t => {
  t.ok(Number.isInteger(DEFAULT_MAX_PROGRAMS) && DEFAULT_MAX_PROGRAMS > 0)
})
