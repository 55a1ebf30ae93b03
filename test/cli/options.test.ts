/**
 * The command line: options in, typed options out, usage errors as ERR_USAGE.
 */
import fc from 'fast-check'
import t from 'tap'
import { DEFAULT_OPTIONS, parseArgs, type CliOptions, type CliResult } from '../../lib/cli/options.js'
import { TcpproxyError, oneLineText } from '../../lib/errors.js'
import { buildConfig, type SettingsDeps } from '../../lib/cli/settings.js'

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
    [['-a', '/usr/sbin/check -x'], ['--acp', '/usr/sbin/check -x'], { acp: '/usr/sbin/check -x' }],
    [['-v', 'MY_'], ['--env-prefix', 'MY_'], { envPrefix: 'MY_' }],
    [['-n'], ['--no-resolve'], { noResolve: true }],
    [['-w', '/tmp/dump'], ['--writefile', '/tmp/dump'], { writefile: '/tmp/dump' }],
    [['-l', 'smtp-proxy'], ['--logname', 'smtp-proxy'], { logname: 'smtp-proxy' }],
    [['-r', 'forward'], ['--redirect-mode', 'forward'], { redirectMode: 'forward' }],
    [['-q', '10.0.0.1'], ['--source', '10.0.0.1'], { source: '10.0.0.1' }],
  ]
  for (const [short, long, expected] of cases) {
    t.same(parseArgs(short, V), run(expected), short.join(' '))
    t.same(parseArgs(long, V), run(expected), long.join(' '))
  }
})

t.test('the options without a short form', async t => {
  t.same(parseArgs(['--connect-timeout', '2.5'], V), run({ connectTimeout: 2.5 }))
  t.same(parseArgs(['--connect-timeout=0'], V), run({ connectTimeout: 0 }))
  t.same(parseArgs(['--keepalive', '300'], V), run({ keepalive: 300 }))
  t.throws(() => parseArgs(['--keepalive', '0.5'], V), usage('option --keepalive: not a whole number of seconds from 0 to 32767: "0.5"'))
  t.same(parseArgs(['--check'], V), run({ check: true }))
  t.same(parseArgs(['--acp-timeout', '0.5'], V), run({ acpTimeout: 0.5 }))
  t.same(parseArgs(['--acp-timeout=30'], V), run({ acpTimeout: 30 }))
  t.same(parseArgs(['--forge-addr', '--forge-port', '--transparent'], V), run({ forgeAddr: true, forgePort: true, transparent: true }))
  t.same(parseArgs(['--no-relay-thread'], V), run({ noRelayThread: true }))
  t.same(
    parseArgs(['--balance', 'leastconn', '--max-fails=0', '--fail-timeout', '2.5', '--check-interval', '1', '--allow', '10.0.0.0/8', '--deny', '10.0.0.1', '--allow', '::1', '--max-per-client', '5'], V),
    run({ balance: 'leastconn', maxFails: 0, failTimeout: 2.5, checkInterval: 1, allow: ['10.0.0.0/8', '::1'], deny: ['10.0.0.1'], maxPerClient: 5 }),
    'the access lists are repeatable',
  )
  t.throws(() => parseArgs(['--max-fails', 'x'], V), usage('option --max-fails: not a whole number: "x"'))
  t.throws(() => parseArgs(['--max-per-client', '-1'], V), usage('option --max-per-client: not a whole number: "-1"'))
})

t.test('without -n client names are looked up; -n turns that off', async t => {
  const r = parseArgs(['-b', '8025', 'a.example'], V)
  t.equal(r.kind === 'run' && r.options.noResolve, false)
  t.same(parseArgs(['-dn', '-b', '8025', 'a.example'], V), run({ debug: true, noResolve: true, bind: '8025', server: ['a.example'] }))
})

t.test('option values are taken as written: checked later, where they are used', async t => {
  // -v is checked by buildConfig (option -v: ...), -a split there; an empty value is a value.
  t.same(parseArgs(['-v', 'bad-prefix', '-a', '', '-l', ''], V), run({ envPrefix: 'bad-prefix', acp: '', logname: '' }))
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
  t.throws(() => parseArgs(['--acp-timeout', '1m'], V), usage('option --acp-timeout: not a number of seconds: "1m"'))
})

