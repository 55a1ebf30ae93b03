/**
 * The systemd units in etc/: their commands are what the CLI accepts (and
 * --check fails on a bad file, so `systemctl reload` does), the service is
 * hardened to systemd-analyze's exposure of 4.0 or less, and the socket unit
 * lists the ports of the shipped tcpproxy.conf.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from '../../lib/cli/options.js'
import { versionText } from '../../lib/version.js'
import { BIN, ROOT } from '../fixtures/harness.js'

const unit = (name: string): string => readFileSync(join(ROOT, 'etc', name), 'utf8')
/** Every `Key=value` of a unit, in order (comments left out). */
const settings = (text: string, key: string): string[] =>
  text
    .split('\n')
    .filter(l => l.startsWith(`${key}=`))
    .map(l => l.slice(key.length + 1))

const service = unit('tcpproxy.service')

t.test('tcpproxy.service: Type=notify, ExecStart where npm install -g puts the command, and the options it gives', async t => {
  t.same(settings(service, 'Type'), ['notify'])
  const [start] = settings(service, 'ExecStart')
  const [cmd, ...args] = (start as string).split(/\s+/)
  t.equal(cmd, '/usr/local/bin/tcpproxy', "npm's default global prefix")
  const r = parseArgs(args, versionText)
  t.equal(r.kind, 'run')
  t.match(r.kind === 'run' ? r.options : null, { foreground: true, config: '/etc/tcpproxy.conf', debug: false })
})

t.test('tcpproxy.service: ExecReload checks the file, then signals; --check fails on a bad file', async t => {
  const reload = settings(service, 'ExecReload')
  t.equal(reload.length, 2)
  const [cmd, ...args] = (reload[0] as string).split(/\s+/)
  t.equal(cmd, '/usr/local/bin/tcpproxy')
  const r = parseArgs(args, versionText)
  t.match(r.kind === 'run' ? r.options : null, { check: true, config: '/etc/tcpproxy.conf' })
  t.equal(reload[1], '/bin/kill -HUP $MAINPID')
  // The same check on files: systemd stops at a failing ExecReload.
  const dir = t.testdir({})
  const good = join(dir, 'good.conf')
  const bad = join(dir, 'bad.conf')
  writeFileSync(good, 'port 8025\ninterface 127.0.0.1\nserver 127.0.0.1:25\n')
  writeFileSync(bad, 'port 8025\ninterface 127.0.0.1\nsrever 127.0.0.1:25\n')
  const run = (file: string): number | null => spawnSync(process.execPath, [BIN, ...args.slice(0, -1), file]).status
  t.equal(run(good), 0)
  t.not(run(bad), 0, 'a bad file fails the reload')
})

const analyze = spawnSync('systemd-analyze', ['--version']).error ? 'systemd-analyze is not installed (apt-get install systemd)' : false

t.test('tcpproxy.service: systemd-analyze rates its exposure 4.0 or less', { skip: analyze }, async t => {
  const r = spawnSync('systemd-analyze', ['security', '--offline=true', join(ROOT, 'etc', 'tcpproxy.service')], { encoding: 'utf8' })
  const m = /Overall exposure level for tcpproxy\.service: (\d+\.\d)/.exec(r.stdout)
  t.ok(m, r.stdout + r.stderr)
  t.ok(Number(m?.[1]) <= 4.0, `exposure ${m?.[1]}`)
})

t.test('tcpproxy.socket: the ports of the shipped tcpproxy.conf, for tcpproxy.service', async t => {
  const socket = unit('tcpproxy.socket')
  t.same(settings(socket, 'Service'), ['tcpproxy.service'])
  const ports = settings(socket, 'ListenStream').map(l => Number(l.slice(l.lastIndexOf(':') + 1)))
  const z = spawnSync(process.execPath, [BIN, '-z', '-c', join(ROOT, 'etc', 'tcpproxy.conf')], { encoding: 'utf8' })
  t.same(ports.sort(), z.stdout.trim().split('\n').map(Number).sort())
})
