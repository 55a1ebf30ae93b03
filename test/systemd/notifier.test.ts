import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import split2 from 'split2'
import { notifier } from '../../lib/systemd/notifier.js'
import { nativeAddon } from '../../lib/native/addon.js'
import type { LogEntry, Logger } from '../../lib/log/logger.js'
import { syslogReceiver } from '../fixtures/harness.js'

const addon = nativeAddon()
const noAddon = addon === undefined ? 'the addon is not built' : false

function recorder(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = []
  return { debug: false, entries, log: e => void entries.push(e) }
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 250 && !check(); i++) await new Promise(r => setTimeout(r, 20))
}

t.test('not started by systemd: nothing is sent, nothing logged', async t => {
  const log = recorder()
  notifier(null, addon, log).send('READY=1\n')
  t.same(log.entries, [])
})

t.test('without the addon: one -INFO line that readiness cannot be reported, then silence', async t => {
  const log = recorder()
  const n = notifier({ kind: 'path', path: '/run/x' }, undefined, log)
  n.send('READY=1\n')
  n.send('STOPPING=1\n')
  t.same(log.entries.map(e => [e.tag, e.text]), [['-INFO', 'NOTIFY_SOCKET=/run/x: readiness cannot be reported to systemd without the native addon']])
})

t.test('a socket path: each message is one datagram', { skip: noAddon }, async t => {
  const sink = await syslogReceiver(t)
  const log = recorder()
  const n = notifier({ kind: 'path', path: sink.sock }, addon, log)
  n.send('READY=1\nMAINPID=1\n')
  n.send('STATUS=x\n')
  await until(() => sink.lines.length >= 2)
  t.same(sink.lines, ['READY=1\nMAINPID=1\n', 'STATUS=x\n'])
  t.same(log.entries, [])
})

t.test('an abstract name (@name)', { skip: noAddon }, async t => {
  const name = `tcpproxy-notifier-test-${process.pid}`
  const py = spawn('python3', ['-c', `import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind('\\0'+sys.argv[1])\nprint('ready',flush=True)\nprint(s.recv(4096).hex(),flush=True)`, name])
  t.teardown(() => py.kill('SIGKILL'))
  const lines = py.stdout.pipe(split2())
  await once(lines, 'data')
  notifier({ kind: 'abstract', name }, addon, recorder()).send('READY=1\n')
  const [hex] = (await once(lines, 'data')) as [string]
  t.equal(Buffer.from(hex, 'hex').toString(), 'READY=1\n')
})

t.test('a failed send: one -INFO line naming the socket and the error, the first time only', { skip: noAddon }, async t => {
  const log = recorder()
  const n = notifier({ kind: 'path', path: '/nonexistent/notify' }, addon, log)
  n.send('READY=1\n')
  n.send('STOPPING=1\n')
  t.same(log.entries.map(e => [e.tag, e.event, e.text]), [
    ['-INFO', 'notify-failed', "can't notify systemd at /nonexistent/notify: sendto: No such file or directory (further failures are not logged)"],
  ])
})

t.test('the addon refuses a name that does not fit a socket address', { skip: noAddon }, async t => {
  const send = (addon as NonNullable<typeof addon>).notifySend
  t.throws(() => send(Buffer.alloc(0), false, Buffer.from('x')), { code: 'ENAMETOOLONG' })
  t.throws(() => send(Buffer.alloc(108, 'a'), true, Buffer.from('x')), { code: 'ENAMETOOLONG' })
})
