/** lib/config/startup-only.ts: the global settings a reload leaves as they were at start-up, by keyword. */
import t from 'tap'
import { DEFAULT_GLOBALS, type GlobalSettings } from '../../lib/config/config.js'
import { KEYWORDS } from '../../lib/config/keywords.js'
import { GLOBAL_KEYWORDS, startupOnlyChanges } from '../../lib/config/startup-only.js'
import { parse } from '../fixtures/config-text.js'

t.test('every global setting has its keyword, and every keyword is one the file takes', async t => {
  t.same(Object.keys(GLOBAL_KEYWORDS).sort(), Object.keys(DEFAULT_GLOBALS).sort())
  for (const word of Object.values(GLOBAL_KEYWORDS)) t.ok(KEYWORDS.has(word), word)
})

t.test('the same settings: nothing to say', async t => {
  t.same(startupOnlyChanges(DEFAULT_GLOBALS, { ...DEFAULT_GLOBALS }, true), [])
})

t.test('each setting changed is named by its keyword, in a fixed order; values compared whole (metrics)', async t => {
  const globals = (text: string): GlobalSettings => parse([text, 'port 25', 'interface 127.0.0.1', 'server 127.0.0.1:2525']).globals
  const running = globals('metrics 127.0.0.1:9100\nworkers 2')
  t.same(startupOnlyChanges(running, globals('metrics 127.0.0.1:9100\nworkers 2'), true), [])
  t.same(startupOnlyChanges(running, globals('metrics 127.0.0.2:9100\nworkers 2'), true), ['metrics'])
  t.same(startupOnlyChanges(running, globals('workers 3\nmax-connections 9\nsetenv X_\nuid 5\nmax-programs 7'), true), ['setenv', 'user', 'max-connections', 'max-programs', 'workers', 'metrics'])
  t.same(startupOnlyChanges(DEFAULT_GLOBALS, globals('logname l\nstandalone yes\npidfile /p\ncontrol /c\ncontrol-group g'), true), ['logname', 'standalone', 'pidfile', 'control', 'control-group'])
})

t.test('a daemon not started as root serves as itself: a changed user is not one a restart would apply', async t => {
  const changed = { ...DEFAULT_GLOBALS, user: 'mail', workers: 2 }
  t.same(startupOnlyChanges(DEFAULT_GLOBALS, changed, false), ['workers'])
  t.same(startupOnlyChanges(DEFAULT_GLOBALS, changed, true), ['user', 'workers'])
})
