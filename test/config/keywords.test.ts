/**
 * The keyword table (lib/config/keywords.ts): what each keyword sets, where
 * it may appear, and its errors at FILE:LINE.
 */
import t from 'tap'
import { DEFAULT_GLOBALS } from '../../lib/config/config.js'
import { fails, parse } from '../fixtures/config-text.js'

t.test('an unknown keyword is an error at its line', async t => {
  fails(t, ['port 8025', 'interface *', 'server a.example', 'bogus value'], 4, 'unknown keyword "bogus"')
  fails(t, ['Bogus'], 1, 'unknown keyword "bogus"', 'even without a value')
})

t.test('names of Object.prototype are unknown keywords too', async t => {
  fails(t, ['constructor x'], 1, 'unknown keyword "constructor"')
  fails(t, ['__proto__ x'], 1, 'unknown keyword "__proto__"')
  fails(t, ['toString x'], 1, 'unknown keyword "tostring"')
})

t.test('"server" with a path points to "exec"', async t => {
  const hint = '"server" takes host[:port]; use "exec" for a handler program'
  fails(t, ['port 8025', 'interface *', 'server /usr/sbin/handler -x'], 3, hint)
  fails(t, ['server ./handler'], 1, hint)
})

t.test('the debug keyword of 2.0 is refused by name', async t => {
  const reason = '"debug" is not supported (the debug keyword (use -d))'
  fails(t, ['port 8025', 'interface *', 'server a.example', 'DEBUG 1'], 4, reason)
  fails(t, ['debug 1'], 1, reason, `${reason}, before any port`)
})

t.test('redirect-mode, srcip, forge-addr, forge-port and transparent', async t => {
  const svc = (...lines: string[]) => parse(['port 8025', 'interface *', 'server a.example', ...lines]).services[0]
  for (const [word, mode] of [
    ['none', 'none'],
    ['off', 'none'],
    ['no', 'none'],
    ['-', 'none'],
    ['accept', 'accept'],
    ['Redirect', 'accept'],
    ['forward', 'forward'],
    ['FORWARD-ONLY', 'forward-only'],
  ]) {
    t.equal(svc(`redirect-mode ${word}`)?.redirectMode, mode, `redirect-mode ${word}`)
  }
  t.equal(svc()?.redirectMode, 'none', 'none by default')
  fails(t, ['redirect-mode only'], 1, 'redirect mode must be none, accept, forward or forward-only, not "only"', "2.0's man page spelling is not its parser's")

  t.equal(svc('srcip 10.0.0.1')?.sourceAddress, '10.0.0.1')
  t.equal(svc('srcip [FD00::0001]')?.sourceAddress, 'fd00::1', 'IPv6, bracketed or not, canonical')
  t.equal(svc('srcip ::ffff:10.0.0.1')?.sourceAddress, '10.0.0.1', 'an IPv4-mapped address is IPv4')
  t.equal(svc('srcip -')?.sourceAddress, null)
  fails(t, ['srcip mail.example.org'], 1, 'source address must be an IPv4 or IPv6 address, not "mail.example.org"')

  const forged = svc('forge-addr yes', 'forge-port yes', 'transparent yes')
  t.same([forged?.forgeAddr, forged?.forgePort, forged?.transparent], [true, true, true])
  const plain = svc('forge-addr no', 'transparent -')
  t.same([plain?.forgeAddr, plain?.forgePort, plain?.transparent], [false, false, false])
  fails(t, ['forge-addr on'], 1, 'expected yes or no, not "on"')
  fails(t, ['port 8025', 'interface *', 'server a.example', 'transparent 1'], 4, 'expected yes or no, not "1"')

  // The defaults before the first port carry into every service.
  const c = parse(['redirect-mode forward', 'forge-addr yes', 'port 80', 'interface *', 'server a.example', 'port 81', 'interface *', 'server b.example', 'forge-addr no'])
  t.same(
    c.services.map(s => [s.redirectMode, s.forgeAddr]),
    [
      ['forward', true],
      ['forward', false],
    ],
  )
})

