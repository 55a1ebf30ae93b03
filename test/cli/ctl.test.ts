/** `tcpproxy ctl` in process: its arguments, what it prints where, its exit status. */
import t from 'tap'
import { join } from 'node:path'
import { parseCtlArgs, runCtl } from '../../lib/cli/ctl.js'
import { openControl, socketDir } from '../fixtures/control.js'

t.test('arguments: the command checked and normalised, --json, --control, the default path', async t => {
  t.same(parseCtlArgs(['show', 'sessions']), { kind: 'run', path: '/run/tcpproxy.ctl', line: 'show sessions', json: false })
  t.same(parseCtlArgs(['--control', '/tmp/c', 'kill', 'session', '12', '--json']), { kind: 'run', path: '/tmp/c', line: 'kill session 12 json', json: true })
  t.same(parseCtlArgs(['disable', 'server', '[::1]:25']), { kind: 'run', path: '/run/tcpproxy.ctl', line: 'disable server [::1]:25', json: false })
  t.throws(() => parseCtlArgs(['show', 'stat']), { code: 'ERR_USAGE', message: 'ctl: unknown command "show stat"; try help' })
  t.throws(() => parseCtlArgs([]), { code: 'ERR_USAGE', message: "ctl: missing required argument 'command'" })
  t.throws(() => parseCtlArgs(['--frob', 'help']), { code: 'ERR_USAGE', message: "ctl: unknown option '--frob'" })
  const help = parseCtlArgs(['--help'])
  t.match(help, { kind: 'exit', code: 0, output: /^Usage: tcpproxy ctl \[--control PATH\] \[--json\] COMMAND\.\.\.\n[^]*kill session ID/ })
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
