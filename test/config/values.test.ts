/**
 * The value parsers (lib/config/values.ts), directly and through a file.
 */
import t from 'tap'
import { isProgram, parseEnvPrefix, parseKeepalive, parseSeconds, parseYesNo, splitCommand, yesOrNo } from '../../lib/config/values.js'
import { fails, thrown } from '../fixtures/config-text.js'

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

t.test('keepalive takes whole seconds, 0 (off) to 32767 (TCP_KEEPIDLE)', async t => {
  t.equal(parseKeepalive('0'), 0)
  t.equal(parseKeepalive('32767'), 32767)
  for (const bad of ['', '-1', '0.5', '32768', '100000', 'x']) {
    t.throws(() => parseKeepalive(bad), { code: 'ERR_CONFIG', message: `not a whole number of seconds from 0 to 32767: ${JSON.stringify(bad)}` })
  }
  fails(t, ['keepalive 300', 'port 22', 'interface *', 'server h', 'keepalive often'], 5, 'not a whole number of seconds from 0 to 32767: "often"')
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

t.test('yes/no: "yes" and "no" only, case-sensitive; parseYesNo takes an empty value as no', async t => {
  t.equal(yesOrNo('yes'), true)
  t.equal(yesOrNo('no'), false)
  for (const other of ['', 'YES', 'on', '1']) t.equal(yesOrNo(other), undefined, JSON.stringify(other))
  t.equal(parseYesNo('yes'), true)
  t.equal(parseYesNo('no'), false)
  t.equal(parseYesNo(''), false)
  t.throws(() => parseYesNo('No'), { name: 'TcpproxyError', code: 'ERR_CONFIG', message: 'expected yes or no, not "No"' })
})

t.test('a program command line refuses every control character but TAB, a blank', async t => {
  t.same(splitCommand('/bin/p\ta'), ['/bin/p', 'a'])
  for (const c of ['\u0000', '\u001b', '\u007f', '\u0085', '\u2028']) {
    t.throws(() => splitCommand(`/bin/p a${c}b`), { code: 'ERR_CONFIG', message: /^control character in program command line / }, escape(c))
  }
})
