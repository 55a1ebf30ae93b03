/**
 * The command line: options in, typed options out, usage errors as ERR_USAGE.
 */
import t from 'tap'
import { DEFAULT_OPTIONS, parseArgs, type CliOptions, type CliResult } from '../lib/cli.js'

const V = '3.0.0'
const NONE: CliOptions = DEFAULT_OPTIONS
const run = (options: Partial<CliOptions>): CliResult => ({ kind: 'run', options: { ...NONE, ...options } })
const usage = (message: string) => ({ name: 'TcpproxyError', code: 'ERR_USAGE', message })

t.test('no arguments give every option unset', async t => {
  t.same(parseArgs([], V), run({}))
})

t.test('every short option and its long form', async t => {
  const cases: [string[], string[], Partial<CliOptions>][] = [
    [['-b', '8025'], ['--bind', '8025'], { bind: '8025' }],
    [['-c', 'my.conf'], ['--config', 'my.conf'], { config: 'my.conf' }],
    [['-d'], ['--debug'], { debug: true }],
    [['-s'], ['--standalone'], { standalone: true }],
    [['-t', '30'], ['--timeout', '30'], { timeout: 30 }],
    [['-z'], ['--list-ports'], { listPorts: true }],
  ]
  for (const [short, long, expected] of cases) {
    t.same(parseArgs(short, V), run(expected), short.join(' '))
    t.same(parseArgs(long, V), run(expected), long.join(' '))
  }
})

t.test('the options without a short form', async t => {
  t.same(parseArgs(['--connect-timeout', '2.5'], V), run({ connectTimeout: 2.5 }))
  t.same(parseArgs(['--connect-timeout=0'], V), run({ connectTimeout: 0 }))
  t.same(parseArgs(['--check'], V), run({ check: true }))
})

t.test('-f is the same as -c', async t => {
  t.same(parseArgs(['-f', '/etc/other.conf'], V), run({ config: '/etc/other.conf' }))
})

t.test('-c and -f together are an error', async t => {
  t.throws(() => parseArgs(['-c', 'a.conf', '-f', 'b.conf'], V), usage('give the configuration file once (-c or -f)'))
})

t.test('a bad number of seconds names the option', async t => {
  t.throws(() => parseArgs(['-t', 'abc'], V), usage('option -t: not a number of seconds: "abc"'))
  t.throws(() => parseArgs(['-t', '-5'], V), usage('option -t: not a number of seconds: "-5"'))
  t.throws(() => parseArgs(['--connect-timeout', 'soon'], V), usage('option --connect-timeout: not a number of seconds: "soon"'))
})

t.test('an unknown option is an error without commander\'s "error: " prefix', async t => {
  t.throws(() => parseArgs(['-x'], V), usage("unknown option '-x'"))
  t.throws(() => parseArgs(['-b', '8025', '--bogus', 'host'], V), usage("unknown option '--bogus'"))
})

t.test('an option without its value is an error without commander\'s "error: " prefix', async t => {
  t.throws(() => parseArgs(['-b'], V), usage("option '-b, --bind <[interface:]port>' argument missing"))
  t.throws(() => parseArgs(['-t'], V), usage("option '-t, --timeout <seconds>' argument missing"))
  t.throws(() => parseArgs(['-f'], V), usage("option '-f <file>' argument missing"))
})

t.test('a host server takes no further arguments', async t => {
  t.same(parseArgs(['-b', '8025', 'mail.example.org:25'], V), run({ bind: '8025', server: ['mail.example.org:25'] }))
  t.throws(() => parseArgs(['-b', '8025', 'a.example', 'b.example', 'c'], V), usage('extra arguments after server: b.example c'))
})

t.test('a handler program keeps its own arguments after --', async t => {
  t.same(parseArgs(['-b', '8025', '--', '/bin/cat', '-n'], V), run({ bind: '8025', server: ['/bin/cat', '-n'] }))
  t.same(parseArgs(['-b', '8025', './handler', 'arg'], V), run({ bind: '8025', server: ['./handler', 'arg'] }))
})

t.test('short flags cluster', async t => {
  t.same(parseArgs(['-ds', '-b', '8025', 'h.example'], V), run({ debug: true, standalone: true, bind: '8025', server: ['h.example'] }))
  t.same(parseArgs(['-dzb', '127.0.0.1:8025'], V), run({ debug: true, listPorts: true, bind: '127.0.0.1:8025' }))
  t.same(parseArgs(['-t5'], V), run({ timeout: 5 }))
})

t.test('options may follow the server argument', async t => {
  t.same(parseArgs(['h.example', '-b', '8025', '-d'], V), run({ debug: true, bind: '8025', server: ['h.example'] }))
})

t.test('-V and --version print the version passed in and exit 0', async t => {
  t.same(parseArgs(['-V'], V), { kind: 'exit', code: 0, output: 'tcpproxy 3.0.0\n' })
  t.same(parseArgs(['--version'], '9.8.7-rc.1'), { kind: 'exit', code: 0, output: 'tcpproxy 9.8.7-rc.1\n' })
})

t.test('-h and --help print the usage with every option and exit 0', async t => {
  for (const flag of ['-h', '--help']) {
    const r = parseArgs([flag], V)
    if (r.kind !== 'exit') throw new Error('expected an exit result')
    t.equal(r.code, 0)
    t.match(r.output, /^Usage: tcpproxy \[options\] \[server\]\n/)
    for (const opt of ['-b, --bind', '-c, --config', '-d, --debug', '-s, --standalone', '-t, --timeout', '--connect-timeout', '-z, --list-ports', '--check', '-V, --version', '-h, --help']) {
      t.match(r.output, opt, `${flag} lists ${opt}`)
    }
    t.notMatch(r.output, /-f <file>/, '-f stays hidden')
  }
})
