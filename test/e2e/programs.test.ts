/**
 * End to end: handler programs, access control programs, inetd mode, the
 * service-routing example from etc/examples, and -w traffic dumps.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { BIN, alive, backend, echoAfterEnd, example, exchange, fixture, freePort, reachableDir, startProxy, syslogReceiver, tcpproxy, viaInetd, waitGone } from '../fixtures/harness.js'

/** Parse `NAME=value` lines. */
const vars = (text: string): Record<string, string> =>
  Object.fromEntries(text.split('\n').filter(l => l.includes('=')).map(l => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))

t.test('a handler gets the client socket as stdin/stdout and every PROXY_ variable', async t => {
  const p = await startProxy(port => ['-d', '-b', `127.0.0.1:${port}`, fixture('env-handler.sh')])
  t.teardown(p.stop)
  const c = connect({ port: p.port, host: '127.0.0.1' })
  const chunks: Buffer[] = []
  c.on('data', d => chunks.push(d))
  await once(c, 'connect')
  const myPort = c.localPort
  const before = Math.floor(Date.now() / 1000)
  await once(c, 'end')
  const v = vars(Buffer.concat(chunks).toString())
  t.same(
    { ...v, PROXY_STARTED: 'checked below' },
    {
      PROXY_CLIENT: '127.0.0.1',
      PROXY_CLIENTNAME: 'localhost',
      PROXY_CLIENTPORT: String(myPort),
      PROXY_CONFIG: `127.0.0.1:${p.port}`,
      PROXY_INTERFACE: '127.0.0.1',
      PROXY_LOGNAME: 'tcpproxy',
      PROXY_PID: String(p.proc.pid),
      PROXY_PORT: String(p.port),
      PROXY_PROXYNAME: 'tcpproxy',
      PROXY_STARTED: 'checked below',
      stdin: 'socket',
    },
  )
  t.ok(Math.abs(Number(v['PROXY_STARTED']) - before) <= 2, 'PROXY_STARTED is the time of the connection')
  t.match(await p.waitFor(/starting/), `starting \`${fixture('env-handler.sh')}', client= localhost, id= 1`)
  t.match(await p.waitFor(/handler:/), '-INFO: handler: this goes to the log, id= 1')
  t.match(await p.waitFor(/handler end/), /\+OK: handler end: client= 127\.0\.0\.1, rc= 0, duration= \d+\.\d{3}, id= 1$/)
})

t.test('over IPv6 with -v and -n: the prefix changes and the client name is the address', async t => {
  const p = await startProxy(port => ['-d', '-n', '-v', 'MY_', '-b', `[::1]:${port}`, fixture('env-handler.sh')], '::1', {
    ...process.env,
    PREFIX: 'MY_',
  })
  t.teardown(p.stop)
  // The handler greps for $PREFIX: it inherits tcpproxy's environment.
  const r = await exchange(p.port, null, { host: '::1' })
  const v = vars(r.data.toString())
  t.equal(v['MY_CLIENT'], '::1')
  t.equal(v['MY_CLIENTNAME'], '::1')
  t.equal(v['MY_INTERFACE'], '::1')
  t.equal(v['MY_CONFIG'], `::1:${p.port}`)
  t.notOk('PROXY_CLIENT' in v)
})

t.test('a handler reads what the client sent and answers', async t => {
  const p = await startProxy(port => ['-d', '-b', `127.0.0.1:${port}`, fixture('echo-handler.sh')])
  t.teardown(p.stop)
  const r = await exchange(p.port, 'hello handler\n')
  t.equal(r.data.toString(), 'you said: hello handler\n')
})

t.test('max-programs in the configuration file bounds the handlers running at once', async t => {
  const conf = join(reachableDir(t), 'tcpproxy.conf')
  const p = await startProxy(port => {
    writeFileSync(conf, `max-programs 1\nport ${port}\ninterface 127.0.0.1\nexec ${fixture('echo-handler.sh')}\n`)
    return ['-d', '-c', conf]
  })
  t.teardown(p.stop)
  // The first handler waits for a line, holding the one place.
  const first = connect({ port: p.port, host: '127.0.0.1' }).on('error', () => {})
  t.teardown(() => first.destroy())
  await p.waitFor(/starting/)
  const second = await exchange(p.port, 'x\n')
  t.equal(second.data.length, 0, 'the second is closed without an answer')
  t.match(await p.waitFor(/too many programs/), '-ERR: too many programs running (max-programs 1): connection refused, client= 127.0.0.1')
  let got = ''
  first.on('data', d => (got += d))
  first.write('hello\n')
  await once(first, 'end')
  t.equal(got, 'you said: hello\n', 'the running handler answers')
})

