/**
 * End to end: tcpproxy as a daemon. Background start, pidfile, privileges
 * (the tests run as root here and in CI), syslog, json logs, signals,
 * reload, connection limits, fuser.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { BIN, alive, backend, children, echoAfterEnd, exchange, fixture, freePort, procStatus, startProxy, syslogReceiver, tcpproxy, waitGone } from '../fixtures/harness.js'

const root = process.getuid?.() === 0
const status = procStatus
const passwd = (user: string): [number, number] => {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find(l => l.startsWith(`${user}:`)) as string
  const f = line.split(':')
  return [Number(f[2]), Number(f[3])]
}

t.test('in the background: the command returns once bound, the pidfile holds the live daemon', async t => {
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const dir = t.testdir({})
  const pidfile = join(dir, 'tcpproxy.pid')
  const port = await freePort()
  const run = tcpproxy(['--pidfile', pidfile, '--syslog-socket', join(dir, 'no-syslog'), '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  const started = Date.now()
  t.equal(await run.exited, 0)
  t.ok(Date.now() - started < 10000)
  const pid = Number(readFileSync(pidfile, 'utf8'))
  t.match(readFileSync(pidfile, 'utf8'), /^\d+\n$/)
  t.ok(alive(pid), 'the pid in the pidfile runs')
  t.teardown(() => void (alive(pid) && process.kill(pid, 'SIGKILL')))
  // Bound before the command returned: no retry needed.
  t.equal((await exchange(port, 'daemon')).data.toString(), 'daemon')
  // A second start with the same pidfile refuses.
  const again = tcpproxy(['--pidfile', pidfile, '-b', `127.0.0.1:${await freePort()}`, `127.0.0.1:${up.port}`])
  t.equal(await again.exited, 1)
  t.same(again.lines, [`tcpproxy: pidfile ${pidfile}: tcpproxy is already running as pid ${pid}`])
  process.kill(pid, 'SIGTERM')
  t.ok(await waitGone(pid), 'SIGTERM stops it')
  t.notOk(existsSync(pidfile), 'the pidfile is removed at exit')
})

t.test('in the background: a port in use fails the start with the reason on stderr', async t => {
  const busy = await backend(() => {})
  t.teardown(() => busy.close())
  const dir = t.testdir({})
  const run = tcpproxy(['--pidfile', join(dir, 'p.pid'), '-b', `127.0.0.1:${busy.port}`, '127.0.0.1:9'])
  t.equal(await run.exited, 1)
  // (Before it: the daemon may say that syslog is unreachable on this machine.)
  t.equal(run.lines.at(-1), `tcpproxy: cannot bind 127.0.0.1:${busy.port}: EADDRINUSE`)
  t.notOk(existsSync(join(dir, 'p.pid')), 'no pidfile left behind')
})

t.test('started as root, the relays run as the configured user, never as root', { skip: root ? false : 'needs root' }, async t => {
  const [uid, gid] = passwd('nobody')
  const p = await startProxy(port => ['-d', '-b', `127.0.0.1:${port}`, fixture('echo-handler.sh')])
  t.teardown(p.stop)
  t.same(status(p.proc.pid as number, 'Uid').slice(0, 2), [0, 0], 'the supervisor keeps root (for binding on reload, the pidfile)')
  const [worker] = children(p.proc.pid as number)
  t.ok(worker, 'one worker process')
  t.same(status(worker as number, 'Uid'), [uid, uid, uid, uid], 'real, effective, saved and fs uid are nobody')
  t.same(status(worker as number, 'Gid'), [gid, gid, gid, gid])
  t.equal((await exchange(p.port, 'hi\n')).data.toString(), 'you said: hi\n')
  // A group given with -u is used (the original ignored it).
  const group = readFileSync('/etc/group', 'utf8').split('\n').find(l => l.startsWith('daemon:'))
  const q = await startProxy(port => ['-d', '-u', 'nobody.daemon', '-b', `127.0.0.1:${port}`, '127.0.0.1:9'])
  t.teardown(q.stop)
  const [w2] = children(q.proc.pid as number)
  t.equal(status(w2 as number, 'Gid')[0], Number(group?.split(':')[2]))
})

t.test('syslog: RFC 3164 datagrams to --syslog-socket, mail.notice, ident and pid', async t => {
  const { dir, sock, lines: got } = await syslogReceiver(t)
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const pidfile = join(dir, 'pid')
  const port = await freePort()
  const run = tcpproxy(['-l', 'smtp-gw', '--syslog-facility', 'mail', '--syslog-socket', sock, '--pidfile', pidfile, '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.equal(await run.exited, 0)
  const pid = Number(readFileSync(pidfile, 'utf8'))
  t.teardown(() => void (alive(pid) && process.kill(pid, 'SIGKILL')))
  await exchange(port, 'x')
  for (let i = 0; i < 200 && !got.some(l => l.includes('disconnect')); i++) await new Promise(r => setTimeout(r, 25))
  t.match(got.find(l => l.endsWith(': ready')), new RegExp(`^<21>[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d smtp-gw\\[${pid}\\]: ready$`))
  t.match(got.find(l => l.includes('disconnect')), /^<21>.* smtp-gw\[\d+\]: \+OK: disconnect: client= 127\.0\.0\.1, /)
  process.kill(pid, 'SIGTERM')
  await waitGone(pid)
})

t.test('--log-format json: one object per line with the connection facts', async t => {
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const p = await startProxy(port => ['--foreground', '--log-format', 'json', '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.teardown(p.stop)
  await exchange(p.port, 'json!')
  const line = await p.waitFor(/"event":"disconnect"/)
  const o = JSON.parse(line)
  t.match(o, { level: 'info', event: 'disconnect', id: 1 })
  t.match(o.message, 'received= 5, send= 5')
  t.ok(!Number.isNaN(Date.parse(o.time)))
  for (const l of p.lines) t.doesNotThrow(() => JSON.parse(l), l)
})

for (const model of ['supervisor and worker', 'one process']) t.test(`SIGHUP (${model}): a changed configuration reroutes new connections, an open one keeps going`, async t => {
  const extraArgs = model === 'one process' ? ['-u', 'root'] : []
  const a = await backend(s => {
    s.write('A:')
    s.pipe(s)
  })
  const b = await backend(s => s.end('B\n'))
  t.teardown(() => [a, b].forEach(s => s.close()))
  const dir = t.testdir({})
  const conf = join(dir, 'tcpproxy.conf')
  const p = await startProxy(port => {
    writeFileSync(conf, `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${a.port}\n`)
    return ['-d', ...extraArgs, '-c', conf]
  })
  t.teardown(p.stop)
  const old = connect({ port: p.port, host: '127.0.0.1' })
  let oldGot = ''
  old.on('data', d => (oldGot += d))
  old.write('one ')
  await p.waitFor(/\+INFO: connect:/)
  writeFileSync(conf, `port ${p.port}\ninterface 127.0.0.1\nserver 127.0.0.1:${b.port}\n`)
  p.proc.kill('SIGHUP')
  t.match(await p.waitFor(/reloaded/), `+INFO: reloaded ${conf}: 1 service(s)`)
  t.equal((await exchange(p.port, null)).data.toString(), 'B\n', 'new connections go to the new server')
  old.end('two')
  await new Promise(r => old.once('close', r))
  t.equal(oldGot, 'A:one two', 'the open connection kept its server')
  // A broken file keeps the old configuration running.
  writeFileSync(conf, `port ${p.port}\ninterface 127.0.0.1\nsrever 127.0.0.1:1\n`)
  p.proc.kill('SIGHUP')
  t.match(await p.waitFor(/reload failed/), `-ERR: reload failed, keeping the old configuration: ${conf}:3: unknown keyword "srever"`)
  t.equal((await exchange(p.port, null)).data.toString(), 'B\n', 'still served')
  // Global settings are read at start-up: a reload that changes them says so, and serves on.
  writeFileSync(conf, `max-connections 5\nlogname other\nport ${p.port}\ninterface 127.0.0.1\nserver 127.0.0.1:${b.port}\n`)
  p.proc.kill('SIGHUP')
  t.match(await p.waitFor(/logname changed/), `-INFO: logname changed in ${conf}: it is read at start-up, the running daemon keeps its value until a restart`)
  t.match(p.lines.find(l => /max-connections changed/.test(l)), `-INFO: max-connections changed in ${conf}: it is read at start-up`)
  t.match(p.lines.filter(l => /reloaded/.test(l)).at(-1), `tcpproxy[`, 'the log name is the running one')
  t.equal((await exchange(p.port, null)).data.toString(), 'B\n', 'served by the new services')
  // A new port is bound, the old listener survives: no refused connection.
  const extra = await freePort()
  writeFileSync(conf, `port ${p.port}\ninterface 127.0.0.1\nserver 127.0.0.1:${b.port}\nport ${extra}\ninterface 127.0.0.1\nserver 127.0.0.1:${a.port}\n`)
  p.proc.kill('SIGHUP')
  await p.waitFor(/reloaded .*2 service/)
  t.equal((await exchange(p.port, null)).data.toString(), 'B\n')
  t.equal((await exchange(extra, 'x')).data.toString(), 'A:x')
  // And the port goes away again.
  writeFileSync(conf, `port ${p.port}\ninterface 127.0.0.1\nserver 127.0.0.1:${b.port}\n`)
  p.proc.kill('SIGHUP')
  await p.waitFor(/reloaded .*1 service.*\n?$/)
  await p.waitFor(new RegExp(`closed 127\\.0\\.0\\.1:${extra}`))
  t.match((await exchange(extra, 'x')).error, { code: 'ECONNREFUSED' })
  t.equal(p.lines.filter(l => /changed in/.test(l)).length, 2, 'only the reload that changed them said so')
})

t.test('a worker that dies is replaced and the ports are served again', { skip: root ? false : 'needs root' }, async t => {
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const p = await startProxy(port => ['-d', '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.teardown(p.stop)
  const [worker] = children(p.proc.pid as number)
  process.kill(worker as number, 'SIGKILL')
  t.match(await p.waitFor(/worker process ended/), '-ERR: worker process ended (SIGKILL), starting a new one')
  // The new worker says "bound to" again once it serves the port.
  for (let i = 0; i < 200 && p.lines.filter(l => l.includes('bound to')).length < 2; i++) await new Promise(r => setTimeout(r, 25))
  t.not(children(p.proc.pid as number)[0], worker, 'a new worker process')
  t.equal((await exchange(p.port, 'again')).data.toString(), 'again')
})

t.test('a worker whose supervisor is gone stops too: no orphan serving unsupervised', { skip: root ? false : 'needs root' }, async t => {
  const p = await startProxy(port => ['-d', '-b', `127.0.0.1:${port}`, '127.0.0.1:9'])
  t.teardown(p.stop)
  const [worker] = children(p.proc.pid as number)
  process.kill(p.proc.pid as number, 'SIGKILL')
  t.ok(await waitGone(worker as number), 'the worker follows its supervisor')
})

t.test('max-connections: connections beyond the limit are closed at once and logged', async t => {
  const up = await backend(s => s.on('error', () => {}).on('end', () => s.end()).resume())
  t.teardown(() => up.close())
  const p = await startProxy(port => ['-d', '--max-connections', '2', '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.teardown(p.stop)
  const held = [0, 1].map(() => connect({ port: p.port, host: '127.0.0.1' }).on('error', () => {}))
  await p.waitFor(/connect:.*id= 2$/)
  const third = await exchange(p.port, null, { end: false })
  t.equal(third.data.length, 0)
  t.ok(third.ms < 2000)
  t.match(await p.waitFor(/too many/), '-ERR: too many connections (max-connections 2 in all), client= 127.0.0.1, id= 3')
  held.forEach(s => s.destroy())
  // A reload of a command-line configuration changes nothing, and says so.
  p.proc.kill('SIGHUP')
  t.match(await p.waitFor(/reloaded/), '+INFO: reloaded the configuration: 1 service(s)')
})

t.test('max-connections per service in the configuration file', async t => {
  const up = await backend(s => s.on('error', () => {}).on('end', () => s.end()).resume())
  t.teardown(() => up.close())
  const dir = t.testdir({})
  const conf = join(dir, 'c.conf')
  const p = await startProxy(port => {
    writeFileSync(conf, `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${up.port}\nmax-connections 1\n`)
    return ['-d', '-c', conf]
  })
  t.teardown(p.stop)
  const held = connect({ port: p.port, host: '127.0.0.1' }).on('error', () => {})
  await p.waitFor(/connect:.*id= 1$/)
  await exchange(p.port, null, { end: false })
  t.match(await p.waitFor(/too many/), `too many connections (max-connections 1 for 127.0.0.1:${p.port}), client= 127.0.0.1, id= 2`)
  held.destroy()
})

t.test('fuser finds the daemon by the ports -z lists', { skip: spawnSync('fuser', ['-V']).error ? 'fuser is not installed (apt-get install psmisc)' : false }, async t => {
  const dir = t.testdir({})
  const conf = join(dir, 'c.conf')
  const p = await startProxy(port => {
    writeFileSync(conf, `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:9\n`)
    return ['-d', '-u', 'root', '-c', conf]
  })
  t.teardown(p.stop)
  const z = spawnSync(process.execPath, [BIN, '-z', '-c', conf], { encoding: 'utf8' })
  const f = spawnSync('fuser', ['-n', 'tcp', ...z.stdout.trim().split('\n')], { encoding: 'utf8' })
  t.equal(f.status, 0)
  t.match(f.stdout, new RegExp(`\\b${p.proc.pid}\\b`))
})
