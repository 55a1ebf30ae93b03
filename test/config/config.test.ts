/**
 * tcpproxy.conf: the grammar, the defaults, and every error with its FILE:LINE.
 */
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ConfigError } from '../../lib/errors.js'
import {
  DEFAULT_GLOBALS,
  KEYWORD_NAMES,
  DEFAULT_SETTINGS,
  MAX_LINE,
  isProgram,
  parseConfig,
  parseEnvPrefix,
  parseSeconds,
  splitCommand,
} from '../../lib/config/config.js'
import type { PortLookup } from '../../lib/config/port-names.js'

const lookup: PortLookup = name => ({ smtp: 25, telnet: 23, http: 80 })[name]
const FILE = 'test.conf'
const parse = (lines: string[]) => parseConfig(lines.join('\n') + '\n', FILE, lookup)
const configError = (line: number, reason: string) => ({
  name: 'ConfigError',
  code: 'ERR_CONFIG',
  message: `${FILE}:${line}: ${reason}`,
  line,
  reason,
})
/** What `fn` throws (undefined when it does not). */
const thrown = (fn: () => unknown): unknown => {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}
/** The lines fail with exactly this reason at this line (t.throws would accept a substring). */
const fails = (t: Test, lines: string[], line: number, reason: string, note?: string) =>
  t.has(thrown(() => parse(lines)), configError(line, reason), note ?? reason)

t.test('one port, one interface, one server: one service with the default timeouts', async t => {
  const c = parse(['port 8025', 'interface 127.0.0.1', 'server 127.0.0.1:25'])
  t.same(c, {
    ports: [8025],
    globals: DEFAULT_GLOBALS,
    services: [
      {
        ...DEFAULT_SETTINGS,
        servers: [{ host: '127.0.0.1', port: 25 }],
        timeout: 60,
        connectTimeout: 10,
        exec: null,
        acp: null,
        acpTimeout: 10,
        writefile: null,
        port: 8025,
        iface: '127.0.0.1',
        ifaceText: '127.0.0.1',
        source: { file: FILE, line: 2 },
      },
    ],
  })
})

t.test('several interfaces of a port are separate services with their own settings', async t => {
  const c = parse([
    'port smtp',
    '  interface 127.0.0.1',
    '    server mail.example.org',
    '    timeout 300',
    '  interface *',
    '    server [::1]:2525, 127.0.0.1:http',
    '    connect-timeout 2.5',
  ])
  t.same(
    c.services.map(s => [s.port, s.iface, s.ifaceText, s.servers, s.timeout, s.connectTimeout, s.source.line]),
    [
      [25, '127.0.0.1', '127.0.0.1', [{ host: 'mail.example.org', port: null }], 300, 10, 2],
      [
        25,
        null,
        '*',
        [
          { host: '::1', port: 2525 },
          { host: '127.0.0.1', port: 80 },
        ],
        60,
        2.5,
        5,
      ],
    ],
  )
})

t.test('interfaces keep their text but are canonical for matching', async t => {
  const c = parse([
    'port 8025',
    'interface ::FFFF:127.0.0.2',
    'server a.example',
    'interface Mail.Example.ORG',
    'server a.example',
    'interface FE80::1%eth0',
    'server a.example',
    'interface any',
    'server a.example',
  ])
  t.same(
    c.services.map(s => [s.iface, s.ifaceText]),
    [
      ['127.0.0.2', '::FFFF:127.0.0.2'],
      ['mail.example.org', 'Mail.Example.ORG'],
      ['fe80::1%eth0', 'FE80::1%eth0'],
      [null, 'any'],
    ],
  )
})

t.test('keywords are case-insensitive', async t => {
  const c = parse(['TIMEOUT 5', 'Port 8025', 'INTERFACE 127.0.0.1', 'Server 127.0.0.1:25', 'Connect-Timeout 3'])
  t.same(
    c.services.map(s => [s.port, s.iface, s.servers, s.timeout, s.connectTimeout]),
    [[8025, '127.0.0.1', [{ host: '127.0.0.1', port: 25 }], 5, 3]],
  )
})