/** A copy of fixture `name` that the test can remove once tcpproxy has started (start-up refuses a missing program). */
function removable(t: Parameters<typeof reachableDir>[0], name: string): string {
  const path = join(reachableDir(t), name)
  copyFileSync(fixture(name), path)
  return path
}

t.test('a handler that cannot be started or dies is logged and the daemon keeps serving', async t => {
  const handler = removable(t, 'echo-handler.sh')
  const p = await startProxy(port => ['-d', '-b', `127.0.0.1:${port}`, handler, 'arg'])
  t.teardown(p.stop)
  rmSync(handler)
  const r = await exchange(p.port, 'x')
  t.equal(r.data.length, 0)
  t.match(await p.waitFor(/can't execute/), `-ERR: can't execute ${handler}, error= ENOENT, id= 1`)
  await exchange(p.port, null)
  t.ok(await p.waitFor(/can't execute .*id= 2$/), 'the next connection is served the same way')
  const q = await startProxy(port => ['-d', '-b', `127.0.0.1:${port}`, fixture('acp-crash.sh')])
  t.teardown(q.stop)
  await exchange(q.port, null)
  t.match(await q.waitFor(/handler end/), '-ERR: handler end: client= 127.0.0.1, rc= SIGSEGV')
})

t.test('the service-routing example routes by client address through inetd-mode tcpproxy', async t => {
  const [inside, outside] = await Promise.all([backend(s => s.end('inside\n')), backend(s => s.end('outside\n'))])
  t.teardown(() => [inside, outside].forEach(s => s.close()))
  // `exec tcpproxy host:port` needs tcpproxy on PATH.
  const dir = t.testdir({})
  symlinkSync(BIN, join(dir, 'tcpproxy'))
  const env = { ...process.env, PATH: `${dir}:${process.env['PATH']}`, ROUTE_INSIDE: `127.0.0.1:${inside.port}`, ROUTE_OUTSIDE: `127.0.0.1:${outside.port}` }
  // -u root: the handler runs this checkout's tcpproxy, which `nobody` may
  // not reach (a clone in /root); the inner tcpproxy then drops to nobody itself.
  const p = await startProxy(port => ['-d', '-n', '-u', 'root', '-b', String(port), example('route-by-client')], '127.0.0.1', env)
  t.teardown(p.stop)
  t.equal((await exchange(p.port, null, { localAddress: '127.0.0.1' })).data.toString(), 'inside\n')
  t.equal((await exchange(p.port, null, { localAddress: '127.0.0.2' })).data.toString(), 'outside\n')
  // The inner tcpproxy logs to the same stderr: one relay per client.
  t.match(await p.waitFor(new RegExp(`\\+INFO: connect: client= 127\\.0\\.0\\.2, server= 127\\.0\\.0\\.1:${outside.port}`)), 'timeout= 60')
  // ...as itself: its own pid, tag and id, not as the handler's stderr (`-INFO: handler: tcpproxy[N]: +OK: ..., id= 1, id= 2`).
  const own = await p.waitFor(/\+OK: disconnect: client= 127\.0\.0\.2/)
  t.match(own, new RegExp(`^tcpproxy\\[\\d+\\]: \\+OK: disconnect: client= 127\\.0\\.0\\.2, server= 127\\.0\\.0\\.1:${outside.port}, .*, id= 1$`))
  const outer = (/^tcpproxy\[(\d+)\]: starting/.exec(await p.waitFor(/starting/)) as RegExpExecArray)[1]
  t.not(/^tcpproxy\[(\d+)\]/.exec(own)?.[1], outer, 'with its own pid')
  t.notOk(p.lines.some(l => l.includes('handler: ')), p.lines.join('\n'))
})

t.test('from a background tcpproxy logging to syslog, the inner tcpproxy of a handler logs to that syslog as itself', async t => {
  const { dir, sock, lines: got } = await syslogReceiver(t)
  const inside = await backend(s => s.end('inside\n'))
  t.teardown(() => inside.close())
  const bin = t.testdir({})
  symlinkSync(BIN, join(bin, 'tcpproxy'))
  const env = { ...process.env, PATH: `${bin}:${process.env['PATH']}`, ROUTE_INSIDE: `127.0.0.1:${inside.port}`, ROUTE_OUTSIDE: '127.0.0.1:9' }
  const pidfile = join(dir, 'pid')
  const port = await freePort()
  const run = tcpproxy(['-n', '-u', 'root', '--syslog-socket', sock, '--pidfile', pidfile, '-b', `127.0.0.1:${port}`, example('route-by-client')], { env })
  t.equal(await run.exited, 0, run.lines.join('\n'))
  const pid = Number(readFileSync(pidfile, 'utf8'))
  t.teardown(() => void (alive(pid) && process.kill(pid, 'SIGKILL')))
  t.equal((await exchange(port, null, { localAddress: '127.0.0.1' })).data.toString(), 'inside\n')
  for (let i = 0; i < 200 && !got.some(l => l.includes('disconnect')); i++) await new Promise(r => setTimeout(r, 25))
  const own = got.find(l => l.includes('+OK: disconnect')) as string
  t.match(own, new RegExp(`^<21>.* tcpproxy\\[\\d+\\]: \\+OK: disconnect: client= 127\\.0\\.0\\.1, server= 127\\.0\\.0\\.1:${inside.port}, .*, id= 1$`))
  t.not(/tcpproxy\[(\d+)\]/.exec(own)?.[1], String(pid), 'with its own pid')
  t.notOk(got.some(l => l.includes('handler: ')), got.join('\n'))
  process.kill(pid, 'SIGTERM')
  await waitGone(pid)
})

t.test('an ACP that grants lets the connection through without losing early client bytes', async t => {
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const p = await startProxy(port => ['-d', '-a', fixture('acp-allow.sh'), '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.teardown(p.stop)
  // Sent at once, while the ACP still runs (it sleeps 0.3 s).
  const r = await exchange(p.port, 'early bytes')
  t.equal(r.data.toString(), 'early bytes')
  t.ok(r.ms >= 250, `the relay waited for the ACP (${r.ms} ms)`)
  t.match(await p.waitFor(/access granted/), '+DEBUG: access granted: client= 127.0.0.1, rc= 0, message= welcome 127.0.0.1, id= 1')
})

t.test('an ACP that denies: the client gets its banner, the upstream sees nothing', async t => {
  let upstreamConnections = 0
  const up = await backend(s => {
    upstreamConnections++
    s.destroy()
  })
  t.teardown(() => up.close())
  const dir = t.testdir({ 'acp.conf': '' })
  const conf = join(dir, 'acp.conf')
  const p = await startProxy(port => {
    // Per-service acp in the configuration file, here with a default acp-timeout.
    writeFileSync(conf, `acp-timeout 5\nport ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${up.port}\nacp ${fixture('acp-deny.sh')}\n`)
    return ['-d', '-c', conf]
  })
  t.teardown(p.stop)
  const r = await exchange(p.port, 'let me in')
  t.equal(r.data.toString(), '554 no service for 127.0.0.1\r\n')
  t.match(
    await p.waitFor(/access denied/),
    '-ERR: access denied: client= 127.0.0.1, rc= 3, message= client 127.0.0.1 is not on the list, id= 1',
  )
  t.equal(upstreamConnections, 0)
  t.notOk(p.lines.some(l => l.includes('+INFO: connect:')))
})

t.test('an ACP that crashes, hangs or cannot start denies', async t => {
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const gone = removable(t, 'acp-allow.sh')
  for (const [acp, rc, extra] of [
    [fixture('acp-crash.sh'), 'SIGSEGV', []],
    [fixture('acp-slow.sh'), 'timeout', ['--acp-timeout', '0.5']],
    [gone, 'ENOENT', []],
  ] as const) {
    const p = await startProxy(port => ['-d', ...extra, '-a', acp, '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
    t.teardown(p.stop)
    if (acp === gone) rmSync(gone)
    const r = await exchange(p.port, 'x')
    t.equal(r.data.length, 0, `${rc}: nothing reaches the client`)
    t.ok(r.ms < 4000, `${rc}: closed after ${r.ms} ms`)
    t.match(await p.waitFor(/access denied/), `rc= ${rc}, message= access denied`)
  }
})

t.test('inetd mode: tcpproxy serves the connection on its stdin and exits', async t => {
  const up = await backend(s => {
    const got: Buffer[] = []
    s.on('data', d => got.push(d))
    // Replies only after the client's EOF: half-close works through inetd mode too.
    s.on('end', () => setTimeout(() => s.end(`got ${Buffer.concat(got)}`), 200))
  })
  t.teardown(() => up.close())
  // No port in the server argument would mean the local port, which here is the test inetd's: give it.
  const { reply: r, code, log } = await viaInetd([`127.0.0.1:${up.port}`], 'over inetd')
  t.equal(r.data.toString(), 'got over inetd')
  t.equal(code, 0, log)
  t.match(log, `+INFO: connect: client= 127.0.0.1, server= 127.0.0.1:${up.port}`)
  t.match(log, /\+OK: disconnect: .*received= 14, send= 10/)
})

t.test('"standalone no" without a socket on stdin is a usage error', async t => {
  const dir = t.testdir({ 'c.conf': 'standalone no\nport 25\ninterface *\nserver h\n' })
  const child = spawn(process.execPath, [BIN, '-c', join(dir, 'c.conf')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr.on('data', d => (err += d))
  const [code] = (await once(child, 'exit')) as [number]
  t.equal(code, 2)
  t.equal(err, 'tcpproxy: inetd mode needs a connected TCP socket on standard input\n')
})

t.test('a server without -b and without a socket on stdin is a usage error', async t => {
  const child = spawn(process.execPath, [BIN, '127.0.0.1:9'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr.on('data', d => (err += d))
  const [code] = (await once(child, 'exit')) as [number]
  t.equal(code, 2)
  t.equal(err, 'tcpproxy: a server without -b needs a connection on standard input (inetd mode); use -b PORT to listen\n')
})

t.test('-w appends each connection\'s traffic to BASE.ID.log in the 2.0 format', async t => {
  const up = await backend(s => {
    s.on('data', () => {})
    s.on('end', () => s.end(Buffer.from([0x32, 0x32, 0x30, 0x0d, 0x0a, 0xff, 0x23])))
  })
  t.teardown(() => up.close())
  // The daemon's worker runs as nobody: give it the directory, as an admin would.
  const base = join(reachableDir(t), 'dump')
  const p = await startProxy(port => ['-d', '-w', base, '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.teardown(p.stop)
  await exchange(p.port, 'HELO #1\r\n')
  await p.waitFor(/disconnect/)
  const text = readFileSync(`${base}.1.log`, 'utf8')
  const time = String.raw`\d\d:\d\d:\d\d\.\d{6}`
  t.match(
    text,
    new RegExp(
      `^--- CLIENT \\[1\\] ${time} \\(9\\):\\nHELO #231#0D#0A\\n` +
        `--- CLIENT \\[1\\] ${time} \\(0\\):\\n\\n` +
        `--- SERVER \\[1\\] ${time} \\(7\\):\\n220#0D#0A#FF#23\\n` +
        `--- SERVER \\[1\\] ${time} \\(0\\):\\n\\n$`,
    ),
  )
})

t.test('-w into a directory that went away after the start logs once and relays anyway', async t => {
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const dir = reachableDir(t)
  const base = join(dir, 'sub', 'dump')
  mkdirSync(join(dir, 'sub'), { mode: 0o777 })
  chmodSync(join(dir, 'sub'), 0o777)
  const p = await startProxy(port => ['-d', '-w', base, '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.teardown(p.stop)
  // A path below a regular file fails for everyone, root included.
  rmSync(join(dir, 'sub'), { recursive: true })
  writeFileSync(join(dir, 'sub'), '')
  const r = await exchange(p.port, 'still relayed')
  t.equal(r.data.toString(), 'still relayed')
  t.match(await p.waitFor(/writefile/), `-INFO: can't open writefile: ${base}.1.log, error= ENOTDIR, id= 1`)
})
