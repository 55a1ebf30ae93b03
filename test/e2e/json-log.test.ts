/**
 * End to end: `--log-format json` lines carry the connection's fields
 * (client, client_port, service, pid; server on connect and disconnect;
 * received, sent, duration, closed_by on disconnect; what handler and
 * connect-failure events know), in one process and under the root
 * supervisor; over syslog, the priority follows the tag.
 */
import t from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { alive, backend, echoAfterEnd, exchange, freePort, startProxy, syslogReceiver, tcpproxy, waitGone } from '../fixtures/harness.js'

const root = process.getuid?.() === 0
const models: [string, string[]][] = root ? [['one process', ['-u', 'root']], ['the root supervisor', []]] : [['one process', []]]

type Line = Record<string, unknown>
const parsed = (lines: string[]): Line[] => lines.map(l => JSON.parse(l) as Line)

for (const [model, args] of models) {
  t.test(`JSON fields, ${model}`, async t => {
    const up = await backend(echoAfterEnd)
    t.teardown(() => up.close())
    const dead = await freePort()
    const p = await startProxy(port => ['--foreground', ...args, '--log-format', 'json', '-b', `127.0.0.1:${port}`, `127.0.0.1:${dead},127.0.0.1:${up.port}`])
    t.teardown(p.stop)
    const c = connect({ port: p.port, host: '127.0.0.1' })
    await once(c, 'connect')
    const clientPort = c.localPort
    c.end('json!')
    const chunks: Buffer[] = []
    c.on('data', d => chunks.push(d))
    await once(c, 'close')
    t.equal(Buffer.concat(chunks).toString(), 'json!')
    await p.waitFor(/"event":"disconnect"/)
    const lines = parsed(p.lines)
    const who = { client: '127.0.0.1', client_port: clientPort, service: `127.0.0.1:${p.port}` }
    const pid = (lines.find(l => l['event'] === 'connected') as Line)['pid']
    t.type(pid, 'number')
    const by = (event: string): Line => lines.find(l => l['event'] === event) as Line
    t.match(by('connected'), { level: 'info', ...who, pid })
    t.match(by('connect-failed'), { level: 'warning', ...who, pid, server: `127.0.0.1:${dead}` })
    t.match(by('connect'), { level: 'info', ...who, pid, server: `127.0.0.1:${up.port}` })
    const end = by('disconnect')
    t.match(end, { level: 'info', ...who, pid, server: `127.0.0.1:${up.port}`, received: 5, sent: 5, closed_by: 'client' })
    t.type(end['duration'], 'number')
    t.ok((end['duration'] as number) >= 0 && (end['duration'] as number) < 10)
  })
}

t.test('JSON fields of a handler, and of a connection no service takes', async t => {
  const p = await startProxy(port => ['--foreground', '-u', 'root', '--log-format', 'json', '-b', `127.0.0.1:${port}`, '/bin/false'])
  t.teardown(p.stop)
  await exchange(p.port, null)
  await p.waitFor(/"event":"handler-end"/)
  t.match(parsed(p.lines).find(l => l['event'] === 'handler-end'), { level: 'err', client: '127.0.0.1', service: `127.0.0.1:${p.port}`, rc: '1' })
  t.type(parsed(p.lines).find(l => l['event'] === 'handler-end')?.['duration'], 'number')
})

t.test('over syslog the priority follows the tag: -ERR err, -INFO warning, the rest notice', async t => {
  const sink = await syslogReceiver(t)
  const dead = await freePort()
  const port = await freePort()
  const pidfile = join(sink.dir, 'pid')
  const run = tcpproxy(['-u', 'root', '--syslog-socket', sink.sock, '--pidfile', pidfile, '-b', `127.0.0.1:${port}`, `127.0.0.1:${dead},127.0.0.1:${dead}`])
  t.equal(await run.exited, 0)
  const pid = Number(readFileSync(pidfile, 'utf8'))
  t.teardown(() => void (alive(pid) && process.kill(pid, 'SIGKILL')))
  await exchange(port, null)
  for (let i = 0; i < 250 && !sink.lines.some(l => /connection error/.test(l)); i++) await new Promise(r => setTimeout(r, 20))
  const pri = (re: RegExp): string | undefined => /^<(\d+)>/.exec(sink.lines.find(l => re.test(l)) ?? '')?.[1]
  t.equal(pri(/\+INFO: connected on/), '21', 'mail.notice')
  t.equal(pri(/-INFO: can't connect to server/), '20', 'mail.warning')
  t.equal(pri(/-ERR: connection error/), '19', 'mail.err')
  process.kill(pid, 'SIGTERM')
  await waitGone(pid)
})