t.test('comment lines, blank lines and indentation are ignored', async t => {
  const c = parse(['# a comment', '', '   # an indented comment', '\t', 'port 8025', '\tinterface *\t', '\t\tserver   127.0.0.1:25  ', '#port 9999'])
  t.same(c.ports, [8025])
  t.same(c.services[0]?.servers, [{ host: '127.0.0.1', port: 25 }])
})

t.test('a "#" after a value is part of the value, not a comment', async t => {
  fails(t, ['port 8025', 'interface *', 'server 127.0.0.1:25 # mail'], 3, 'a comment must be on a line of its own, not after a value: "# mail"')
  fails(t, ['port 8025', 'interface *', 'exec /usr/sbin/h arg # not an argument'], 3, 'a comment must be on a line of its own, not after a value: "# not an argument"')
  fails(t, ['timeout 60 # default'], 1, 'a comment must be on a line of its own, not after a value: "# default"')
  t.same(parse(['# a comment line', '  # indented', 'port 8025', 'interface *', 'exec /usr/sbin/h a#b']).services[0]?.exec, ['/usr/sbin/h', 'a#b'], 'a # inside a word is no comment')
})

t.test('a file with CRLF line ends parses like one with LF', async t => {
  const text = 'timeout 5\r\nport 8025\r\ninterface 127.0.0.1\r\nserver 127.0.0.1:25\r\n'
  const c = parseConfig(text, FILE, lookup)
  t.same(c, parseConfig(text.replaceAll('\r', ''), FILE, lookup))
  t.same(c.services[0]?.servers, [{ host: '127.0.0.1', port: 25 }])
  t.equal(c.services[0]?.timeout, 5)
})

t.test('errors in a CRLF file name the right line', async t => {
  t.throws(() => parseConfig('port 8025\r\ninterface *\r\nbogus 1\r\n', FILE, lookup), configError(3, 'unknown keyword "bogus"'))
  t.throws(() => parseConfig('# only a comment\r\n', FILE, lookup), configError(1, 'no service defined (expected "port" and "interface" lines)'))
})

t.test('a lone CR or a Unicode line separator inside a line is an error at that line, not a crash', async t => {
  t.throws(() => parseConfig('port 8025\rinterface *\n', FILE, lookup), configError(1, 'unexpected text after "port 8025"'))
  // The separator is written out: the message stays one line (found by the fuzz test below).
  t.throws(
    () => parseConfig('port 8025\ninterface *\nserver a.example\u2028b.example\n', FILE, lookup),
    configError(3, 'bad host name or address: "a.example\\u2028b.example"'),
  )
  t.throws(
    () => parseConfig('port 8025\ninterface *\ntimeout 1\u0085\n', FILE, lookup),
    configError(3, 'not a number of seconds: "1\\u0085"'),
  )
})

t.test('directives before the first port are defaults for every later service', async t => {
  const c = parse([
    'timeout 5',
    'connect-timeout 1',
    'server fallback.example:25',
    'port 8025',
    'interface 127.0.0.1',
    'interface 127.0.0.2',
    'timeout 7',
    'server 10.0.0.1',
    'port 8026',
    'interface *',
  ])
  t.same(
    c.services.map(s => [s.port, s.iface, s.servers, s.timeout, s.connectTimeout]),
    [
      [8025, '127.0.0.1', [{ host: 'fallback.example', port: 25 }], 5, 1],
      [8025, '127.0.0.2', [{ host: '10.0.0.1', port: null }], 7, 1],
      [8026, null, [{ host: 'fallback.example', port: 25 }], 5, 1],
    ],
  )
})

