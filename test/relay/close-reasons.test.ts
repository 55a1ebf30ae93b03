/**
 * The close reasons: the relay thread reports one by its index in C's
 * enum, so the list must name each reason once, in words fit for the
 * disconnect line's `closed-by=`.
 */
import t from 'tap'
import { existsSync } from 'node:fs'
import { NATIVE_PATH, nativeAddon } from '../../lib/native/addon.js'
import { CLOSE_REASONS } from '../../lib/relay/close-reasons.js'

t.test('each reason once, a lower-case word or two joined by a hyphen', async t => {
  t.equal(new Set(CLOSE_REASONS).size, CLOSE_REASONS.length)
  for (const r of CLOSE_REASONS) t.match(r, /^[a-z]+(-[a-z]+)?$/)
})

t.test('the sides and the cuts the log lines name', async t => {
  t.same([...CLOSE_REASONS].sort(), ['client', 'client-error', 'server', 'server-error', 'shutdown', 'timeout'])
})

// The relay thread repeats the list in C (relay_thread.c's enum reason and
// reason_names, tied to each other by a _Static_assert): the addon reports
// its names, which must be these, in this order.
t.test('the addon reports the same close reasons, in enum order', { skip: existsSync(NATIVE_PATH) ? false : 'the addon is not built' }, async t => {
  t.same(nativeAddon()?.closeReasons(), CLOSE_REASONS)
})
