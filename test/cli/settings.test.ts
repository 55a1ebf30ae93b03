/**
 * From command-line options to a configuration: file mode and command-line mode.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULT_OPTIONS, type CliOptions } from '../../lib/cli/options.js'
import { DEFAULT_GLOBALS, DEFAULT_SETTINGS, type Config } from '../../lib/config/config.js'
import { DEFAULT_CONFIG_FILE, buildConfig, chooseMode, type SettingsDeps } from '../../lib/cli/settings.js'
import type { PortLookup } from '../../lib/config/port-names.js'

const NONE: CliOptions = DEFAULT_OPTIONS
const opts = (o: Partial<CliOptions>): CliOptions => ({ ...NONE, ...o })
const lookup: PortLookup = name => ({ smtp: 25 })[name]
const CONF = 'timeout 5\nport 8025\ninterface 127.0.0.1\nserver 127.0.0.1:smtp\n'

/** Deps whose readFile serves `files` and records what was read. */
function deps(files: Record<string, string> = {}, inetdPort: number | null = null): SettingsDeps & { read: string[] } {
  const read: string[] = []
  return {
    read,
    lookup,
    inetdPort,
    readFile: path => {
      read.push(path)
      const text = files[path]
      if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' })
      return text
    },
  }
}

t.test('-c reads and parses the named file', async t => {
  const d = deps({ 'my.conf': CONF })
  const c = buildConfig(opts({ config: 'my.conf' }), d)
  t.same(d.read, ['my.conf'])
  t.same(c, {
    ports: [8025],
    globals: DEFAULT_GLOBALS,
    services: [
      {
        ...DEFAULT_SETTINGS,
        servers: [{ host: '127.0.0.1', port: 25 }],
        timeout: 5,
        connectTimeout: 10,
        port: 8025,
        iface: '127.0.0.1',
        ifaceText: '127.0.0.1',
        source: { file: 'my.conf', line: 3 },
      },
    ],
  })
})

t.test('without -b and server the default file /etc/tcpproxy.conf is read', async t => {
  t.equal(DEFAULT_CONFIG_FILE, '/etc/tcpproxy.conf')
  const d = deps({ '/etc/tcpproxy.conf': CONF })
  const c = buildConfig(opts({ debug: true, listPorts: true }), d)
  t.same(d.read, ['/etc/tcpproxy.conf'])
  t.same(c.ports, [8025])
})

t.test('errors in the file name the file and line', async t => {
  t.throws(() => buildConfig(opts({}), deps({ '/etc/tcpproxy.conf': 'port 8025\nbogus\n' })), {
    name: 'ConfigError',
    code: 'ERR_CONFIG',
    message: '/etc/tcpproxy.conf:2: unknown keyword "bogus"',
  })
})

t.test('a server argument and a configuration file exclude each other', async t => {
  t.throws(() => buildConfig(opts({ config: 'my.conf', server: ['a.example'] }), deps({ 'my.conf': CONF })), {
    name: 'TcpproxyError',
    code: 'ERR_USAGE',
    message: 'a server argument and a configuration file exclude each other',
  })
})

t.test('-b and a configuration file exclude each other', async t => {
  t.throws(() => buildConfig(opts({ config: 'my.conf', bind: '8025' }), deps({ 'my.conf': CONF })), {
    name: 'TcpproxyError',
    code: 'ERR_USAGE',
    message: '-b and a configuration file exclude each other',
  })
})

t.test('an unreadable file is ERR_IO naming the path and the errno code', async t => {
  t.throws(() => buildConfig(opts({ config: '/nonexistent/tcpproxy.conf' }), deps()), {
    name: 'TcpproxyError',
    code: 'ERR_IO',
    message: 'cannot read configuration file /nonexistent/tcpproxy.conf: no such file or directory (ENOENT)',
  })
  t.throws(() => buildConfig(opts({}), deps()), { code: 'ERR_IO', message: 'cannot read configuration file /etc/tcpproxy.conf: no such file or directory (ENOENT)' })
})

t.test('a read failure without an errno code gives its message', async t => {
  const d: SettingsDeps = {
    lookup,
    inetdPort: null,
    readFile: () => {
      throw new Error('not text')
    },
  }
  t.throws(() => buildConfig(opts({ config: 'x.conf' }), d), { code: 'ERR_IO', message: 'cannot read configuration file x.conf: not text' })
})