t.test('the initial defaults (from the command line) apply unless the file sets its own', async t => {
  const initial = { ...DEFAULT_SETTINGS, timeout: 0, connectTimeout: 30 }
  const c = parseConfig('timeout 9\nport 8025\ninterface *\nserver a.example\n', FILE, lookup, initial)
  t.equal(c.services[0]?.timeout, 9, 'the file overrides -t')
  t.equal(c.services[0]?.connectTimeout, 30, 'the file leaves --connect-timeout')
  t.same(initial, { ...DEFAULT_SETTINGS, timeout: 0, connectTimeout: 30 }, 'the initial object is not changed')
  // Other features add their own defaults; these are the ones of this file's keywords.
  t.has(DEFAULT_SETTINGS, {
    servers: null,
    timeout: 60,
    connectTimeout: 10,
    exec: null,
    acp: null,
    acpTimeout: 10,
    writefile: null,
    acceptProxy: null,
    proxyTimeout: 5,
    sendProxy: null,
  })
})

t.test('"-" is an empty value: "server -" takes a default server away', async t => {
  fails(
    t,
    ['server a.example', 'port 8025', 'interface 127.0.0.1', 'interface 127.0.0.2', 'server -'],
    4,
    'service 127.0.0.2 port 8025 has no "server" or "exec" (only "redirect-mode forward-only" needs neither)',
  )
  fails(t, ['server a.example', 'server -', 'port 8025', 'interface *'], 4, 'service * port 8025 has no "server" or "exec" (only "redirect-mode forward-only" needs neither)')
  fails(t, ['port 8025', 'interface *', 'timeout -'], 3, 'not a number of seconds: ""')
})

t.test('ports are listed in the order of their port lines, each once', async t => {
  const c = parse([
    'port 8026',
    'interface *',
    'server a.example',
    'port smtp',
    'interface *',
    'server a.example',
    'port 8026',
    'interface 127.0.0.1',
    'server a.example',
  ])
  t.same(c.ports, [8026, 25])
  t.same(
    c.services.map(s => [s.port, s.iface]),
    [
      [8026, null],
      [25, null],
      [8026, '127.0.0.1'],
    ],
  )
})

t.test('timeouts take non-negative decimal seconds', async t => {
  t.equal(parseSeconds('0'), 0)
  t.equal(parseSeconds('30'), 30)
  t.equal(parseSeconds('0.5'), 0.5)
  for (const bad of ['', '-1', '.5', '1.', '1e3', 'abc', '1 2', '0x10']) {
    t.throws(() => parseSeconds(bad), { name: 'TcpproxyError', code: 'ERR_CONFIG', message: `not a number of seconds: ${JSON.stringify(bad)}` })
  }
  fails(t, ['port 8025', 'interface *', 'server a.example', 'timeout soon'], 4, 'not a number of seconds: "soon"')
  fails(t, ['connect-timeout -3'], 1, 'not a number of seconds: "-3"')
})

t.test('an unknown keyword is an error at its line', async t => {
  fails(t, ['port 8025', 'interface *', 'server a.example', 'bogus value'], 4, 'unknown keyword "bogus"')
  fails(t, ['Bogus'], 1, 'unknown keyword "bogus"', 'even without a value')
})

t.test('names of Object.prototype are unknown keywords too', async t => {
  fails(t, ['constructor x'], 1, 'unknown keyword "constructor"')
  fails(t, ['__proto__ x'], 1, 'unknown keyword "__proto__"')
  fails(t, ['toString x'], 1, 'unknown keyword "tostring"')
})

t.test('a keyword without its value is an error', async t => {
  fails(t, ['port'], 1, 'missing value for "port"')
  fails(t, ['port 8025', 'interface'], 2, 'missing value for "interface"')
  fails(t, ['port 8025', 'interface *', 'server'], 3, 'missing value for "server"')
  fails(t, ['TIMEOUT   '], 1, 'missing value for "timeout"')
  fails(t, ['connect-timeout'], 1, 'missing value for "connect-timeout"')
})

