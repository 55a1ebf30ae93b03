/**
 * End to end: what the relay promises. Half-close both ways, server-first
 * protocols, idle and connect timeouts, 32 MiB each way intact, and bounded
 * memory behind a slow reader.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { chownSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { connect } from 'node:net'
import { nativeAvailable } from '../../lib/native/addon.js'
import { backend, descendants, echoAfterEnd, exchange, hangingPort, reachableDir, sha256, startProxy } from '../fixtures/harness.js'

const oneLiner = (up: number, ...extra: string[]) => (port: number) => ['-d', ...extra, '-b', `127.0.0.1:${port}`, `127.0.0.1:${up}`]

t.test('client FIN first: the reply that comes after it still reaches the client', async t => {
  const up = await backend(s => {
    const got: Buffer[] = []
    s.on('data', c => got.push(c))
    // Reply only well after the client's EOF, as `echo x | nc` style clients expect.
    s.on('end', () => setTimeout(() => s.end(`GOT ${Buffer.concat(got).length}\n`), 500))
  })
  t.teardown(() => up.close())
  const p = await startProxy(oneLiner(up.port))
  t.teardown(p.stop)
  const r = await exchange(p.port, 'hello world')
  t.equal(r.data.toString(), 'GOT 11\n')
  t.ok(r.ms >= 450, `reply waited for (${r.ms} ms)`)
  t.match(await p.waitFor(/disconnect/), 'received= 7, send= 11, duration= 0.')
  t.match(await p.waitFor(/disconnect/), 'closed-by= client')
})

t.test('server FIN first: the client can still send, and the server gets it', async t => {
  let serverGot: Promise<string> = Promise.resolve('')
  const up = await backend(s => {
    s.end('bye early\n')
    const got: Buffer[] = []
    s.on('data', c => got.push(c))
    serverGot = once(s, 'end').then(() => Buffer.concat(got).toString())
  })
  t.teardown(() => up.close())
  const p = await startProxy(oneLiner(up.port))
  t.teardown(p.stop)
  const c = connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true })
  const chunks: Buffer[] = []
  c.on('data', d => chunks.push(d))
  await once(c, 'end')
  t.equal(Buffer.concat(chunks).toString(), 'bye early\n')
  // The original dropped the session here; we keep the client's direction open.
  await new Promise(r => setTimeout(r, 300))
  const closed = once(c, 'close')
  c.end('late client data')
  t.equal(await serverGot, 'late client data')
  await closed
  t.match(await p.waitFor(/disconnect/), 'received= 10, send= 16')
  t.match(await p.waitFor(/disconnect/), 'closed-by= server')
})

t.test('a server banner reaches a client that sends nothing', async t => {
  const up = await backend(s => {
    s.write('220 mail.example.org ESMTP\r\n')
    s.on('data', () => {})
    s.on('end', () => s.end())
  })
  t.teardown(() => up.close())
  const p = await startProxy(oneLiner(up.port))
  t.teardown(p.stop)
  const c = connect({ port: p.port, host: '127.0.0.1' })
  const [banner] = (await once(c, 'data')) as [Buffer]
  t.equal(banner.toString(), '220 mail.example.org ESMTP\r\n')
  c.destroy()
})

t.test('the idle timeout closes a silent session and says so', async t => {
  const up = await backend(s => s.on('data', () => {}))
  t.teardown(() => up.close())
  const p = await startProxy(oneLiner(up.port, '-t', '1'))
  t.teardown(p.stop)
  const c = connect({ port: p.port, host: '127.0.0.1' })
  c.resume()
  // Traffic keeps it alive past the timeout...
  for (let i = 0; i < 3; i++) {
    await new Promise(r => setTimeout(r, 400))
    c.write('tick')
  }
  const start = Date.now()
  await once(c, 'close')
  const idle = Date.now() - start
  t.ok(idle >= 800 && idle < 4000, `closed ${idle} ms after the last byte`)
  t.match(await p.waitFor(/-ERR: connection timed out/), `-ERR: connection timed out: client= 127.0.0.1, server= 127.0.0.1:${up.port}`)
  t.match(await p.waitFor(/disconnect/), 'send= 12, duration= 2.')
  t.match(await p.waitFor(/disconnect/), 'closed-by= timeout')
})

t.test('the idle timeout also ends a half-closed session', async t => {
  const up = await backend(s => s.on('data', () => {}))
  t.teardown(() => up.close())
  const p = await startProxy(oneLiner(up.port, '-t', '0.5'))
  t.teardown(p.stop)
  const r = await exchange(p.port, 'x')
  t.ok(r.ms >= 400 && r.ms < 3000, `closed after ${r.ms} ms`)
  t.match(await p.waitFor(/disconnect/), 'closed-by= timeout')
})

t.test('the connect timeout gives up on an upstream that never answers', async t => {
  const holePort = await hangingPort(t, 15000)
  const p = await startProxy(oneLiner(holePort, '--connect-timeout', '1'))
  t.teardown(p.stop)
  const r = await exchange(p.port, null, { end: false })
  t.ok(r.ms >= 900 && r.ms < 4000, `client closed after ${r.ms} ms`)
  t.match(await p.waitFor(/-ERR: connection error/), 'error= connect timed out after 1 s')
})

t.test('32 MiB each way arrive intact at the same time', async t => {
  const size = 32 * 1024 * 1024
  const toServer = randomBytes(size)
  const toClient = randomBytes(size)
  let serverDigest: Promise<string> = Promise.resolve('')
  const up = await backend(s => {
    const got: Buffer[] = []
    s.on('data', c => got.push(c))
    serverDigest = once(s, 'end').then(() => sha256(Buffer.concat(got)))
    s.end(toClient)
  })
  t.teardown(() => up.close())
  const p = await startProxy(oneLiner(up.port))
  t.teardown(p.stop)
  const r = await exchange(p.port, toServer, { timeoutMs: 60000 })
  t.equal(r.data.length, size)
  t.equal(sha256(r.data), sha256(toClient), 'server to client intact')
  t.equal(await serverDigest, sha256(toServer), 'client to server intact')
  t.match(await p.waitFor(/disconnect/), `received= ${size}, send= ${size}`)
})

t.test('a slow reader does not make the proxy buffer: memory stays bounded', async t => {
  const total = 256 * 1024 * 1024
  const block = randomBytes(1024 * 1024)
  let offered = 0
  const up = await backend(s => {
    s.on('error', () => {})
    const push = (): void => {
      while (offered < total) {
        offered += block.length
        if (!s.write(block)) return void s.once('drain', push)
      }
      s.end()
    }
    push()
  })
  t.teardown(() => up.close())
  const p = await startProxy(oneLiner(up.port))
  t.teardown(p.stop)
  const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p.proc.pid}/status`, 'utf8'))?.[1]) * 1024
  const before = rss()
  const c = connect({ port: p.port, host: '127.0.0.1' })
  c.pause()
  await once(c, 'connect')
  // The client reads nothing for 2 s: the upstream must be held back.
  await new Promise(r => setTimeout(r, 2000))
  const stalledAt = offered
  const grown = rss() - before
  t.ok(stalledAt < total / 2, `upstream held back after ${stalledAt >> 20} MiB of ${total >> 20}`)
  t.ok(grown < 48 * 1024 * 1024, `proxy RSS grew by ${grown >> 20} MiB`)
  let got = 0
  c.on('data', d => (got += d.length))
  c.resume()
  await once(c, 'end')
  t.equal(got, total, 'every byte arrives once the reader catches up')
  c.destroy()
})

t.test('a reset on either side is passed on and logged with the side', async t => {
  const resets: string[] = []
  const up = await backend(s => {
    s.on('error', (e: NodeJS.ErrnoException) => resets.push(e.code as string))
    s.on('data', d => {
      // "die" makes the upstream reset; anything else is swallowed.
      if (d.toString() === 'die') s.resetAndDestroy()
    })
  })
  t.teardown(() => up.close())
  const p = await startProxy(oneLiner(up.port))
  t.teardown(p.stop)
  const c1 = connect({ port: p.port, host: '127.0.0.1' }).on('error', () => {})
  c1.write('hello')
  await p.waitFor(/\+INFO: connect:/)
  await new Promise(r => setTimeout(r, 100))
  c1.resetAndDestroy()
  t.match(await p.waitFor(/client close\(\) detected/), '-INFO: client close() detected, error= read ECONNRESET, id= 1')
  t.match(await p.waitFor(/disconnect:.*id= 1$/), 'closed-by= client-error')
  const c2 = connect({ port: p.port, host: '127.0.0.1' })
  let clientErr = null as NodeJS.ErrnoException | null
  c2.on('error', e => (clientErr = e))
  c2.write('die')
  await new Promise(r => c2.once('close', r))
  t.equal(clientErr?.code, 'ECONNRESET', 'the client sees the reset too')
  t.match(await p.waitFor(/server close\(\) detected/), '-INFO: server close() detected, error= read ECONNRESET, id= 2')
  t.same(resets, ['ECONNRESET'], 'the upstream of the reset client saw a reset')
})

t.test('a second SIGTERM exits at once without waiting for sessions', async t => {
  const up = await backend(s => s.on('error', () => {}).resume())
  t.teardown(() => up.close())
  const dir = t.testdir({})
  const pidfile = join(dir, 'tp.pid')
  const p = await startProxy(oneLiner(up.port, '--pidfile', pidfile))
  t.teardown(p.stop)
  const c = connect({ port: p.port, host: '127.0.0.1' }).on('error', () => {})
  t.teardown(() => c.destroy())
  await p.waitFor(/\+INFO: connect:/)
  const start = Date.now()
  p.proc.kill('SIGTERM')
  await new Promise(r => setTimeout(r, 200))
  t.equal(p.proc.exitCode, null, 'the first signal waits for the open session')
  p.proc.kill('SIGINT')
  t.equal(await p.exited, 1)
  t.ok(Date.now() - start < 5000)
  t.notOk(existsSync(pidfile), 'the pidfile is removed even then')
})

/** The names of the threads of `pid` and its descendants (as root, the worker relays, not the supervisor). */
const threadNames = (pid: number): string[] =>
  [pid, ...descendants(pid).map(d => d.pid)].flatMap(p =>
    readdirSync(`/proc/${p}/task`).map(tid => readFileSync(`/proc/${p}/task/${tid}/comm`, 'utf8').trim()),
  )