t.test('a real file is read through readFileSync, and a directory is EISDIR', async t => {
  const dir = t.testdir({ 'tcpproxy.conf': CONF, sub: {} })
  const real: SettingsDeps = { lookup, inetdPort: null, readFile: path => readFileSync(path, 'utf8') }
  const c = buildConfig(opts({ config: join(dir, 'tcpproxy.conf') }), real)
  t.same(c.services[0]?.source, { file: join(dir, 'tcpproxy.conf'), line: 3 })
  t.throws(() => buildConfig(opts({ config: join(dir, 'sub') }), real), {
    code: 'ERR_IO',
    message: `cannot read configuration file ${join(dir, 'sub')}: illegal operation on a directory (EISDIR)`,
  })
  t.throws(() => buildConfig(opts({ config: join(dir, 'missing.conf') }), real), {
    code: 'ERR_IO',
    message: `cannot read configuration file ${join(dir, 'missing.conf')}: no such file or directory (ENOENT)`,
  })
})

t.test('-b and a server describe one service on the command line', async t => {
  const d = deps()
  t.same(buildConfig(opts({ bind: '127.0.0.1:8025', server: ['a.example:smtp, [::1]'] }), d), {
    ports: [8025],
    globals: DEFAULT_GLOBALS,
    services: [
      {
        ...DEFAULT_SETTINGS,
        servers: [
          { host: 'a.example', port: 25 },
          { host: '::1', port: null },
        ],
        timeout: 60,
        connectTimeout: 10,
        port: 8025,
        iface: '127.0.0.1',
        ifaceText: '127.0.0.1',
        source: { file: 'option -b', line: 0 },
      },
    ],
  })
  t.same(d.read, [], 'no file is read')
})

t.test('-b with a port alone listens on every address', async t => {
  const c = buildConfig(opts({ bind: 'smtp', server: ['10.0.0.1'] }), deps())
  t.same(
    c.services.map(s => [s.port, s.iface, s.ifaceText]),
    [[25, null, '*']],
  )
})

t.test('-t and --connect-timeout are the defaults in both modes', async t => {
  const cli = buildConfig(opts({ bind: '8025', server: ['a.example'], timeout: 0, connectTimeout: 3 }), deps())
  t.same([cli.services[0]?.timeout, cli.services[0]?.connectTimeout], [0, 3])
  t.equal(buildConfig(opts({ bind: '8025', server: ['a.example'], keepalive: 120 }), deps()).services[0]?.keepalive, 120, '--keepalive')
  const file = buildConfig(opts({ config: 'my.conf', timeout: 0, connectTimeout: 3 }), deps({ 'my.conf': CONF }))
  t.same([file.services[0]?.timeout, file.services[0]?.connectTimeout], [5, 3], 'the file\'s own timeout wins over -t')
})

t.test('-b without a server is an error unless -z only lists the ports', async t => {
  t.throws(() => buildConfig(opts({ bind: '8025' }), deps()), {
    name: 'TcpproxyError',
    code: 'ERR_USAGE',
    message: 'missing server argument after -b',
  })
  const c = buildConfig(opts({ bind: '8025', listPorts: true }), deps())
  t.same(c.ports, [8025])
  t.equal(c.services[0]?.servers, null)
})

t.test('a bad -b value is an error prefixed with the option', async t => {
  t.throws(() => buildConfig(opts({ bind: '[::1]', server: ['a.example'] }), deps()), {
    name: 'ConfigError',
    code: 'ERR_CONFIG',
    message: 'option -b: missing port in "[::1]"',
  })
  t.throws(() => buildConfig(opts({ bind: '127.0.0.1:nosuch', server: ['a.example'] }), deps()), {
    message: 'option -b: unknown port or service name: "nosuch"',
  })
  t.throws(() => buildConfig(opts({ bind: '0', listPorts: true }), deps()), { message: 'option -b: port 0 is out of range (1-65535)' })
})

t.test('a bad server argument is an error prefixed "server argument: "', async t => {
  t.throws(() => buildConfig(opts({ bind: '8025', server: ['bad host:25'] }), deps()), {
    name: 'ConfigError',
    code: 'ERR_CONFIG',
    message: 'server argument: bad host name or address: "bad host"',
  })
  t.throws(() => buildConfig(opts({ bind: '8025', server: ['a.example,'] }), deps()), {
    message: 'server argument: empty item in server list "a.example,"',
  })
})

