/**
 * lib/server/inetd.ts: recognising the connection inetd hands over on standard
 * input, and taking it over without reading a byte of it. The descriptor
 * cases run in a child (test/fixtures/unit-inherit.mjs) that gets the real
 * socket as its fd 0, as inetd would start tcpproxy. Then what tcpproxy
 * does with such a connection that the end-to-end tests leave out: where
 * its log goes when stderr is the connection too, and a configuration file
 * that says `standalone yes`.
 */
import t, { type Test } from 'tap'
import { spawn, type StdioOptions } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { chmodSync, closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import split2 from 'split2'
import { inheritedConnection, isSocket, sameSocket } from '../../lib/server/inetd.js'
import { backend, exchange, freePort, tcpproxy } from '../fixtures/harness.js'
import { socketPair } from '../fixtures/pair.js'

const CHILD = fileURLToPath(new URL('../fixtures/unit-inherit.mjs', import.meta.url))

/** The descriptor under a socket or server (the only way to hand it to a child as a number). */
const fdOf = (s: Socket | Server | { _handle?: unknown }): number => (s as unknown as { _handle: { fd: number } })._handle.fd

/** Run the fixture with `stdio` (its fd 0 is what matters); resolves with its JSON lines and exit code, killed after 5 s. */
async function inherit(stdio: StdioOptions, shellPipe = false): Promise<{ lines: Record<string, unknown>[]; code: number | null }> {
  // With shellPipe, sh runs the child at the end of a pipeline: its stdin is a real pipe(2).
  const child = shellPipe
    ? spawn('/bin/sh', ['-c', 'printf data | "$0" "$1"', process.execPath, CHILD], { stdio })
    : spawn(process.execPath, [CHILD], { stdio })
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  let out = ''
  child.stdout?.on('data', d => (out += d))
  const [code] = (await once(child, 'close')) as [number | null]
  clearTimeout(timer)
  return { lines: out.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Record<string, unknown>), code }
}

/** A fresh directory with a short path (a unix socket path must fit in 108 bytes), removed afterwards. */
function shortDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tcpproxy-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function listening(server: Server, ...args: unknown[]): Promise<Server> {
  server.listen(...(args as [number, string]))
  await once(server, 'listening')
  return server
}

t.test('isSocket is true for a socket, false for a file and for a closed descriptor', async t => {
  const [a, b] = await socketPair()
  t.teardown(() => [a, b].forEach(s => s.destroy()))
  t.equal(isSocket(fdOf(a)), true)
  const file = openSync(CHILD, 'r')
  t.equal(isSocket(file), false)
  closeSync(file)
  t.equal(isSocket(file), false, 'EBADF is "not a socket", not an exception')
})

t.test('sameSocket is true only for two descriptors of one socket', async t => {
  const [a, b] = await socketPair()
  t.teardown(() => [a, b].forEach(s => s.destroy()))
  t.equal(sameSocket(fdOf(a), fdOf(a)), true)
  t.equal(sameSocket(fdOf(a), fdOf(b)), false, 'the two ends of a connection are two sockets')
  const file = openSync(CHILD, 'r')
  t.equal(sameSocket(file, file), false, 'a file is no socket')
  t.equal(sameSocket(fdOf(a), file), false)
  closeSync(file)
  t.equal(sameSocket(fdOf(a), file), false, 'a closed descriptor is no socket')
})

t.test('inheritedConnection is null for a descriptor that is no socket', async t => {
  const file = openSync(CHILD, 'r')
  t.equal(inheritedConnection(file), null)
  closeSync(file)
  t.equal(inheritedConnection(file), null, 'nor for a closed one')
})