t.test('"exec" makes a service run a handler program, its command line split on blanks', async t => {
  const c = parse(['port 8025', 'interface 127.0.0.1', 'exec /usr/sbin/handler  -x\targ  ', 'interface *', 'exec ./relative/handler'])
  t.same(
    c.services.map(s => [s.iface, s.servers, s.exec]),
    [
      ['127.0.0.1', null, ['/usr/sbin/handler', '-x', 'arg']],
      [null, null, ['./relative/handler']],
    ],
  )
})

t.test('"exec" needs a path: a bare name or a host is refused', async t => {
  const reason = '"exec" needs a program path starting with "/" or "."'
  fails(t, ['port 8025', 'interface *', 'exec handler -x'], 3, reason)
  fails(t, ['exec mail.example.org:25'], 1, reason)
})

t.test('a service\'s own server replaces a default exec, and its own exec a default server', async t => {
  const c = parse([
    'exec /usr/sbin/handler',
    'port 8025',
    'interface 127.0.0.1',
    'interface 127.0.0.2',
    'server a.example:25',
    'port 8026',
    'interface *',
    'server b.example',
    'exec /bin/other',
  ])
  t.same(
    c.services.map(s => [s.port, s.iface, s.servers, s.exec]),
    [
      [8025, '127.0.0.1', null, ['/usr/sbin/handler']],
      [8025, '127.0.0.2', [{ host: 'a.example', port: 25 }], null],
      [8026, null, null, ['/bin/other']],
    ],
  )
  const d = parse(['server a.example', 'exec /usr/sbin/handler', 'port 8025', 'interface *'])
  t.same([d.services[0]?.servers, d.services[0]?.exec], [null, ['/usr/sbin/handler']], 'the later default wins')
})

t.test('"exec -" takes a default handler away', async t => {
  fails(t, ['exec /usr/sbin/handler', 'port 8025', 'interface *', 'exec -'], 3, 'service * port 8025 has no "server" or "exec" (only "redirect-mode forward-only" needs neither)')
  const c = parse(['exec /usr/sbin/handler', 'port 8025', 'interface *', 'exec -', 'server a.example'])
  t.same([c.services[0]?.servers, c.services[0]?.exec], [[{ host: 'a.example', port: null }], null])
})

t.test('"acp" and "acp-timeout" set the access control program, as defaults or per service', async t => {
  const c = parse([
    'acp /usr/sbin/check  --strict',
    'acp-timeout 2.5',
    'port 8025',
    'interface 127.0.0.1',
    'server a.example',
    'interface 127.0.0.2',
    'server a.example',
    'acp -',
    'acp-timeout 0',
    'interface *',
    'server a.example',
    'acp check-by-name arg',
  ])
  t.same(
    c.services.map(s => [s.iface, s.acp, s.acpTimeout]),
    [
      ['127.0.0.1', ['/usr/sbin/check', '--strict'], 2.5],
      ['127.0.0.2', null, 0],
      [null, ['check-by-name', 'arg'], 2.5],
    ],
  )
  fails(t, ['acp-timeout soon'], 1, 'not a number of seconds: "soon"')
  fails(t, ['acp-timeout 5 seconds'], 1, 'unexpected text after "acp-timeout 5"')
  fails(t, ['port 8025', 'acp /usr/sbin/check', 'interface *'], 2, '"acp" must follow an "interface" line (after "port 8025")')
})

t.test('"writefile" sets the dump base name; "-" turns a default off', async t => {
  const c = parse([
    'writefile /var/log/tcpproxy/dump',
    'port 8025',
    'interface 127.0.0.1',
    'server a.example',
    'interface 127.0.0.2',
    'server a.example',
    'writefile -',
    'interface *',
    'server a.example',
    'writefile ./local',
  ])
  t.same(
    c.services.map(s => s.writefile),
    ['/var/log/tcpproxy/dump', null, './local'],
  )
  fails(t, ['writefile /tmp/a b'], 1, 'unexpected text after "writefile /tmp/a"')
})