t.test('an unknown option is an error without commander\'s "error: " prefix', async t => {
  t.throws(() => parseArgs(['-x'], V), usage("unknown option '-x'"))
  t.throws(() => parseArgs(['-b', '8025', '--bogus', 'host'], V), usage("unknown option '--bogus'"))
})

t.test('an option without its value is an error without commander\'s "error: " prefix', async t => {
  t.throws(() => parseArgs(['-b'], V), usage("option '-b, --bind <[interface:]port>' argument missing"))
  t.throws(() => parseArgs(['-t'], V), usage("option '-t, --timeout <seconds>' argument missing"))
  t.throws(() => parseArgs(['-f'], V), usage("option '-f <file>' argument missing"))
  t.throws(() => parseArgs(['-a'], V), usage("option '-a, --acp <program>' argument missing"))
  t.throws(() => parseArgs(['-w'], V), usage("option '-w, --writefile <base>' argument missing"))
})

t.test('a host server takes no further arguments', async t => {
  t.same(parseArgs(['-b', '8025', 'mail.example.org:25'], V), run({ bind: '8025', server: ['mail.example.org:25'] }))
  t.throws(() => parseArgs(['-b', '8025', 'a.example', 'b.example', 'c'], V), usage('extra arguments after server: b.example c'))
})

t.test('a handler program keeps its own arguments after --', async t => {
  t.same(parseArgs(['-b', '8025', '--', '/bin/cat', '-n'], V), run({ bind: '8025', server: ['/bin/cat', '-n'] }))
  t.same(parseArgs(['-b', '8025', './handler', 'arg'], V), run({ bind: '8025', server: ['./handler', 'arg'] }))
  t.same(parseArgs(['-b', '8025', '/usr/sbin/handler a b'], V), run({ bind: '8025', server: ['/usr/sbin/handler a b'] }), 'a quoted command line stays one word here')
  t.same(parseArgs(['/usr/sbin/handler', 'x'], V), run({ server: ['/usr/sbin/handler', 'x'] }), 'without -b (inetd mode) too')
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
    for (const opt of ['-b, --bind', '-c, --config', '-d, --debug', '-s, --standalone', '-t, --timeout', '--connect-timeout', '-z, --list-ports', '--check', '-V, --version', '-h, --help',
      '-a, --acp', '--acp-timeout', '-v, --env-prefix', '-n, --no-resolve', '-w, --writefile', '-l, --logname']) {
      t.match(r.output, opt, `${flag} lists ${opt}`)
    }
    t.match(r.output, /-f <file> +the same as -c/, '-f is listed, as in the man page')
    t.match(r.output, /control socket: tcpproxy ctl \[--control PATH \| -c FILE\] \[--json\] COMMAND/, 'the ctl subcommand is named')
  }
})

t.test('-p means the default pidfile, --pidfile another; daemon options are typed', async t => {
  const a = parseArgs(['-p', '--foreground', '-u', 'mail.daemon', '--grace', '2.5', '--max-connections', '50', '--log-format', 'json', '--syslog-socket', '/tmp/log', '--syslog-facility', 'local0', '-b', '1', 'h'], '1')
  t.match(a, {
    kind: 'run',
    options: { pidfile: '/var/run/tcpproxy.pid', foreground: true, user: 'mail.daemon', grace: 2.5, maxConnections: 50, logFormat: 'json', syslogSocket: '/tmp/log', syslogFacility: 'local0' },
  })
  t.match(parseArgs(['--pidfile', '/run/x.pid', '-b', '1', 'h'], '1'), { options: { pidfile: '/run/x.pid' } })
  t.same(parseArgs(['ctl', 'show', 'sessions', '--json'], '1'), { kind: 'ctl', argv: ['show', 'sessions', '--json'] }, 'ctl is a subcommand')
  t.match(parseArgs(['--control', '/run/x.ctl', '--control-group', 'adm', '-b', '1', 'h'], '1'), { options: { control: '/run/x.ctl', controlGroup: 'adm' } })
  t.throws(() => parseArgs(['--max-connections', '0'], '1'), { code: 'ERR_USAGE', message: 'option --max-connections: not a positive whole number: "0"' })
  t.match(parseArgs(['--max-programs', '40', '-b', '1', 'h'], '1'), { options: { maxPrograms: 40 } })
  t.throws(() => parseArgs(['--max-programs', '-1'], '1'), { code: 'ERR_USAGE' })
  t.throws(() => parseArgs(['--log-format', 'xml'], '1'), { code: 'ERR_USAGE', message: /--log-format.*xml/ })
  t.match(parseArgs(['--workers', '4', '-b', '1', 'h'], '1'), { options: { workers: 4 } })
  t.match(parseArgs(['-b', '1', 'h'], '1'), { options: { workers: null } })
  t.match(parseArgs(['--metrics', '127.0.0.1:9100', '-b', '1', 'h'], '1'), { options: { metrics: '127.0.0.1:9100' } })
  t.match(parseArgs(['-b', '1', 'h'], '1'), { options: { metrics: null } })
  t.throws(() => parseArgs(['--workers', '0'], '1'), { code: 'ERR_USAGE', message: 'option --workers: not a positive whole number: "0"' })
})