t.test('the relay thread and --no-relay-thread relay the same bytes with the same log lines', async t => {
  const size = 4 * 1024 * 1024
  const toServer = randomBytes(size)
  const up = await backend(s => {
    const got: Buffer[] = []
    s.on('data', c => got.push(c))
    s.on('end', () => s.end(`${sha256(Buffer.concat(got))}\n`))
  })
  t.teardown(() => up.close())
  const lines: string[] = []
  for (const extra of [[], ['--no-relay-thread']]) {
    const p = await startProxy(oneLiner(up.port, ...extra))
    const r = await exchange(p.port, toServer, { timeoutMs: 30000 })
    t.equal(r.data.toString(), `${sha256(toServer)}\n`, `${extra.join(' ') || 'default'}: the bytes arrive intact`)
    const relays = threadNames(p.proc.pid as number).filter(n => n === 'tcpproxy-relay').length
    if (extra.length === 0) t.equal(relays, nativeAvailable() ? 1 : 0, 'one relay thread in the process (when the addon is built)')
    else t.equal(relays, 0, 'no relay thread with --no-relay-thread')
    lines.push((await p.waitFor(/disconnect/)).replace(/duration= [\d.]+/, 'duration= D').replace(/^tcpproxy\[\d+\]/, 'tcpproxy[PID]'))
    await p.stop()
  }
  t.equal(lines[0], lines[1], 'the same disconnect line')
  t.match(lines[0], `received= 65, send= ${size}`)
})

