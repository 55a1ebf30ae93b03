/**
 * End to end: bin/tcpproxy as a user runs it, over loopback, with real
 * upstream servers. Forwarding, failover, selection by local address,
 * start-up errors, -z, --check.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { BIN, ROOT, backend, echoAfterEnd, exchange, freePort, startProxy, tcpproxy } from '../fixtures/harness.js'

t.test('a one-liner forwards IPv4 and logs the original three lines', async t => {
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const p = await startProxy(port => ['-d', '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.teardown(p.stop)
  t.match(p.lines, [new RegExp(`^tcpproxy\\[\\d+\\]: bound to 127\\.0\\.0\\.1:${p.port}$`), /ready$/])
  const r = await exchange(p.port, 'hello proxy')
  t.equal(r.data.toString(), 'hello proxy')
  const done = await p.waitFor(/\+OK: disconnect:/)
  t.match(await p.waitFor(/\+INFO: connected on/), new RegExp(`\\+INFO: connected on 127\\.0\\.0\\.1:${p.port}, client= 127\\.0\\.0\\.1:\\d+, id= 1$`))
  t.match(
    await p.waitFor(/\+INFO: connect:/),
    `+INFO: connect: client= 127.0.0.1, server= 127.0.0.1:${up.port}, timeout= 60, id= 1`,
  )
  t.match(done, new RegExp(`\\+OK: disconnect: client= 127\\.0\\.0\\.1, server= 127\\.0\\.0\\.1:${up.port}, received= 11, send= 11, duration= \\d+\\.\\d{3}, closed-by= client, id= 1$`))
})

t.test('a one-liner forwards IPv6 with bracketed addresses', async t => {
  const up = await backend(echoAfterEnd, '::1')
  t.teardown(() => up.close())
  const p = await startProxy(port => ['-d', '-b', `[::1]:${port}`, `[::1]:${up.port}`], '::1')
  t.teardown(p.stop)
  t.ok(p.lines.some(l => l.endsWith(`bound to [::1]:${p.port}`)))
  const r = await exchange(p.port, 'v6 bytes', { host: '::1' })
  t.equal(r.data.toString(), 'v6 bytes')
  t.match(await p.waitFor(/connected on/), new RegExp(`connected on \\[::1\\]:${p.port}, client= \\[::1\\]:\\d+`))
})

t.test('the server list fails over to the next entry and logs the failure', async t => {
  const dead = await freePort()
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const p = await startProxy(port => ['-d', '-b', `127.0.0.1:${port}`, `127.0.0.1:${dead}, localhost:${up.port}`])
  t.teardown(p.stop)
  const r = await exchange(p.port, 'second one')
  t.equal(r.data.toString(), 'second one')
  t.match(await p.waitFor(/-INFO: can't connect/), `-INFO: can't connect to server 127.0.0.1:${dead}, error= connect ECONNREFUSED 127.0.0.1:${dead}`)
  t.match(await p.waitFor(/\+INFO: connect:/), `server= localhost:${up.port}`)
})

t.test('a refused upstream closes the client promptly and the daemon keeps serving', async t => {
  const dead = await freePort()
  const p = await startProxy(port => ['-d', '-b', `127.0.0.1:${port}`, `127.0.0.1:${dead}`])
  t.teardown(p.stop)
  for (let i = 0; i < 3; i++) {
    const r = await exchange(p.port, null, { end: false })
    t.equal(r.data.length, 0, 'the client gets no bytes')
    t.ok(r.ms < 2000, `closed after ${r.ms} ms`)
  }
  t.match(await p.waitFor(/-ERR: connection error/), `-ERR: connection error: client= 127.0.0.1, server= 127.0.0.1:${dead}, error= connect ECONNREFUSED`)
  await p.waitFor(/-ERR: connection error: .*, id= 3$/)
  t.equal(p.proc.exitCode, null, 'still running')
})

t.test('a missing server port means the port the client connected to', async t => {
  // The proxy listens on 127.0.0.1:P and forwards to 127.0.0.2:P. Another
  // test's connection may hold 127.0.0.1:P meanwhile: then another P.
  let up, p
  for (let attempt = 0; ; attempt++) {
    up = await backend(echoAfterEnd, '127.0.0.2')
    try {
      const port = up.port
      p = await startProxy(() => ['-d', '-b', `127.0.0.1:${port}`, '127.0.0.2'])
      break
    } catch (err) {
      up.close()
      if (attempt >= 3) throw err
    }
  }
  const server = up
  t.teardown(() => server.close())
  t.teardown(p.stop)
  const r = await exchange(up.port, 'same port')
  t.equal(r.data.toString(), 'same port')
})

t.test('the configuration file selects the server by local address, exact before wildcard', async t => {
  const banner = (name: string) => backend(s => s.end(`${name}\n`))
  const [a, b, w] = await Promise.all([banner('A'), banner('B'), banner('W')])
  t.teardown(() => [a, b, w].forEach(s => s.close()))
  const dir = t.testdir({})
  const conf = join(dir, 'tcpproxy.conf')
  const p = await startProxy(port => {
    // The wildcard comes first: order must not matter.
    writeFileSync(
      conf,
      `# selection test\nTimeout 30\nport ${port}\n  interface *\n    server 127.0.0.1:${w.port}\n` +
        `  interface 127.0.0.1\n    server 127.0.0.1:${a.port}\n  INTERFACE 127.0.0.2\n    server 127.0.0.1:${b.port}\n`,
    )
    return ['-d', '-c', conf]
  })
  t.teardown(p.stop)
  t.match(p.lines[0], new RegExp(`bound to \\[::\\]:${p.port}$`), 'several interfaces share one wildcard listener')
  const got = async (host: string) => (await exchange(p.port, null, { host })).data.toString()
  t.equal(await got('127.0.0.1'), 'A\n')
  t.equal(await got('127.0.0.2'), 'B\n')
  t.equal(await got('127.0.0.3'), 'W\n')
  t.equal(await got('::1'), 'W\n')
  t.match(await p.waitFor(/connected on 127\.0\.0\.2/), 'client= 127.0.0.1:', 'IPv4-mapped addresses are logged as IPv4')
  t.match(await p.waitFor(new RegExp(`server= 127\\.0\\.0\\.1:${b.port}, timeout= 30`)), 'timeout= 30')
})

t.test('a connection no service matches is closed and logged', async t => {
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const dir = t.testdir({})
  const conf = join(dir, 'c.conf')
  const p = await startProxy(port => {
    writeFileSync(conf, `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${up.port}\ninterface 127.0.0.2\nserver 127.0.0.1:${up.port}\n`)
    return ['-d', '-f', conf]
  })
  t.teardown(p.stop)
  const r = await exchange(p.port, 'x', { host: '127.0.0.3' })
  t.equal(r.data.length, 0)
  t.match(await p.waitFor(/no configuration/), `-ERR: no configuration found for interface 127.0.0.3:${p.port}, client= 127.0.0.1`)
})

t.test('configuration errors name FILE:LINE, exit 2 and bind nothing', async t => {
  const dir = t.testdir({ 'bad.conf': 'port 8025\n  interface 127.0.0.1\n  listne 127.0.0.1:25\n' })
  const run = tcpproxy(['-d', '-c', join(dir, 'bad.conf')])
  t.equal(await run.exited, 2)
  t.same(run.lines, [`tcpproxy: ${join(dir, 'bad.conf')}:3: unknown keyword "listne"`])
})

t.test('a missing default configuration file is reported with its path', async t => {
  const run = tcpproxy([])
  t.equal(await run.exited, 1)
  t.same(run.lines, ['tcpproxy: cannot read configuration file /etc/tcpproxy.conf: no such file or directory (ENOENT)'])
})

t.test('usage errors are one line on stderr with exit 2', async t => {
  for (const [args, message] of [
    [['-x'], "tcpproxy: unknown option '-x'"],
    [['-b'], "tcpproxy: option '-b, --bind <[interface:]port>' argument missing"],
    [['-t', 'soon', '-b', '1', 'h'], 'tcpproxy: option -t: not a number of seconds: "soon"'],
    [['-b', '8025', 'a:1', 'b:2'], 'tcpproxy: extra arguments after server: b:2'],
    [['-b', '8025', 'bad host!'], 'tcpproxy: server argument: bad host name or address: "bad host!"'],
  ] as const) {
    const run = tcpproxy([...args])
    t.equal(await run.exited, 2, args.join(' '))
    t.same(run.lines, [message])
  }
})

t.test('a port already in use makes the start fail with the reason', async t => {
  const busy = await backend(() => {})
  t.teardown(() => busy.close())
  const run = tcpproxy(['-d', '-b', `127.0.0.1:${busy.port}`, '127.0.0.1:9'])
  t.equal(await run.exited, 1)
  t.same(run.lines, [`tcpproxy: cannot bind 127.0.0.1:${busy.port}: EADDRINUSE`])
  const all = tcpproxy(['-d', '-b', String(busy.port), '127.0.0.1:9'])
  t.equal(await all.exited, 1)
  t.same(all.lines, [`tcpproxy: cannot bind *:${busy.port}: EADDRINUSE`], 'the wildcard overlaps the busy address')
})

t.test('-z prints each configured port once, as numbers, without binding', async t => {
  const dir = t.testdir({ 'z.conf': 'port 8025\ninterface 127.0.0.1\nserver h\nport smtp\ninterface *\nserver h\nport 8025\ninterface 127.0.0.2\nserver h\n' })
  const run = tcpproxy(['-z', '-c', join(dir, 'z.conf')])
  t.equal(await run.exited, 0)
  t.equal(run.stdout, '8025\n25\n')
  t.same(run.lines, [])
  const one = tcpproxy(['-z', '-b', 'smtp'])
  t.equal(await one.exited, 0)
  t.equal(one.stdout, '25\n')
})

t.test('--check validates and prints the services of the shipped sample', async t => {
  const run = tcpproxy(['--check', '-c', join(ROOT, 'etc/tcpproxy.conf')])
  t.equal(await run.exited, 0)
  t.equal(
    run.stdout,
    '127.0.0.1:8080 -> 127.0.0.1:8000 (timeout 60)\n' +
      '*:8080 -> localhost:8000,127.0.0.1:8000 (timeout 300)\n' +
      '127.0.0.1:8023 -> 127.0.0.1:23 (timeout 0)\n',
  )
})

t.test('-h and -V answer on stdout with exit 0', async t => {
  const v = tcpproxy(['-V'])
  t.equal(await v.exited, 0)
  t.match(v.stdout, /^tcpproxy \d+\.\d+\.\d+\nnative addon: /)
  const h = tcpproxy(['--help'])
  t.equal(await h.exited, 0)
  t.match(h.stdout, /Usage: tcpproxy \[options\] \[server\]/)
  t.match(h.stdout, /--connect-timeout <seconds>/)
})

t.test('SIGTERM lets an open transfer finish, then exits 0 and removes the pidfile', async t => {
  const up = await backend(s => {
    s.on('error', () => {})
    s.on('end', () => setTimeout(() => s.end('late reply'), 400))
    s.resume()
  })
  t.teardown(() => up.close())
  const pidfile = join(t.testdir({}), 'tp.pid')
  const p = await startProxy(port => ['-d', '--pidfile', pidfile, '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.teardown(p.stop)
  t.equal(readFileSync(pidfile, 'utf8'), `${p.proc.pid}\n`)
  const pending = exchange(p.port, 'x')
  await p.waitFor(/\+INFO: connect:/)
  p.proc.kill('SIGTERM')
  const r = await pending
  t.equal(r.data.toString(), 'late reply')
  t.equal(await p.exited, 0)
  t.notOk(existsSync(pidfile), 'the pidfile is gone')
  // Listeners closed at once: a new connection is refused.
  const late = await exchange(p.port, null)
  t.match(late.error, { code: 'ECONNREFUSED' })
})

t.test('running out of file descriptors refuses connections but never kills the daemon', async t => {
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  // Each session holds two descriptors; whether the last free one goes to an
  // upstream connect (logged) or runs out in accept() (libuv sheds those
  // connections silently) depends on the parity of the limit: try both.
  const reports: string[] = []
  for (const limit of [128, 129]) {
    const port = await freePort()
    // The shell lowers the descriptor limit, then becomes tcpproxy.
    const sh = spawn('sh', ['-c', `ulimit -n ${limit} && exec "${process.execPath}" "${BIN}" -d -u root -b 127.0.0.1:${port} 127.0.0.1:${up.port}`])
    const lines: string[] = []
    sh.stderr.on('data', d => lines.push(...d.toString().split('\n')))
    t.teardown(() => sh.kill('SIGKILL'))
    for (let i = 0; i < 500 && !lines.some(l => l.endsWith('ready')); i++) await new Promise(r => setTimeout(r, 20))
    if (!lines.some(l => l.endsWith('ready'))) {
      t.fail(`limit ${limit}: tcpproxy did not start`, { lines })
      continue
    }
    const flood = Array.from({ length: 150 }, () => connect({ port, host: '127.0.0.1' }).on('error', () => {}))
    await new Promise(r => setTimeout(r, 1000))
    const episode = lines.filter(l => /EMFILE|connection error/.test(l))
    t.ok(episode.length <= 1, 'one line per episode, not one per refused connection')
    reports.push(...episode)
    flood.forEach(s => s.destroy())
    await new Promise(r => setTimeout(r, 300))
    const r = await exchange(port, 'still alive')
    t.equal(r.data.toString(), 'still alive', `limit ${limit}: serves again once descriptors are free`)
    sh.kill('SIGTERM')
    const [code] = (await once(sh, 'exit')) as [number]
    t.equal(code, 0)
  }
  t.match(reports, [/-ERR: connect EMFILE .*: new connections are refused$/])
})