t.test('one-word values refuse trailing text', async t => {
  fails(t, ['port 8025 8026'], 1, 'unexpected text after "port 8025"')
  fails(t, ['port 8025', 'interface 127.0.0.1 127.0.0.2'], 2, 'unexpected text after "interface 127.0.0.1"')
  fails(t, ['timeout 30 seconds'], 1, 'unexpected text after "timeout 30"')
  fails(t, ['connect-timeout 1\t2'], 1, 'unexpected text after "connect-timeout 1"')
  fails(t, ['pidfile /run/tcpproxy.pid now'], 1, 'unexpected text after "pidfile /run/tcpproxy.pid"')
})

t.test('a per-service directive between port and interface is an error', async t => {
  fails(t, ['port 8025', 'server a.example', 'interface *'], 2, '"server" must follow an "interface" line (after "port 8025")')
  fails(t, ['port 8025', 'interface *', 'server a.example', 'port 8026', 'timeout 5'], 5, '"timeout" must follow an "interface" line (after "port 8026")')
})

t.test('an interface before any port is an error', async t => {
  fails(t, ['timeout 5', 'interface 127.0.0.1'], 2, '"interface" before any "port" line')
})

t.test('a port without an interface is an error at the port line', async t => {
  fails(t, ['port 8025', 'port 8026', 'interface *', 'server a.example'], 1, '"port 8025" has no "interface" line (use "interface *" for every address)')
  fails(t, ['port 8025', 'interface *', 'server a.example', '', 'port 8026', '# nothing'], 5, '"port 8026" has no "interface" line (use "interface *" for every address)')
})

t.test('the same interface twice on a port is an error naming the first line', async t => {
  fails(t, ['port 8025', 'interface 127.0.0.1', 'server a.example', 'interface 127.0.0.1'], 4, 'duplicate service 127.0.0.1 port 8025 (first defined at line 2)')
  fails(t, ['port 8025', 'interface *', 'server a.example', 'interface any'], 4, 'duplicate service * port 8025 (first defined at line 2)')
  fails(
    t,
    ['port 8025', 'interface 127.0.0.2', 'server a.example', 'port 8025', 'interface ::ffff:127.0.0.2'],
    5,
    'duplicate service 127.0.0.2 port 8025 (first defined at line 2)',
    'an IPv4-mapped address is the same interface, in another port group too',
  )
})

t.test('an unknown port or service name is an error', async t => {
  fails(t, ['port nosuch'], 1, 'unknown port or service name: "nosuch"')
  fails(t, ['port 0'], 1, 'port 0 is out of range (1-65535)')
  fails(t, ['port 65536'], 1, 'port 65536 is out of range (1-65535)')
  fails(t, ['port 8025', 'interface *', 'server a.example:nosuch'], 3, 'unknown port or service name: "nosuch"')
})

t.test('a bad interface or server address is an error at its line', async t => {
  fails(t, ['port 8025', 'interface bad!host'], 2, 'bad host name or address: "bad!host"')
  fails(t, ['port 8025', 'interface [::1'], 2, 'bad host name or address: "[::1"')
  fails(t, ['port 8025', 'interface *', 'server [::1:25'], 3, 'missing "]" in "[::1:25"')
  fails(t, ['port 8025', 'interface *', 'server a.example,,b.example'], 3, 'empty item in server list "a.example,,b.example"')
  fails(t, ['port 8025', 'interface *', 'server a b'], 3, 'bad host name or address: "a b"')
})

t.test('"server" with a path points to "exec"', async t => {
  const hint = '"server" takes host[:port]; use "exec" for a handler program'
  fails(t, ['port 8025', 'interface *', 'server /usr/sbin/handler -x'], 3, hint)
  fails(t, ['server ./handler'], 1, hint)
})

t.test('a file without services is an error at its last line', async t => {
  const reason = 'no service defined (expected "port" and "interface" lines)'
  t.throws(() => parseConfig('', FILE, lookup), configError(1, reason), 'an empty file')
  t.throws(() => parseConfig('timeout 5', FILE, lookup), configError(1, reason), 'no final newline')
  t.throws(() => parseConfig('timeout 5\n', FILE, lookup), configError(1, reason), 'a final newline does not add a line')
  t.throws(() => parseConfig('# c\ntimeout 5\n\n', FILE, lookup), configError(3, reason), 'a blank last line counts')
})