/*
 * Fuzzing (fast-check, fixed seed, bounded runs): any argument vector gives
 * options and then a configuration, or a TcpproxyError of one line that
 * names what was wrong (the option, the argument, or the file).
 */
const FUZZ = { seed: 0x5eed, numRuns: 1500 } as const
const OPTS = ['-b', '--bind', '-c', '--config', '-f', '-d', '-s', '-t', '--timeout', '--connect-timeout', '-a', '--acp', '--acp-timeout',
  '-v', '--env-prefix', '-n', '-w', '-l', '--accept-proxy', '--proxy-timeout', '--keepalive', '--send-proxy', '--foreground', '-p', '--pidfile', '-u',
  '--syslog-socket', '--syslog-facility', '--log-format', '--grace', '--max-connections', '-z', '--check', '--', '-', '-x', '--bogus', '-ds', '-bt']
const VALUES = ['8025', '127.0.0.1:8025', '[::1]:25', 'smtp', '0', '65536', '-1', '1.5', 'x', '', 'h:25', 'a, b:2', '/bin/h', './h', 'v1', 'v3',
  'json', 'text', '10.0.0.0/8', '10.0.0.0/40', 'MY_', '1BAD', 'nobody', '/nonexistent.conf']
const argvArb = fc.array(fc.oneof(fc.constantFrom(...OPTS), fc.constantFrom(...VALUES), fc.string({ unit: 'binary', maxLength: 10 })), { maxLength: 8 })

t.test('fuzz: any command line gives a configuration or a one-line error naming its cause', async t => {
  const deps: SettingsDeps = {
    readFile: path => {
      throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' })
    },
    lookup: name => ({ smtp: 25 })[name],
    inetdPort: null,
  }
  fc.assert(
    fc.property(argvArb, fc.boolean(), (argv, inetd) => {
      try {
        const r = parseArgs(argv, V)
        if (r.kind === 'run') buildConfig(r.options, { ...deps, inetdPort: inetd ? 2525 : null })
        return
      } catch (err) {
        if (!(err instanceof TcpproxyError)) throw new Error(`threw ${String(err)}`)
        const m = err.message
        if (/[\n\r\u2028\u2029\u0085]/.test(m) || m === '') throw new Error(`not one line: ${JSON.stringify(m)}`)
        // The cause is named: an option or word of this command line, the server argument, or the file.
        const named = argv.some(w => w.length > 1 && m.includes(oneLineText(w.split('=')[0] as string))) || /server|configuration file|option/.test(m)
        if (!named) throw new Error(`names nothing of ${JSON.stringify(argv)}: ${m}`)
      }
    }),
    FUZZ,
  )
  t.pass(`${FUZZ.numRuns} command lines, seed ${FUZZ.seed}`)
})

t.test('the help states the configuration defaults as they are', async t => {
  const r = parseArgs(['-h'], V)
  if (r.kind !== 'exit') throw new Error('expected an exit result')
  // Flattened: commander wraps long lines.
  const help = r.output.replace(/\s+/g, ' ')
  for (const said of ['idle timeout, 0 = none (default 60)', 'each upstream connect (default 10)', 'runs longer (default 10)',
    'given to programs (default PROXY_)', 'send the PROXY header (default 5)', 'write the pid to /var/run/tcpproxy.pid']) {
    t.match(help, said, said)
  }
})
