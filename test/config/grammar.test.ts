/**
 * tcpproxy.conf line by line: keywords, values, comments, line ends and
 * lengths (lib/config/grammar.ts), each error at its FILE:LINE.
 */
import t from 'tap'
import { MAX_LINE } from '../../lib/config/grammar.js'
import { parseConfig } from '../../lib/config/parse.js'
import { FILE, configError, fails, lookup, parse } from '../fixtures/config-text.js'

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

t.test('a file without services is an error at its last line', async t => {
  const reason = 'no service defined (expected "port" and "interface" lines)'
  t.throws(() => parseConfig('', FILE, lookup), configError(1, reason), 'an empty file')
  t.throws(() => parseConfig('timeout 5', FILE, lookup), configError(1, reason), 'no final newline')
  t.throws(() => parseConfig('timeout 5\n', FILE, lookup), configError(1, reason), 'a final newline does not add a line')
  t.throws(() => parseConfig('# c\ntimeout 5\n\n', FILE, lookup), configError(3, reason), 'a blank last line counts')
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