t.test('an inherited TCP connection is taken over without reading a byte the client sent', async t => {
  const server = await listening(createServer({ pauseOnConnect: true }), 0, '127.0.0.1')
  t.teardown(() => server.close())
  const port = (server.address() as { port: number }).port
  const client = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  t.teardown(() => client.destroy())
  const [accepted] = (await once(server, 'connection')) as [Socket]
  const clientPort = client.localPort
  // Sent before the child exists, and with the client's EOF: all of it must still be in the kernel.
  client.end('early bytes')
  const back: Buffer[] = []
  client.on('data', d => back.push(d))
  const clientEnded = once(client, 'end')
  await new Promise(r => setTimeout(r, 100))
  // inetd passes the connection as stdin, stdout and stderr; stdout here reports to the test.
  const run = inherit([accepted, 'pipe', accepted])
  accepted.destroy()
  const { lines, code } = await run
  t.equal(code, 0)
  t.same(lines, [
    {
      isSocket: true,
      stderrIsStdin: true,
      local: ['127.0.0.1', port],
      remote: ['127.0.0.1', clientPort],
      readableLength: 0,
      bytesRead: 0,
      allowHalfOpen: true,
    },
    { readableLength: 0, bytesRead: 0 },
    { data: 'early bytes' },
  ])
  await clientEnded
  t.equal(Buffer.concat(back).toString(), 'bye\n', 'after the client\'s EOF the other direction still works')
})

t.test('standard input that is a pipe or /dev/null is no socket and no connection', async t => {
  t.same(await inherit(['ignore', 'pipe', 'inherit'], true), { lines: [{ isSocket: false, connection: null }], code: 0 }, 'a shell pipeline')
  t.same(await inherit(['ignore', 'pipe', 'inherit']), { lines: [{ isSocket: false, connection: null }], code: 0 }, '/dev/null')
})

t.test('a listening TCP socket on standard input is no connection, and is left listening', async t => {
  const server = await listening(createServer(s => s.end('still here\n')), 0, '127.0.0.1')
  t.teardown(() => server.close())
  t.same(await inherit([fdOf(server), 'pipe', 'inherit']), { lines: [{ isSocket: true, connection: null }], code: 0 })
  const c = connect((server.address() as { port: number }).port, '127.0.0.1')
  const [data] = (await once(c, 'data')) as [Buffer]
  t.equal(data.toString(), 'still here\n', 'the child closed only its own copy')
  c.destroy()
})

t.test('a connected unix socket on standard input is no TCP connection', async t => {
  const path = join(shortDir(t), 'sock')
  const server = await listening(createServer({ pauseOnConnect: true }), path)
  t.teardown(() => server.close())
  const client = connect(path)
  t.teardown(() => client.destroy())
  const [accepted] = (await once(server, 'connection')) as [Socket]
  const run = inherit([accepted, 'pipe', 'inherit'])
  accepted.destroy()
  t.same(await run, { lines: [{ isSocket: true, connection: null }], code: 0 })
  // Node's own stdio "pipes" are unix socket pairs: the same case.
  t.same(await inherit(['pipe', 'pipe', 'inherit']), { lines: [{ isSocket: true, connection: null }], code: 0 }, 'a socket pair')
})

t.test('a UDP socket on standard input is no connection', async t => {
  const udp = createSocket('udp4')
  udp.bind(0, '127.0.0.1')
  await once(udp, 'listening')
  t.teardown(() => udp.close())
  t.same(await inherit([fdOf(udp as unknown as Socket), 'pipe', 'inherit']), { lines: [{ isSocket: true, connection: null }], code: 0 })
})

/**
 * Play inetd: accept one connection and start bin/tcpproxy `args` with it as
 * stdin, stdout and stderr; resolves with what the client got and the exit code.
 */
async function inetdRun(args: string[], send: string): Promise<{ data: string; code: number | string }> {
  const inetd = await listening(createServer({ pauseOnConnect: true }), 0, '127.0.0.1')
  try {
    const started = once(inetd, 'connection').then(([s]) => {
      const run = tcpproxy(args, { stdio: [s as Socket, s as Socket, s as Socket] })
      ;(s as Socket).destroy()
      const timer = setTimeout(() => run.proc.kill('SIGKILL'), 5000)
      return run.exited.finally(() => clearTimeout(timer))
    })
    const r = await exchange((inetd.address() as { port: number }).port, send)
    return { data: r.data.toString(), code: await started }
  } finally {
    inetd.close()
  }
}

