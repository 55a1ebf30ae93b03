/**
 * End to end under systemd's protocols: sd_notify messages received by the
 * test's own datagram socket (NOTIFY_SOCKET), socket activation through
 * systemd-socket-activate; in one process (`-u root`) and with the root
 * supervisor.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { connect } from 'node:net'
import { backend, exchange, freePort, startProxy, syslogReceiver, tcpproxy } from '../fixtures/harness.js'

const root = process.getuid?.() === 0
const models: [string, string[]][] = root ? [['one process', ['-u', 'root']], ['the root supervisor', []]] : [['one process', []]]

/** Wait (bounded) until `lines` has `n` entries. */
async function count(lines: string[], n: number): Promise<void> {
  for (let i = 0; i < 250 && lines.length < n; i++) await new Promise(r => setTimeout(r, 20))
}

for (const [model, args] of models) {
  t.test(`sd_notify, ${model}: READY with MAINPID once bound, RELOADING then READY on HUP, STOPPING on TERM`, async t => {
    const sink = await syslogReceiver(t)
    const p = await startProxy(port => ['-d', ...args, '-b', `127.0.0.1:${port}`, '/usr/bin/env'], '127.0.0.1', { ...process.env, NOTIFY_SOCKET: sink.sock })
    await count(sink.lines, 1)
    t.match(sink.lines[0], new RegExp(`^READY=1\nMAINPID=${p.proc.pid}\nSTATUS=\\d+ (sessions? open|worker\\(s\\))\n$`))
    // The handler (a worker's child under the supervisor) does not inherit the socket.
    const r = await exchange(p.port, null)
    t.notMatch(r.data.toString(), /NOTIFY_SOCKET|LISTEN_/)
    t.match(r.data.toString(), /PROXY_CLIENT=127.0.0.1/)
    p.proc.kill('SIGHUP')
    await p.waitFor(/reloaded/)
    await count(sink.lines, 3)
    t.match(sink.lines[1], /^RELOADING=1\nMONOTONIC_USEC=\d+\n$/)
    const usec = BigInt((/MONOTONIC_USEC=(\d+)/.exec(sink.lines[1] as string) as RegExpExecArray)[1] as string)
    t.ok(usec <= process.hrtime.bigint() / 1000n, 'CLOCK_MONOTONIC, microseconds')
    t.match(sink.lines[2], /^READY=1\n/)
    t.equal(await p.stop(), 0)
    await count(sink.lines, 4)
    t.match(sink.lines[3], /^STOPPING=1\nSTATUS=stopping, /)
  })
}

t.test('sd_notify to an abstract name, and a socket that is gone: one -INFO line, serving goes on', async t => {
  const p = await startProxy(port => ['-d', '-u', 'root', '-b', `127.0.0.1:${port}`, '127.0.0.1:9'], '127.0.0.1', { ...process.env, NOTIFY_SOCKET: `@tcpproxy-test-${process.pid}` })
  t.teardown(p.stop)
  t.match(await p.waitFor(/can't notify/), /-INFO: can't notify systemd at @tcpproxy-test-\d+: sendto: Connection refused/)
  p.proc.kill('SIGHUP')
  await p.waitFor(/reloaded/)
  t.equal(p.lines.filter(l => /notify/.test(l)).length, 1, 'said once')
})

t.test('NOTIFY_SOCKET that is no socket address: the start fails naming it', async t => {
  const port = await freePort()
  const run = tcpproxy(['-d', '-b', `127.0.0.1:${port}`, '127.0.0.1:9'], { env: { ...process.env, NOTIFY_SOCKET: 'relative/path' } })
  t.equal(await run.exited, 2, 'a configuration error')
  t.match(run.lines.join('\n'), /NOTIFY_SOCKET="relative\/path": not an absolute path/)
})

const activator = spawnSync('systemd-socket-activate', ['--help']).error ? 'systemd-socket-activate is not installed (apt-get install systemd)' : false

// systemd-socket-activate passes a minimal environment: the coverage hooks of tap's processinfo by name.
const coverageEnv = Object.keys(process.env)
  .filter(k => /^(NODE_OPTIONS|_TAPJS_)/.test(k))
  .flatMap(k => ['-E', k])

for (const [model, args] of models) {
  t.test(`socket activation, ${model}: relays on the passed socket, keeps it over a reload, closes one no address wants`, { skip: activator }, async t => {
    const up = await backend(s => s.end('hello from upstream\n'))
    t.teardown(() => up.close())
    const port = await freePort()
    const spare = await freePort()
    const run = tcpproxy(['--foreground', ...args, '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`], {
      prefix: ['systemd-socket-activate', ...coverageEnv, '-l', `127.0.0.1:${port}`, '-l', `127.0.0.1:${spare}`, '--fdname=web:spare', '--'],
    })
    t.teardown(() => run.proc.kill('SIGTERM'))
    await run.waitFor(/Listening on 127\.0\.0\.1:\d+ as 4/)
    // The first connection starts tcpproxy, which finds it queued on the passed socket.
    const first = await exchange(port, null)
    t.equal(first.data.toString(), 'hello from upstream\n')
    t.match(await run.waitFor(/activation|unused|matches no/), new RegExp(`-INFO: socket spare \\(fd 4, 127\\.0\\.0\\.1 port ${spare}\\) passed by systemd matches no listen address: closed`))
    t.equal(run.lines.filter(l => /cannot bind|EADDRINUSE/.test(l)).length, 0)
    // A HUP before "ready" is ignored (nothing to reload yet), and the worker may serve the
    // first connection before the supervisor says ready.
    await run.waitFor(/ready$/)
    run.proc.kill('SIGHUP')
    await run.waitFor(/reloaded/)
    t.equal((await exchange(port, null)).data.toString(), 'hello from upstream\n', 'served after the reload')
    const refused = connect({ port: spare, host: '127.0.0.1' })
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException]
    t.equal(err.code, 'ECONNREFUSED', 'the unused socket is closed')
    run.proc.kill('SIGTERM')
    t.equal(await run.exited, 0)
  })
}