t.test('a service without a server is an error at its interface line', async t => {
  fails(t, ['port 8025', 'interface 127.0.0.1', 'server a.example', 'interface *', 'timeout 5'], 4, 'service * port 8025 has no "server" or "exec" (only "redirect-mode forward-only" needs neither)')
})

t.test('lines longer than MAX_LINE characters are refused, MAX_LINE itself is fine', async t => {
  t.equal(MAX_LINE, 4096)
  const head = 'server 127.0.0.1:25'
  const tail = ',127.0.0.1:26'
  const exact = head + ' '.repeat(MAX_LINE - head.length - tail.length) + tail
  t.equal(exact.length, MAX_LINE)
  const c = parse(['port 8025', 'interface *', exact])
  t.same(c.services[0]?.servers, [
    { host: '127.0.0.1', port: 25 },
    { host: '127.0.0.1', port: 26 },
  ])
  fails(t, ['port 8025', 'interface *', exact.replace(tail, ' ' + tail)], 3, 'line longer than 4096 characters')
  t.ok(parse(['# ' + 'x'.repeat(MAX_LINE), 'port 8025', 'interface *', 'server a.example']), 'a long comment is still a comment')
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

t.test('the shipped sample etc/tcpproxy.conf defines the documented loopback services', async t => {
  const url = new URL('../../etc/tcpproxy.conf', import.meta.url)
  const path = fileURLToPath(url)
  const text = readFileSync(url, 'utf8')
  const c = parseConfig(text, path, lookup)
  t.same(c.ports, [8080, 8023])
  t.same(c.globals, DEFAULT_GLOBALS)
  t.same(
    c.services.map(({ source, ...rest }) => rest),
    [
      {
        ...DEFAULT_SETTINGS,
        servers: [{ host: '127.0.0.1', port: 8000 }],
        timeout: 60,
        connectTimeout: 10,
        port: 8080,
        iface: '127.0.0.1',
        ifaceText: '127.0.0.1',
      },
      {
        ...DEFAULT_SETTINGS,
        servers: [
          { host: 'localhost', port: 8000 },
          { host: '127.0.0.1', port: 8000 },
        ],
        timeout: 300,
        connectTimeout: 10,
        port: 8080,
        iface: null,
        ifaceText: '*',
      },
      {
        ...DEFAULT_SETTINGS,
        servers: [{ host: '127.0.0.1', port: 23 }],
        timeout: 0,
        connectTimeout: 10,
        port: 8023,
        iface: '127.0.0.1',
        ifaceText: '127.0.0.1',
      },
    ],
  )
  // Each service names the file and its own interface line.
  const lines = text.split('\n')
  for (const s of c.services) {
    t.equal(s.source.file, path)
    t.equal(lines[s.source.line - 1]?.trim(), `interface ${s.ifaceText}`, `line ${s.source.line}`)
  }
})

t.test('the commented-out examples of the sample work once uncommented', async t => {
  const text = readFileSync(new URL('../../etc/tcpproxy.conf', import.meta.url), 'utf8')
  const uncommented = text.replace(/^# ( *(?:port|interface|exec|acp|acp-timeout|redirect-mode|forge-addr) \S+)$/gm, '$1')
  t.not(uncommented, text, 'the sample has the examples')
  const c = parseConfig(uncommented, FILE, lookup)
  t.same(c.ports, [8080, 8025, 8026, 8023])
  const s = c.services.find(x => x.port === 8025)
  t.same(
    s && [s.iface, s.servers, s.exec, s.acp, s.acpTimeout, s.timeout],
    ['127.0.0.1', null, ['/usr/local/sbin/smtp-handler'], ['/usr/local/sbin/smtp-acp'], 5, 60],
  )
  const r = c.services.find(x => x.port === 8026)
  t.same(r && [r.iface, r.servers, r.redirectMode, r.forgeAddr], [null, null, 'forward-only', true], 'the transparent-proxy example')
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

t.test('the initial globals (from the command line) apply unless the file sets its own', async t => {
  const initial = { ...DEFAULT_GLOBALS, envPrefix: 'CLI_', logname: 'from-cli' }
  const c = parseConfig('logname from-file\nport 8025\ninterface *\nserver a.example\n', FILE, lookup, DEFAULT_SETTINGS, initial)
  t.same(c.globals, { ...DEFAULT_GLOBALS, envPrefix: 'CLI_', logname: 'from-file', standalone: null })
  t.same(initial, { ...DEFAULT_GLOBALS, envPrefix: 'CLI_', logname: 'from-cli' }, 'the initial object is not changed')
  t.has(DEFAULT_GLOBALS, { envPrefix: 'PROXY_', logname: null, standalone: null })
})

t.test('splitCommand splits on blanks only, with no quoting', async t => {
  t.same(splitCommand('/bin/prog  a\tb '), ['/bin/prog', 'a', 'b'])
  t.same(splitCommand('/bin/prog "a b" $HOME;x'), ['/bin/prog', '"a', 'b"', '$HOME;x'], 'quotes and shell characters are plain text')
  t.equal(splitCommand(''), null)
  t.equal(splitCommand(' \t '), null)
})

t.test('isProgram: a path starting with "/" or "." is a program, anything else a host', async t => {
  for (const p of ['/usr/sbin/handler', './handler', '../handler', '.hidden']) t.ok(isProgram(p), p)
  for (const h of ['mail.example.org', '127.0.0.1:25', '[::1]', '', 'bin/handler']) t.notOk(isProgram(h), JSON.stringify(h))
})

t.test('parseEnvPrefix takes what a shell accepts in a variable name; empty is the default', async t => {
  for (const ok of ['PROXY_', 'MY_', '_', 'a1', 'X']) t.equal(parseEnvPrefix(ok), ok)
  t.equal(parseEnvPrefix(''), 'PROXY_')
  for (const bad of ['1X', 'A-B', 'A B', '$X', 'Ä_', 'X=']) {
    t.has(thrown(() => parseEnvPrefix(bad)), { name: 'TcpproxyError', code: 'ERR_CONFIG', message: `not a variable name prefix: ${JSON.stringify(bad)}` })
  }
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

t.test('a control character in a program command line is refused', async t => {
  t.throws(() => parse(['port 25', 'interface *', 'exec /bin/handler\u0000x']), {
    message: /^test\.conf:3: control character in program command line /,
  })
})

/*
 * Fuzzing (fast-check, fixed seed, bounded runs): whatever the text, the
 * parser returns a configuration or throws a ConfigError that names this
 * file and a line of it, in one line of text, and it does so quickly.
 */
const FUZZ = { seed: 0x7c9, numRuns: 1500 } as const

/** The contract every input must meet; returns a description of a breach, or null. */
function configContract(text: string): string | null {
  const started = performance.now()
  let err: unknown
  try {
    parseConfig(text, FILE, lookup)
  } catch (e) {
    err = e
  }
  const ms = performance.now() - started
  // Generous (a loaded CI machine), yet far below what a backtracking regex on a 4 KiB line costs.
  if (ms > 1000) return `took ${ms.toFixed(0)} ms`
  if (err === undefined) return null
  if (!(err instanceof ConfigError)) return `threw ${String(err)}`
  const lines = Math.max(1, text.split(/\r?\n/).length)
  if (err.file !== FILE || !(err.line >= 1 && err.line <= lines)) return `position ${err.file}:${err.line} outside 1..${lines}`
  if (!err.message.startsWith(`${FILE}:${err.line}: `)) return `message without its position: ${err.message}`
  // One line on a terminal: no line break of any kind.
  if (/[\n\r\u2028\u2029\u0085]/.test(err.message)) return `message of several lines: ${JSON.stringify(err.message)}`
  return null
}

/** Throw the breach, so the counterexample report says what went wrong. */
const breach = (why: string | null): void => {
  if (why !== null) throw new Error(why)
}

const WORDS = [...KEYWORD_NAMES, 'PORT', 'Interface', '*', 'any', '-', '#', '25', 'smtp', '0', '65536', '127.0.0.1', '[::1]', '::1',
  'h:25', 'h:0', 'a, b:2', '/bin/x', './x', 'v1', 'v2', 'none', 'yes', 'no', '10.0.0.0/8', '1.5', '-1', 'constructor', '__proto__']
const fuzzLine = fc.oneof(
  fc.array(fc.constantFrom(...WORDS), { maxLength: 4 }).map(ws => ws.join(' ')),
  fc.tuple(fc.constantFrom(...WORDS), fc.string({ unit: 'binary', maxLength: 12 })).map(([k, v]) => `${k} ${v}`),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('', '   ', '\t', '# comment', 'x'.repeat(MAX_LINE + 1), `writefile ${'y'.repeat(MAX_LINE)}`),
)
const fuzzText = fc
  .tuple(fc.array(fuzzLine, { maxLength: 14 }), fc.constantFrom('\n', '\r\n', '\r', '\u2028'))
  .map(([lines, eol]) => lines.join(eol))

t.test('fuzz: random configuration text gives a configuration or a positioned ConfigError', async t => {
  fc.assert(fc.property(fuzzText, text => breach(configContract(text))), FUZZ)
  t.pass(`${FUZZ.numRuns} inputs, seed ${FUZZ.seed}`)
})

t.test('fuzz: mutated valid files give a configuration or a positioned ConfigError', async t => {
  const sample = readFileSync(fileURLToPath(new URL('../../etc/tcpproxy.conf', import.meta.url)), 'utf8').split('\n')
  const valid = [
    ...sample,
    'acp /bin/true', 'port 25', 'interface 127.0.0.1', 'server a, b:2525', 'timeout 0.5', 'accept-proxy 10.0.0.0/8',
    'send-proxy v2', 'max-connections 9', 'interface *', 'exec /bin/handler -x', 'writefile /tmp/d',
  ]
  const mutation = fc.oneof(
    fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('duplicate' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('swap' as const), at: fc.nat(), to: fc.nat() }),
    fc.record({ op: fc.constant('insert' as const), at: fc.nat(), line: fuzzLine }),
    fc.record({ op: fc.constant('splice' as const), at: fc.nat(), pos: fc.nat(), s: fc.string({ unit: 'binary', maxLength: 4 }), cut: fc.nat({ max: 3 }) }),
  )
  const mutate = (lines: string[], ms: Array<{ op: string; at: number; to?: number; line?: string; pos?: number; s?: string; cut?: number }>): string => {
    const out = [...lines]
    for (const m of ms) {
      const i = m.at % Math.max(1, out.length)
      if (m.op === 'delete') out.splice(i, 1)
      else if (m.op === 'duplicate') out.splice(i, 0, out[i] ?? '')
      else if (m.op === 'swap') {
        const j = (m.to as number) % Math.max(1, out.length)
        ;[out[i], out[j]] = [out[j] ?? '', out[i] ?? '']
      } else if (m.op === 'insert') out.splice(i, 0, m.line as string)
      else {
        const l = out[i] ?? ''
        const p = (m.pos as number) % (l.length + 1)
        out[i] = l.slice(0, p) + (m.s as string) + l.slice(p + (m.cut as number))
      }
    }
    return out.join('\n')
  }
  fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 5 }), ms => breach(configContract(mutate(valid, ms)))), FUZZ)
  t.pass(`${FUZZ.numRuns} mutations, seed ${FUZZ.seed}`)
})

t.test('"workers" is program-wide, a positive count, "-" for the default', async t => {
  t.equal(parse(['workers 2', 'port 8025', 'interface *', 'server a.example']).globals.workers, 2)
  t.equal(parse(['port 8025', 'interface *', 'server a.example', 'workers 4', 'workers -']).globals.workers, null)
  fails(t, ['workers 0'], 1, 'not a positive whole number: "0"')
})