t.test('"setenv", "logname" and "standalone" are program-wide, wherever they appear', async t => {
  const c = parse([
    'port 8025',
    'setenv MY_',
    'interface *',
    'server a.example',
    'logname smtp-proxy',
    'standalone no',
  ])
  t.same(c.globals, { ...DEFAULT_GLOBALS, envPrefix: 'MY_', logname: 'smtp-proxy', standalone: false })
  t.same(parse(['standalone yes', 'port 8025', 'interface *', 'server a.example']).globals.standalone, true)
  const later = parse(['setenv A_', 'logname one', 'port 8025', 'interface *', 'server a.example', 'setenv B_', 'logname -'])
  t.same(later.globals, { ...DEFAULT_GLOBALS, envPrefix: 'B_', logname: null, standalone: null }, 'the last one wins; "-" is unset')
  t.same(parse(['setenv X', 'setenv -', 'port 8025', 'interface *', 'server a.example']).globals.envPrefix, 'PROXY_', '"setenv -" is the default prefix')
  for (const s of c.services) t.notOk('envPrefix' in s || 'logname' in s || 'standalone' in s, 'services do not carry them')
})

t.test('a bad "setenv", "logname" or "standalone" value is an error at its line', async t => {
  fails(t, ['port 8025', 'interface *', 'server a.example', 'setenv MY-'], 4, 'not a variable name prefix: "MY-"')
  fails(t, ['setenv 1X'], 1, 'not a variable name prefix: "1X"')
  fails(t, ['setenv FOO bar'], 1, 'unexpected text after "setenv FOO"')
  fails(t, ['logname tcpproxy mail'], 1, 'unexpected text after "logname tcpproxy"')
  fails(t, ['standalone maybe'], 1, '"standalone" takes yes or no')
  fails(t, ['standalone YES'], 1, '"standalone" takes yes or no', 'values are case-sensitive')
  fails(t, ['standalone -'], 1, '"standalone" takes yes or no', '"-" is no answer')
})

t.test('PROXY protocol keywords: accept-proxy, proxy-timeout, send-proxy', async t => {
  const c = parse(['accept-proxy 10.0.0.0/8 192.0.2.7', 'proxy-timeout 3', 'port 25', 'interface *', 'server h', 'send-proxy v2', 'interface 127.0.0.1', 'server h', 'send-proxy none', 'accept-proxy -'])
  t.same(c.services.map(s => [s.acceptProxy, s.proxyTimeout, s.sendProxy]), [
    [['10.0.0.0/8', '192.0.2.7/32'], 3, 'v2'],
    [null, 3, null],
  ])
  t.throws(() => parse(['port 25', 'interface *', 'server h', 'send-proxy v3']), {
    message: 'test.conf:4: PROXY protocol version must be v1, v2 or none, not "v3"',
  })
  t.throws(() => parse(['accept-proxy 10.0.0.0/40', 'port 25', 'interface *', 'server h']), {
    message: 'test.conf:1: bad prefix length in "10.0.0.0/40" (0-32)',
  })
})

t.test('max-connections: before the first port for all services, after an interface for one', async t => {
  const c = parse(['max-connections 100', 'port 25', 'interface *', 'server h', 'max-connections 7'])
  t.equal(c.globals.maxConnections, 100)
  t.equal(c.services[0]?.maxConnections, 7)
  t.throws(() => parse(['max-connections 0', 'port 25', 'interface *', 'server h']), {
    message: 'test.conf:1: not a positive whole number: "0"',
  })
})

t.test('daemon keywords: pidfile, user, and the 1.x uid/gid lines', async t => {
  const g = (lines: string[]) => parse([...lines, 'port 25', 'interface *', 'server h']).globals
  t.equal(g(['pidfile /run/tp.pid']).pidfile, '/run/tp.pid')
  t.equal(g(['pidfile -']).pidfile, '/var/run/tcpproxy.pid')
  t.equal(g(['user mail.daemon']).user, 'mail.daemon')
  t.equal(g(['user -']).user, null)
  t.equal(g(['uid 65534']).user, '65534')
  t.equal(g(['gid 100']).user, 'nobody.100')
  t.equal(g(['uid 8', 'gid 12']).user, '8.12')
  t.equal(g(['gid 12', 'uid 8']).user, '8.12')
  t.throws(() => g(['uid mail']), { message: 'test.conf:1: not a number: "mail"' })
})