/** The syslog stand-in (test/fixtures/dgram-recv.py) on a fresh socket; its datagrams as text. */
async function syslogd(t: Test): Promise<{ path: string; messages: string[] }> {
  const dir = shortDir(t)
  const path = join(dir, 'log')
  const recv = spawn('python3', [fileURLToPath(new URL('../fixtures/dgram-recv.py', import.meta.url)), path], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => void recv.kill())
  const messages: string[] = []
  const lines = recv.stdout.pipe(split2())
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('dgram-recv.py did not start')), 5000)
    lines.on('data', (l: string) => {
      if (l === 'ready') {
        clearTimeout(timer)
        resolve()
      } else messages.push(Buffer.from(l, 'hex').toString())
    })
  })
  // Like /dev/log: anyone may log (tcpproxy started as root logs as nobody).
  chmodSync(dir, 0o755)
  chmodSync(path, 0o666)
  return { path, messages }
}

t.test('in inetd mode with stderr on the connection, log lines go to syslog, not to the client', async t => {
  const up = await backend(s => {
    s.resume()
    s.on('end', () => s.end('from upstream\n'))
  })
  t.teardown(() => up.close())
  const log = await syslogd(t)
  const r = await inetdRun(['--syslog-socket', log.path, `127.0.0.1:${up.port}`], 'hello')
  t.same(r, { data: 'from upstream\n', code: 0 }, 'the client gets the upstream\'s bytes and nothing else')
  const deadline = Date.now() + 2000
  while (!log.messages.some(m => m.includes('disconnect:')) && Date.now() < deadline) await new Promise(r => setTimeout(r, 20))
  t.match(log.messages.join('\n'), `connect: client= 127.0.0.1, server= 127.0.0.1:${up.port}`)
})

t.test('in inetd mode with stderr on the connection and syslog unreachable, no log line reaches the client', async t => {
  const up = await backend(s => {
    s.resume()
    s.on('end', () => s.end('from upstream\n'))
  })
  t.teardown(() => up.close())
  const r = await inetdRun(['--syslog-socket', join(t.testdir({}), 'no-syslogd-here'), `127.0.0.1:${up.port}`], 'hello')
  t.same(r, { data: 'from upstream\n', code: 0 })
})

/** Accept one connection on a fresh port; the client end and the accepted socket. */
async function connectionFor(t: Test): Promise<{ client: Socket; accepted: Socket }> {
  const inetd = await listening(createServer({ pauseOnConnect: true }), 0, '127.0.0.1')
  t.teardown(() => inetd.close())
  const client = connect({ port: (inetd.address() as { port: number }).port, host: '127.0.0.1' })
  client.on('error', () => {})
  t.teardown(() => client.destroy())
  const [accepted] = (await once(inetd, 'connection')) as [Socket]
  return { client, accepted }
}

t.test('"standalone yes" in the file wins over a connection on stdin: the configured port listens', async t => {
  const up = await backend(s => {
    s.resume()
    s.on('end', () => s.end('served\n'))
  })
  t.teardown(() => up.close())
  const port = await freePort()
  const dir = t.testdir({ 'tcpproxy.conf': `standalone yes\nport ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${up.port}\n` })
  const { client, accepted } = await connectionFor(t)
  const got: Buffer[] = []
  client.on('data', d => got.push(d))
  const run = tcpproxy(['-d', '-c', join(dir, 'tcpproxy.conf')], { stdio: [accepted, 'pipe', 'pipe'] })
  accepted.destroy()
  t.teardown(async () => {
    if (run.proc.exitCode === null && run.proc.signalCode === null) run.proc.kill('SIGKILL')
    await run.exited
  })
  await run.waitFor(/ ready$/, 10000)
  t.equal((await exchange(port, 'hi')).data.toString(), 'served\n', 'the configured service answers')
  run.proc.kill('SIGTERM')
  t.equal(await run.exited, 0)
  await Promise.race([once(client, 'close'), new Promise(r => setTimeout(r, 2000))])
  t.ok(client.destroyed, 'the connection on stdin is closed by the time tcpproxy is gone')
  t.equal(Buffer.concat(got).toString(), '', 'and was never served')
})

