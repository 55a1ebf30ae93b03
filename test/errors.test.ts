/**
 * Error codes, exit statuses and the rendering of positioned errors.
 */
import t from 'tap'
import { ConfigError, ERROR_CODES, ProxyHeaderError, TcpproxyError, errnoText, errorCode, errorText, isOutOfDescriptors, oneLineText } from '../lib/errors.js'

t.test('usage and configuration errors exit 2, run-time errors exit 1', async t => {
  t.same(ERROR_CODES, {
    ERR_USAGE: 2,
    ERR_CONFIG: 2,
    ERR_NOT_SUPPORTED: 2,
    ERR_BIND: 1,
    ERR_IO: 1,
    ERR_PROXY_HEADER: 1,
    ERR_PRIVILEGES: 1,
    ERR_RUNTIME: 1,
  })
  for (const [code, status] of Object.entries(ERROR_CODES)) {
    const e = new TcpproxyError(code as keyof typeof ERROR_CODES, 'boom')
    t.equal(e.exitCode, status, code)
    t.equal(e.code, code)
  }
})

t.test('a TcpproxyError is an Error with its message, name and cause', async t => {
  const cause = new Error('EADDRINUSE')
  const e = new TcpproxyError('ERR_BIND', 'cannot listen on *:25', { cause })
  t.ok(e instanceof Error)
  t.equal(e.name, 'TcpproxyError')
  t.equal(e.message, 'cannot listen on *:25')
  t.equal(e.cause, cause)
  t.match(String(e), 'TcpproxyError: cannot listen on *:25')
})

t.test('a ConfigError with a line renders FILE:LINE: message', async t => {
  const e = new ConfigError('/etc/tcpproxy.conf', 12, 'unknown keyword "bogus"')
  t.ok(e instanceof TcpproxyError)
  t.equal(e.name, 'ConfigError')
  t.equal(e.message, '/etc/tcpproxy.conf:12: unknown keyword "bogus"')
  t.equal(e.file, '/etc/tcpproxy.conf')
  t.equal(e.line, 12)
  t.equal(e.reason, 'unknown keyword "bogus"')
  t.equal(e.code, 'ERR_CONFIG')
  t.equal(e.exitCode, 2)
})

t.test('a ConfigError at line 0 names the command-line option instead', async t => {
  const e = new ConfigError('option -b', 0, 'missing port in "[::1]"')
  t.equal(e.message, 'option -b: missing port in "[::1]"')
  t.equal(e.line, 0)
})

t.test('a ConfigError may carry another code', async t => {
  const e = new ConfigError('tcpproxy.conf', 3, '"exec" is not supported yet', 'ERR_NOT_SUPPORTED')
  t.equal(e.code, 'ERR_NOT_SUPPORTED')
  t.equal(e.message, 'tcpproxy.conf:3: "exec" is not supported yet')
})

t.test('a ProxyHeaderError names the byte where parsing stopped', async t => {
  const e = new ProxyHeaderError('bad signature', 5)
  t.ok(e instanceof TcpproxyError)
  t.equal(e.name, 'ProxyHeaderError')
  t.equal(e.message, 'bad PROXY header at byte 5: bad signature')
  t.equal(e.offset, 5)
  t.equal(e.code, 'ERR_PROXY_HEADER')
  t.equal(e.exitCode, 1)
})

t.test('errorText gives the message of an Error and the string of anything else', async t => {
  t.equal(errorText(new Error('connect ECONNREFUSED 127.0.0.1:25')), 'connect ECONNREFUSED 127.0.0.1:25')
  t.equal(errorText(new TcpproxyError('ERR_IO', 'disk full')), 'disk full')
  t.equal(errorText('plain string'), 'plain string')
  t.equal(errorText(42), '42')
  t.equal(errorText(undefined), 'undefined')
  t.equal(errorText(null), 'null')
  t.equal(errorText({ toString: () => 'custom' }), 'custom')
})

t.test('errorCode gives the errno code of system errors, else the text', async t => {
  t.equal(errorCode(Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' })), 'EADDRINUSE')
  t.equal(errorCode(new Error('plain')), 'plain')
  t.equal(errorCode(null), 'null')
})

t.test('isOutOfDescriptors knows the per-process and the system-wide limit, nothing else', async t => {
  t.equal(isOutOfDescriptors(Object.assign(new Error('x'), { code: 'EMFILE' })), true)
  t.equal(isOutOfDescriptors(Object.assign(new Error('x'), { code: 'ENFILE' })), true)
  t.equal(isOutOfDescriptors(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), false)
})

t.test('a message is one line: control characters and Unicode line breaks are written out', async t => {
  const e = new TcpproxyError('ERR_CONFIG', 'bad "a\u0085b\u2028c\u2029d\u001be\nf"')
  t.equal(e.message, 'bad "a\\u0085b\\u2028c\\u2029d\\u001be\\u000af"')
  t.equal(new ConfigError('f.conf', 3, 'x\ry').reason, 'x\\u000dy', 'the reason too')
  t.equal(oneLineText('plain text, é ü'), 'plain text, é ü', 'printable text is left alone')
})

t.test('an errno name is spelled out with the name kept for searching', async t => {
  t.equal(errnoText('EACCES'), 'permission denied (EACCES)')
  t.equal(errnoText('ENOENT'), 'no such file or directory (ENOENT)')
  t.equal(errnoText('not an errno'), 'not an errno')
  t.equal(errorText('EACCES'), 'permission denied (EACCES)', 'errorText of a bare code')
})