/** What `fn` throws (undefined when it does not). */
function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

t.test('-b with a handler program runs it with its arguments instead of connecting', async t => {
  const c = buildConfig(opts({ bind: '8025', server: ['/usr/sbin/handler', '-x', 'arg'] }), deps())
  t.same(c, {
    ports: [8025],
    globals: DEFAULT_GLOBALS,
    services: [
      {
        ...DEFAULT_SETTINGS,
        servers: null,
        exec: ['/usr/sbin/handler', '-x', 'arg'],
        port: 8025,
        iface: null,
        ifaceText: '*',
        source: { file: 'option -b', line: 0 },
      },
    ],
  })
  const rel = buildConfig(opts({ bind: '127.0.0.1:8025', server: ['./handler'] }), deps())
  t.same([rel.services[0]?.servers, rel.services[0]?.exec], [null, ['./handler']])
})

t.test('a quoted handler command line is split on blanks, as in the original', async t => {
  const c = buildConfig(opts({ bind: '8025', server: ['/usr/sbin/handler a  b', 'c\td'] }), deps())
  t.same(c.services[0]?.exec, ['/usr/sbin/handler', 'a', 'b', 'c', 'd'])
  const empty = buildConfig(opts({ bind: '8025', server: ['/usr/sbin/handler', '', ' ', 'x'] }), deps())
  t.same(empty.services[0]?.exec, ['/usr/sbin/handler', 'x'], 'empty and blank arguments vanish, as in one split command line')
})

t.test('a server without -b is inetd mode: one service on the port of the connection on stdin', async t => {
  const d = deps({}, 8025)
  t.same(buildConfig(opts({ server: ['mail.example.org'] }), d), {
    ports: [8025],
    globals: DEFAULT_GLOBALS,
    services: [
      {
        ...DEFAULT_SETTINGS,
        servers: [{ host: 'mail.example.org', port: null }],
        port: 8025,
        iface: null,
        ifaceText: '*',
        source: { file: 'server argument', line: 0 },
      },
    ],
  })
  t.same(d.read, [], 'no file is read')
  const h = buildConfig(opts({ server: ['/usr/sbin/handler', 'arg'], timeout: 9 }), deps({}, 25))
  t.same(
    h.services.map(s => [s.port, s.iface, s.servers, s.exec, s.timeout]),
    [[25, null, null, ['/usr/sbin/handler', 'arg'], 9]],
  )
})

t.test('a server without -b and without a connection on stdin is a usage error', async t => {
  for (const server of [['mail.example.org'], ['/usr/sbin/handler']]) {
    t.has(thrown(() => buildConfig(opts({ server }), deps())), {
      name: 'TcpproxyError',
      code: 'ERR_USAGE',
      message: 'a server without -b needs a connection on standard input (inetd mode); use -b PORT to listen',
    })
  }
})

t.test('a bad server argument in inetd mode names the server argument', async t => {
  t.has(thrown(() => buildConfig(opts({ server: ['bad host'] }), deps({}, 8025))), {
    name: 'ConfigError',
    message: 'server argument: bad host name or address: "bad host"',
  })
})

t.test('-a, --acp-timeout and -w are defaults of every service, in both modes', async t => {
  const o = { acp: '/usr/sbin/check  --strict', acpTimeout: 2.5, writefile: '/tmp/dump' }
  const cli = buildConfig(opts({ ...o, bind: '8025', server: ['a.example'] }), deps())
  t.same(
    cli.services.map(s => [s.acp, s.acpTimeout, s.writefile]),
    [[['/usr/sbin/check', '--strict'], 2.5, '/tmp/dump']],
  )
  const file = buildConfig(
    opts({ ...o, config: 'my.conf' }),
    deps({ 'my.conf': 'port 8025\ninterface 127.0.0.1\nserver a.example\ninterface *\nserver a.example\nacp -\nacp-timeout 1\nwritefile -\n' }),
  )
  t.same(
    file.services.map(s => [s.acp, s.acpTimeout, s.writefile]),
    [
      [['/usr/sbin/check', '--strict'], 2.5, '/tmp/dump'],
      [null, 1, null],
    ],
    'the file starts from them and may override them',
  )
})