t.test('"standalone yes" in the file: a connection on stdin is closed at once', async t => {
  const port = await freePort()
  const dir = t.testdir({ 'tcpproxy.conf': `standalone yes\nport ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:9\n` })
  const { client, accepted } = await connectionFor(t)
  const run = tcpproxy(['-d', '-c', join(dir, 'tcpproxy.conf')], { stdio: [accepted, 'pipe', 'pipe'] })
  accepted.destroy()
  t.teardown(async () => {
    if (run.proc.exitCode === null && run.proc.signalCode === null) run.proc.kill('SIGTERM')
    await run.exited
  })
  await run.waitFor(/ ready$/, 10000)
  await Promise.race([once(client, 'end'), new Promise(r => setTimeout(r, 2000))])
  t.ok(client.readableEnded, 'the client saw EOF while tcpproxy runs')
})

t.test('"standalone no" in the file without a connection on stdin is a usage error', async t => {
  const dir = t.testdir({ 'tcpproxy.conf': 'standalone no\nport 8025\ninterface *\nserver 127.0.0.1:25\n' })
  const run = tcpproxy(['-c', join(dir, 'tcpproxy.conf')], { stdio: ['ignore', 'pipe', 'pipe'] })
  const timer = setTimeout(() => run.proc.kill('SIGKILL'), 5000)
  t.equal(await run.exited, 2)
  clearTimeout(timer)
  t.same(run.lines, ['tcpproxy: inetd mode needs a connected TCP socket on standard input'])
})

t.test('a socket on standard input that is no TCP connection is named for what it is', async t => {
  const server = await listening(createServer(s => s.destroy()), 0, '127.0.0.1')
  t.teardown(() => server.close())
  const udp = createSocket('udp4')
  udp.bind(0, '127.0.0.1')
  await once(udp, 'listening')
  t.teardown(() => udp.close())
  const conf = join(shortDir(t), 'c.conf')
  writeFileSync(conf, 'standalone no\nport 8025\ninterface *\nserver 127.0.0.1:25\n')
  const cases: Array<[string, 'pipe' | number, string]> = [
    // Node's stdio pipes are unix socket pairs, as socat's without nofork.
    ['a socket pair', 'pipe', 'standard input is a unix-domain socket, not a TCP connection (socat: use its nofork option)'],
    ['a listening socket', fdOf(server), 'standard input is a TCP socket without a peer (a listening socket?), not a connection'],
    ['a UDP socket', fdOf(udp as unknown as Socket), 'standard input is a datagram socket, not a TCP connection'],
  ]
  for (const [what, stdin, problem] of cases) {
    const byServer = tcpproxy(['127.0.0.1:25'], { stdio: [stdin, 'pipe', 'pipe'] })
    byServer.proc.stdin?.end()
    t.equal(await byServer.exited, 2, what)
    t.same(byServer.lines, [`tcpproxy: a server without -b needs a TCP connection on standard input (inetd mode), but ${problem}`], what)
    const byFile = tcpproxy(['-c', conf], { stdio: [stdin, 'pipe', 'pipe'] })
    byFile.proc.stdin?.end()
    t.equal(await byFile.exited, 2, what)
    t.same(byFile.lines, [`tcpproxy: inetd mode needs a connected TCP socket on standard input, but ${problem}`], what)
  }
})
