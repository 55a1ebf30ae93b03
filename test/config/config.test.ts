/**
 * The settings a configuration holds and their defaults (lib/config/config.ts).
 */
import t from 'tap'
import { DEFAULT_GLOBALS, DEFAULT_PIDFILE, DEFAULT_SETTINGS } from '../../lib/config/config.js'

t.test('the defaults are frozen: a parse copies them, never changes them', async t => {
  t.ok(Object.isFrozen(DEFAULT_SETTINGS))
  t.ok(Object.isFrozen(DEFAULT_GLOBALS))
})

t.test('the default pidfile is the original\'s', async t => {
  t.equal(DEFAULT_PIDFILE, '/var/run/tcpproxy.pid')
})