t.test('-v and -l reach the program-wide settings, in both modes', async t => {
  const cli = buildConfig(opts({ envPrefix: 'MY_', logname: 'smtp-proxy', bind: '8025', server: ['a.example'] }), deps())
  t.same(cli.globals, { ...DEFAULT_GLOBALS, envPrefix: 'MY_', logname: 'smtp-proxy', standalone: null })
  const file = buildConfig(opts({ envPrefix: 'MY_', logname: 'smtp-proxy', config: 'my.conf' }), deps({ 'my.conf': 'logname from-file\n' + CONF }))
  t.same(file.globals, { ...DEFAULT_GLOBALS, envPrefix: 'MY_', logname: 'from-file', standalone: null }, 'the file\'s own logname wins')
  const empty = buildConfig(opts({ envPrefix: '', bind: '8025', server: ['a.example'] }), deps())
  t.equal(empty.globals.envPrefix, 'PROXY_', 'an empty -v is the default prefix')
})

t.test('a bad -v prefix is an error prefixed with the option', async t => {
  t.has(thrown(() => buildConfig(opts({ envPrefix: 'MY-', bind: '8025', server: ['a.example'] }), deps())), {
    name: 'ConfigError',
    code: 'ERR_CONFIG',
    message: 'option -v: not a variable name prefix: "MY-"',
  })
  t.has(thrown(() => buildConfig(opts({ envPrefix: '1', config: 'my.conf' }), deps({ 'my.conf': CONF }))), {
    message: 'option -v: not a variable name prefix: "1"',
  })
})

t.test('chooseMode: -b and -s listen, a server without -b is inetd, else the file or stdin decides', async t => {
  const file = (standalone: boolean | null): Config => ({ services: [], ports: [], globals: { ...DEFAULT_GLOBALS, standalone } })
  const cases: [string, Partial<CliOptions>, boolean | null, boolean, 'standalone' | 'inetd'][] = [
    ['-b, even with a socket on stdin', { bind: '8025', server: ['a.example'] }, null, true, 'standalone'],
    ['-s, even with "standalone no"', { standalone: true }, false, true, 'standalone'],
    ['a server without -b', { server: ['a.example'] }, null, false, 'inetd'],
    ['a handler without -b', { server: ['/usr/sbin/handler'] }, null, false, 'inetd'],
    ['"standalone yes" with a socket on stdin', { config: 'my.conf' }, true, true, 'standalone'],
    ['"standalone no" without a socket on stdin', { config: 'my.conf' }, false, false, 'inetd'],
    ['neither, with a socket on stdin', {}, null, true, 'inetd'],
    ['neither, without a socket on stdin', {}, null, false, 'standalone'],
  ]
  for (const [what, o, standalone, socket, mode] of cases) t.equal(chooseMode(opts(o), file(standalone), socket), mode, what)
})

t.test('-r, -q, --forge-addr, --forge-port and --transparent are defaults of every service', async t => {
  const o = { redirectMode: 'redirect', source: '[::1]', forgeAddr: false, transparent: true }
  const cli = buildConfig(opts({ ...o, bind: '8025', server: ['a.example'] }), deps())
  t.match(cli.services[0], { redirectMode: 'accept', sourceAddress: '::1', forgeAddr: false, forgePort: false, transparent: true })
  const file = buildConfig(opts({ config: 'my.conf', forgeAddr: true, forgePort: true }), deps({ 'my.conf': CONF }))
  t.match(file.services[0], { redirectMode: 'none', sourceAddress: null, forgeAddr: true, forgePort: true })
  t.throws(() => buildConfig(opts({ bind: '8025', server: ['a.example'], redirectMode: 'sideways' }), deps()), {
    code: 'ERR_CONFIG',
    message: 'option -r: redirect mode must be none, accept, forward or forward-only, not "sideways"',
  })
  t.throws(() => buildConfig(opts({ bind: '8025', server: ['a.example'], source: 'localhost' }), deps()), {
    code: 'ERR_CONFIG',
    message: 'option -q: source address must be an IPv4 or IPv6 address, not "localhost"',
  })
})