/** Open descriptors of `pid` and its descendants (the worker, when started as root). */
const fdCount = (pid: number): number =>
  [pid, ...descendants(pid).map(d => d.pid)].reduce((n, p) => {
    try {
      return n + readdirSync(`/proc/${p}/fd`).length
    } catch {
      return n
    }
  }, 0)

/**
 * Clients that send, end and reset at once while the upstream streams to
 * them: the client's EOF and a failed write to it land in one turn, the race
 * that used to leak a socket and its session in the JS relay.
 */
async function resetStorm(t: Test, extra: string[]): Promise<void> {
  const chunk = Buffer.alloc(16 * 1024, 'z')
  const up = await backend(s => {
    s.on('error', () => {})
    s.on('data', () => {})
    const timer = setInterval(() => s.writable && s.writableLength === 0 && s.write(chunk), 1)
    s.on('close', () => clearInterval(timer))
  })
  t.teardown(() => up.close())
  const p = await startProxy(oneLiner(up.port, ...extra))
  const pid = p.proc.pid as number
  t.teardown(p.stop)
  // The idle count, once one session has come and gone.
  const warm = connect({ port: p.port, host: '127.0.0.1' })
  await once(warm, 'data')
  warm.destroy()
  await p.waitFor(/disconnect:.*id= 1$/)
  await new Promise(r => setTimeout(r, 200))
  const idle = fdCount(pid)
  const sessions = 400
  const storm = async (): Promise<void> => {
    const c = connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true })
    c.on('error', () => {})
    const closed = once(c, 'close')
    await once(c, 'data')
    // The FIN, then the reset as soon as Node can send it (not while its
    // own shutdown is in flight: the very bug this test is about).
    c.end('x', () => c.resetAndDestroy())
    await closed
  }
  const deadline = Date.now() + 60000
  for (let started = 0; started < sessions && Date.now() < deadline; started += 20) await Promise.all(Array.from({ length: 20 }, storm))
  const ended = (): number => p.lines.filter(l => /disconnect:/.test(l)).length
  for (let i = 0; i < 100 && ended() < sessions + 1; i++) await new Promise(r => setTimeout(r, 100))
  t.equal(ended(), sessions + 1, 'every session logged its disconnect')
  let fds = fdCount(pid)
  for (let i = 0; i < 50 && fds > idle; i++) {
    await new Promise(r => setTimeout(r, 100))
    fds = fdCount(pid)
  }
  t.equal(fds, idle, `the descriptors are back to idle (${idle})`)
  const stopped = await Promise.race([p.stop(), new Promise(r => setTimeout(() => r('SIGTERM did not complete in 10 s'), 10000))])
  t.equal(stopped, 0, 'SIGTERM ends the daemon normally')
}