t.test('control and control-group: the control socket and who else may use it', async t => {
  const g = (lines: string[]) => parse([...lines, 'port 25', 'interface *', 'server h']).globals
  t.same([g([]).control, g([]).controlGroup], [null, null])
  t.equal(g(['control /run/x.ctl']).control, '/run/x.ctl')
  t.equal(g(['control -']).control, '/run/tcpproxy.ctl')
  t.equal(g(['control-group adm']).controlGroup, 'adm')
  t.equal(g(['control-group -']).controlGroup, null)
})

t.test('a control character in a program command line is refused', async t => {
  t.throws(() => parse(['port 25', 'interface *', 'exec /bin/handler\u0000x']), {
    message: /^test\.conf:3: control character in program command line /,
  })
})

t.test('"workers" is program-wide, a positive count, "-" for the default', async t => {
  t.equal(parse(['workers 2', 'port 8025', 'interface *', 'server a.example']).globals.workers, 2)
  t.equal(parse(['port 8025', 'interface *', 'server a.example', 'workers 4', 'workers -']).globals.workers, null)
  fails(t, ['workers 0'], 1, 'not a positive whole number: "0"')
})

t.test('"max-programs" is program-wide wherever it stands, a positive count, "-" for the default', async t => {
  t.equal(parse(['max-programs 3', 'port 8025', 'interface *', 'server a.example']).globals.maxPrograms, 3)
  t.equal(parse(['port 8025', 'interface *', 'server a.example', 'max-programs 4']).globals.maxPrograms, 4)
  t.equal(parse(['max-programs 4', 'max-programs -', 'port 8025', 'interface *', 'server a.example']).globals.maxPrograms, null)
  fails(t, ['max-programs 0'], 1, 'not a positive whole number: "0"')
})

t.test('balance, max-fails, fail-timeout and max-per-client: per service or as defaults, errors at their line', async t => {
  const c = parse(['balance leastconn', 'max-fails 3', 'port 25', 'interface 127.0.0.1', 'server h', 'interface *', 'server h', 'balance source', 'max-fails 0', 'fail-timeout 2.5', 'check-interval 0.5', 'max-per-client 4', 'balance -'])
  t.match(c.services[0], { balance: 'leastconn', maxFails: 3, failTimeout: 10, maxPerClient: 0 })
  t.match(c.services[1], { balance: 'first', maxFails: 0, failTimeout: 2.5, checkInterval: 0.5, maxPerClient: 4 })
  fails(t, ['balance random'], 1, 'balance must be first, roundrobin, leastconn or source, not "random"')
  fails(t, ['port 25', 'interface *', 'server h', 'max-fails -1'], 4, 'not a whole number: "-1"')
  fails(t, ['max-per-client 01'], 1, 'not a whole number: "01"')
  fails(t, ['fail-timeout soon'], 1, 'not a number of seconds: "soon"')
})

t.test('allow and deny lines accumulate; a service\'s own lines add to the defaults', async t => {
  const c = parse(['allow 10.0.0.0/8', 'deny 10.0.0.66', 'port 25', 'interface 127.0.0.1', 'server h', 'interface *', 'server h', 'allow 192.0.2.0/24, 10.0.0.0/8', 'deny ::ffff:192.0.2.66', 'deny 2001:db8::/32'])
  t.match(c.services[0], { allow: ['10.0.0.0/8'], deny: ['10.0.0.66/32'] })
  t.match(c.services[1], { allow: ['10.0.0.0/8', '192.0.2.0/24'], deny: ['10.0.0.66/32', '192.0.2.66/32', '2001:db8::/32'] })
  fails(t, ['port 25', 'interface *', 'server h', 'deny 10.0.0.0/33'], 4, 'bad prefix length in "10.0.0.0/33" (0-32)')
})

t.test('"metrics" is program-wide, [addr:]port, "-" for none', async t => {
  t.same(parse(['metrics 127.0.0.1:9100', 'port 8025', 'interface *', 'server a.example']).globals.metrics, { address: '127.0.0.1', port: 9100 })
  t.same(parse(['metrics 9100', 'port 8025', 'interface *', 'server a.example']).globals.metrics, { address: null, port: 9100 })
  t.equal(parse(['port 8025', 'interface *', 'server a.example', 'metrics 9100', 'metrics -']).globals.metrics, null)
})