t.test('-r forward-only needs no server; settings that exclude each other name their options', async t => {
  const c = buildConfig(opts({ bind: '8025', redirectMode: 'forward-only' }), deps())
  t.equal(c.services[0]?.servers, null)
  t.equal(c.services[0]?.redirectMode, 'forward-only')
  const fails = (o: Partial<CliOptions>, message: string): void => {
    t.throws(() => buildConfig(opts({ bind: '8025', ...o }), deps()), { code: 'ERR_USAGE', message }, message)
  }
  fails({ forgePort: true, server: ['a.example'] }, "the command line's service sets --forge-port without --forge-addr")
  fails({ forgeAddr: true, source: '10.0.0.1', server: ['a.example'] }, "the command line's service sets both -q and --forge-addr; an upstream connection has one source")
  fails(
    { redirectMode: 'forward', server: ['/usr/sbin/handler'] },
    "the command line's service has a handler, so it cannot forward to the original destination (use -r accept or forward-only)",
  )
  fails({ redirectMode: 'forward' }, 'missing server argument after -b')
})

t.test('--control and --control-group are the starting values of the file\'s', async t => {
  const g = buildConfig(opts({ bind: '8025', server: ['a.example'], control: '/run/a.ctl', controlGroup: 'adm' }), deps()).globals
  t.same([g.control, g.controlGroup], ['/run/a.ctl', 'adm'])
  t.same(buildConfig(opts({ bind: '8025', server: ['a.example'] }), deps()).globals.control, null)
})

t.test('--workers is the starting value of the file\'s "workers"', async t => {
  t.equal(buildConfig(opts({ bind: '8025', server: ['a.example'], workers: 2 }), deps()).globals.workers, 2)
  const conf = `workers 3\n${CONF}`
  t.equal(buildConfig(opts({ config: 'my.conf', workers: 2 }), deps({ 'my.conf': conf })).globals.workers, 3, 'the file wins')
  t.equal(buildConfig(opts({ config: 'my.conf', workers: 2 }), deps({ 'my.conf': CONF })).globals.workers, 2)
})

t.test('--balance, --max-fails, --fail-timeout, --allow, --deny and --max-per-client are defaults of every service', async t => {
  const o = { balance: 'roundrobin', maxFails: 2, failTimeout: 0.5, checkInterval: 3, allow: ['127.0.0.0/8', '::1'], deny: ['127.0.0.2'], maxPerClient: 3 }
  const cli = buildConfig(opts({ ...o, bind: '8025', server: ['a.example'] }), deps())
  t.match(cli.services[0], { balance: 'roundrobin', maxFails: 2, failTimeout: 0.5, checkInterval: 3, allow: ['127.0.0.0/8', '::1/128'], deny: ['127.0.0.2/32'], maxPerClient: 3 })
  const file = buildConfig(opts({ ...o, config: 'my.conf' }), deps({ 'my.conf': `${CONF}allow 192.0.2.0/24\nbalance source\n` }))
  t.match(file.services[0], { balance: 'source', allow: ['127.0.0.0/8', '::1/128', '192.0.2.0/24'], deny: ['127.0.0.2/32'] }, 'the file adds to them')
  t.match(buildConfig(opts({ bind: '8025', server: ['a.example'] }), deps()).services[0], { balance: 'first', maxFails: 1, failTimeout: 10, allow: [], deny: [], maxPerClient: 0 })
  t.throws(() => buildConfig(opts({ bind: '8025', server: ['a.example'], balance: 'random' }), deps()), {
    code: 'ERR_CONFIG',
    message: 'option --balance: balance must be first, roundrobin, leastconn or source, not "random"',
  })
  t.throws(() => buildConfig(opts({ bind: '8025', server: ['a.example'], deny: ['10.0.0.1', 'nonsense'] }), deps()), { code: 'ERR_CONFIG', message: /^option --deny: / })
  t.throws(() => buildConfig(opts({ bind: '8025', server: ['a.example'], allow: ['10.0.0.1/40'] }), deps()), { code: 'ERR_CONFIG', message: /^option --allow: / })
})

t.test('--metrics [addr:]port is the starting value of the file\'s "metrics"; a bad one names the option', async t => {
  t.same(buildConfig(opts({ bind: '8025', server: ['a.example'], metrics: '127.0.0.1:9100' }), deps()).globals.metrics, { address: '127.0.0.1', port: 9100 })
  t.equal(buildConfig(opts({ bind: '8025', server: ['a.example'] }), deps()).globals.metrics, null)
  t.throws(() => buildConfig(opts({ bind: '8025', server: ['a.example'], metrics: '127.0.0.1:x' }), deps()), { message: /^option --metrics: / })
})