t.test('a reset storm without the relay thread: every session ends, no descriptor is left, SIGTERM completes', t => resetStorm(t, ['--no-relay-thread']))

t.test('a reset storm with the relay thread (when built): the same', t => resetStorm(t, []))

t.test('-w: a dump file is always new, never a planted file nor the dump of an earlier run with the same id', async t => {
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  // The daemon's worker runs as nobody when started as root: give it the directory.
  const dir = reachableDir(t)
  const base = join(dir, 'dump')
  // Planted by another process of the serving user, to read the traffic.
  writeFileSync(`${base}.1.log`, '')
  if (process.getuid?.() === 0) {
    const nobody = Number(spawnSync('id', ['-u', 'nobody']).stdout.toString())
    chownSync(`${base}.1.log`, nobody, nobody)
  }
  // Two runs: ids start again at 1 in the second.
  for (const [run, secret] of [[2, 'first run'], [3, 'second run']] as const) {
    const p = await startProxy(oneLiner(up.port, '-w', base))
    t.equal((await exchange(p.port, secret)).data.toString(), secret)
    t.match(await p.waitFor(/writefile/), `-INFO: writefile ${base}.1.log exists, writing ${base}.1-${run}.log, id= 1`)
    await p.waitFor(/disconnect/)
    await p.stop()
    const dump = readFileSync(`${base}.1-${run}.log`, 'utf8')
    t.match(dump, `(${secret.length}):\n${secret}\n`, `run ${run - 1}: its own file`)
    t.equal(dump.match(/^--- CLIENT .*\(\d+\):$/gm)?.length, 2, 'one connection in it: its data, then its EOF')
  }
  t.equal(readFileSync(`${base}.1.log`, 'utf8'), '', 'the planted file got nothing')
})
