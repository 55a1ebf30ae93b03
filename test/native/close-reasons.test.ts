/**
 * One list of close reasons: the names relay_thread.c reports (its enum
 * reason and reason_names) are the TypeScript ones, in the same order.
 */
import t from 'tap'
import { existsSync } from 'node:fs'
import { NATIVE_PATH, nativeAddon } from '../../lib/native/addon.js'
import type { CloseReason } from '../../lib/relay/event-loop.js'

// The TypeScript list. tsc checks that the object has every CloseReason and
// nothing else; the order is the C enum's.
const CLOSE_REASONS = Object.keys({
  client: true,
  server: true,
  timeout: true,
  'client-error': true,
  'server-error': true,
  shutdown: true,
} satisfies Record<CloseReason, true>)

t.test('the addon reports the TypeScript close reasons, in enum order', { skip: existsSync(NATIVE_PATH) ? false : 'the addon is not built' }, async t => {
  t.same(nativeAddon()?.closeReasons(), CLOSE_REASONS)
})
