/**
 * The wording of errors about a service's settings (lib/config/problem.ts):
 * a file's service by FILE:LINE and keywords, the command line's by options.
 */
import t from 'tap'
import { DEFAULT_SETTINGS, type ServiceDef } from '../../lib/config/config.js'
import { FILE_WORDING, KEYWORD_OPTIONS, OPTION_WORDING, problemError, settingError, type Problem } from '../../lib/config/problem.js'

const service = (file: string, line: number): ServiceDef => ({ ...DEFAULT_SETTINGS, port: 80, iface: null, ifaceText: '*', source: { file, line } })
const fromFile = service('tcpproxy.conf', 7)
const fromCommandLine = service('option -b', 0)

t.test('a file names settings as written, quoted; the command line names their options', async t => {
  t.equal(FILE_WORDING.setting('srcip'), '"srcip"')
  t.equal(FILE_WORDING.setting('forge-addr', 'yes'), '"forge-addr yes"')
  t.equal(FILE_WORDING.advice('redirect-mode', 'accept'), 'redirect-mode accept')
  t.equal(FILE_WORDING.handler, ' ("exec")')
  t.equal(OPTION_WORDING.setting('srcip'), '-q')
  t.equal(OPTION_WORDING.setting('forge-addr', 'yes'), '--forge-addr', 'a flag option is the "yes" of its keyword')
  t.equal(OPTION_WORDING.setting('redirect-mode', 'forward-only'), '-r forward-only', 'any other value is the option\'s argument')
  t.equal(OPTION_WORDING.advice('redirect-mode', 'accept'), '-r accept')
  t.equal(OPTION_WORDING.handler, '', 'a handler on the command line is the server argument, no option')
})

t.test('every keyword with an option is one a problem or a start-up check names', async t => {
  t.same(Object.keys(KEYWORD_OPTIONS).sort(), ['forge-addr', 'forge-port', 'redirect-mode', 'srcip', 'transparent'])
  t.ok(Object.isFrozen(KEYWORD_OPTIONS) && Object.isFrozen(FILE_WORDING) && Object.isFrozen(OPTION_WORDING))
})

t.test('problemError: a file\'s service at its line (ERR_CONFIG), the command line\'s a usage error', async t => {
  const problem: Problem = w => `sets ${w.setting('forge-port', 'yes')}`
  t.has(problemError(fromFile, problem), {
    name: 'ConfigError',
    code: 'ERR_CONFIG',
    message: 'tcpproxy.conf:7: service * port 80 sets "forge-port yes"',
    file: 'tcpproxy.conf',
    line: 7,
  })
  const cli = problemError(fromCommandLine, problem)
  t.has(cli, { name: 'TcpproxyError', code: 'ERR_USAGE', message: "the command line's service sets --forge-port" })
  t.equal(cli.exitCode, 2)
})

t.test('settingError: FILE:LINE and the file\'s reason, or the option and the command line\'s reason', async t => {
  t.has(settingError(fromFile, 'srcip', 'srcip 192.0.2.1: gone', '192.0.2.1: gone'), {
    name: 'ConfigError',
    code: 'ERR_CONFIG',
    message: 'tcpproxy.conf:7: srcip 192.0.2.1: gone',
  })
  t.has(settingError(fromCommandLine, 'transparent', 'transparent: denied', 'denied', 'ERR_PRIVILEGES'), {
    code: 'ERR_PRIVILEGES',
    message: 'option --transparent: denied',
    file: 'option --transparent',
    line: 0,
  })
})
