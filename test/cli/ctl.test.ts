/** `tcpproxy ctl` in process: its arguments, what it prints where, its exit status. */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { controlOf, parseCtlArgs, runCtl } from '../../lib/cli/ctl.js'
import { openControl, socketDir } from '../fixtures/control.js'

t.test('arguments: the command checked and normalised, --json, --control, the default path', async t => {
  t.same(parseCtlArgs(['show', 'sessions']), { kind: 'run', path: '/run/tcpproxy.ctl', config: null, line: 'show sessions', json: false })
  t.same(parseCtlArgs(['--control', '/tmp/c', 'kill', 'session', '12', '--json']), { kind: 'run', path: '/tmp/c', config: null, line: 'kill session 12 json', json: true })
  t.same(parseCtlArgs(['disable', 'server', '[::1]:25']), { kind: 'run', path: '/run/tcpproxy.ctl', config: null, line: 'disable server [::1]:25', json: false })
  t.same(parseCtlArgs(['-c', '/etc/x.conf', 'show', 'stats']), { kind: 'run', path: '/run/tcpproxy.ctl', config: '/etc/x.conf', line: 'show stats', json: false })
  t.throws(() => parseCtlArgs(['-c', '/etc/x.conf', '--control', '/tmp/c', 'help']), { code: 'ERR_USAGE', message: 'ctl: --control and -c exclude each other' })
  t.throws(() => parseCtlArgs(['show', 'stat']), { code: 'ERR_USAGE', message: 'ctl: unknown command "show stat"; try help' })
  t.throws(() => parseCtlArgs([]), { code: 'ERR_USAGE', message: "ctl: missing required argument 'command'" })
  t.throws(() => parseCtlArgs(['--frob', 'help']), { code: 'ERR_USAGE', message: "ctl: unknown option '--frob'" })
  const help = parseCtlArgs(['--help'])
  t.match(help, { kind: 'exit', code: 0, output: /^Usage: tcpproxy ctl \[--control PATH \| -c FILE\] \[--json\] COMMAND\.\.\.\n[^]*kill session ID/ })
})

async function ctl(argv: string[]) {
  let out = ''
  let err = ''
  const code = await runCtl(argv, { write: s => (out += s) }, { write: s => (err += s) })
  return { code, out, err }
}

t.test('runs: an answer on stdout (0), an error answer on stderr (1), JSON errors on stdout (1)', async t => {
  const { path } = await openControl(t)
  t.same(await ctl(['--control', path, 'kill', 'session', '7']), { code: 0, out: 'session 7 killed\n', err: '' })
  t.match(await ctl(['--control', path, 'show', 'sessions']), { code: 0, out: /^id .*\n 7 .*relaying\n$/, err: '' })
  t.same(await ctl(['--control', path, 'kill', 'session', '8']), { code: 1, out: '', err: 'tcpproxy: no session 8\n' })
  t.same(await ctl(['--control', path, '--json', 'kill', 'session', '8']), { code: 1, out: '{"error":"no session 8"}\n', err: '' })
})

t.test('fails in one line: no socket (1), a usage error (2); --help prints (0)', async t => {
  const d = socketDir(t)
  t.same(await ctl(['--control', join(d, 'x'), 'help']), { code: 1, out: '', err: `tcpproxy: control socket ${d}/x: no such file\n` })
  t.same(await ctl(['show']), { code: 2, out: '', err: 'tcpproxy: ctl: unknown command "show"; try help\n' })
  t.match(await ctl(['-h']), { code: 0, out: /^Usage: tcpproxy ctl/, err: '' })
})

t.test('-c FILE: the socket its control line names; one line when it names none or cannot be read', async t => {
  const { path } = await openControl(t)
  const d = socketDir(t)
  const conf = (name: string, text: string): string => {
    writeFileSync(join(d, name), text)
    return join(d, name)
  }
  const good = conf('good.conf', `control ${path}\nport 8025\n  interface *\n    server 127.0.0.1:25\n`)
  t.same(await ctl(['-c', good, 'kill', 'session', '7']), { code: 0, out: 'session 7 killed\n', err: '' }, 'the daemon started with this file')
  const none = conf('none.conf', 'port 8025\n  interface *\n    server 127.0.0.1:25\n')
  t.same(await ctl(['-c', none, 'help']), { code: 2, out: '', err: `tcpproxy: ${none} has no control line; name the socket with --control PATH\n` })
  const partial = conf('partial.conf', `control ${path}\nport 8025\n  frobnicate yes\n`)
  t.same(await ctl(['-c', partial, 'kill', 'session', '7']), { code: 0, out: 'session 7 killed\n', err: '' }, 'only the control line is read: the rest may be mid-edit')
  const bad = conf('bad.conf', `control ${path} extra\n`)
  t.same(await ctl(['-c', bad, 'help']), { code: 2, out: '', err: `tcpproxy: ${bad}:1: unexpected text after "control ${path}"\n` })
  const last = conf('last.conf', `control ${join(d, 'old')}\ncontrol ${path}\n`)
  t.same(await ctl(['--config', last, 'kill', 'session', '7']), { code: 0, out: 'session 7 killed\n', err: '' }, 'the last control line')
  t.equal(controlOf(conf('dash.conf', 'control -\n')), '/run/tcpproxy.ctl', 'control -: the default socket, as the daemon reads it')
  const bare = conf('bare.conf', 'control\n')
  t.same(await ctl(['-c', bare, 'help']), { code: 2, out: '', err: `tcpproxy: ${bare}:1: missing value for "control"\n` }, 'no value: the daemon\'s error too')
  t.same(await ctl(['-c', join(d, 'missing.conf'), 'help']), { code: 1, out: '', err: `tcpproxy: cannot read configuration file ${d}/missing.conf: no such file or directory (ENOENT)\n` })
})
