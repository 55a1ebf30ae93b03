/**
 * Settings that exclude each other (lib/config/rules.ts), as a file's
 * errors at the service's interface line.
 */
import t from 'tap'
import { fails, parse } from '../fixtures/config-text.js'

t.test('a service without a server is an error at its interface line', async t => {
  fails(t, ['port 8025', 'interface 127.0.0.1', 'server a.example', 'interface *', 'timeout 5'], 4, 'service * port 8025 has no "server" or "exec" (only "redirect-mode forward-only" needs neither)')
})

t.test('settings that exclude each other are an error at the service\'s interface line', async t => {
  fails(t, ['port 80', 'interface *', 'redirect-mode forward'], 2, 'service * port 80 has no "server" or "exec" (only "redirect-mode forward-only" needs neither)')
  t.same(parse(['port 80', 'interface *', 'redirect-mode forward-only']).services[0]?.servers, null, 'forward-only needs no server')
  fails(
    t,
    ['port 80', 'interface *', 'exec /bin/cat', 'redirect-mode forward'],
    2,
    'service * port 80 has a handler ("exec"), so it cannot forward to the original destination (use redirect-mode accept or forward-only)',
  )
  t.ok(parse(['port 80', 'interface *', 'exec /bin/cat', 'redirect-mode forward-only']), 'a handler for redirected connections only')
  fails(t, ['port 80', 'interface *', 'server a.example', 'forge-port yes'], 2, 'service * port 80 sets "forge-port yes" without "forge-addr yes"')
  fails(
    t,
    ['srcip 10.0.0.1', 'port 80', 'interface 127.0.0.1', 'server a.example', 'forge-addr yes'],
    3,
    'service 127.0.0.1 port 80 sets both "srcip" and "forge-addr yes"; an upstream connection has one source',
  )
})
