/**
 * End to end: the process model under signals and a vanishing log reader
 * (issue 13, items 5, 7, 8, 14). No signal but the documented ones acts on a
 * tcpproxy process, none opens a debugger, and the caller's terminal is let
 * go once a background start is reported.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { BIN, ROOT, alive, backend, children, echoAfterEnd, exchange, freePort, startProxy, waitGone } from '../fixtures/harness.js'

const root = process.getuid?.() === 0
const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

/** Whether nothing listens on 127.0.0.1:port. */
async function refused(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const s = connect({ port, host: '127.0.0.1' })
    s.on('connect', () => {
      s.destroy()
      resolve(false)
    })
    s.on('error', e => resolve((e as NodeJS.ErrnoException).code === 'ECONNREFUSED'))
  })
}

for (const model of ['supervisor and worker', 'one process']) t.test(`SIGUSR1 and --inspect in NODE_OPTIONS open no debugger (${model})`, async t => {
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const inspect = await freePort()
  const env = { ...process.env, NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --inspect=127.0.0.1:${inspect}` }
  const p = await startProxy(port => ['-d', ...(model === 'one process' ? ['-u', 'root'] : []), '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`], '127.0.0.1', env)
  t.teardown(p.stop)
  const pids = [p.proc.pid as number, ...children(p.proc.pid as number)]
  t.equal(pids.length, model === 'one process' || !root ? 1 : 2)
  for (const pid of pids.slice(1)) {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    t.notOk(argv.some(a => a.startsWith('--inspect')), 'the worker is given no inspector flag')
    // (Its NODE_OPTIONS cannot be checked here: tap's process hook puts the
    // test's own back into every child. test/daemon/node-flags.test.ts checks that
    // tcpproxy takes the inspector flags out.)
  }
  t.ok(await refused(inspect), 'the inspector NODE_OPTIONS opened is closed')
  for (const pid of pids) process.kill(pid, 'SIGUSR1')
  await sleep(500)
  t.ok(await refused(inspect), 'SIGUSR1 opened no inspector on the --inspect port')
  t.ok(await refused(9229), 'nor on 9229')
  t.ok(pids.every(alive), 'every process runs on')
  t.equal((await exchange(p.port, 'still')).data.toString(), 'still')
  t.notOk(p.lines.some(l => /worker process ended/.test(l)))
})

t.test('a worker ignores the signals that belong to its supervisor: HUP, INT, TERM, USR2', { skip: root ? false : 'needs root' }, async t => {
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const p = await startProxy(port => ['-d', '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.teardown(p.stop)
  const [worker] = children(p.proc.pid as number) as [number]
  // A session open across the signals keeps going.
  const held = connect({ port: p.port, host: '127.0.0.1' })
  let got = ''
  held.on('data', d => (got += d))
  await p.waitFor(/connect:.*id= 1$/)
  for (const signal of ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGUSR2'] as const) process.kill(worker, signal)
  await sleep(500)
  t.ok(alive(worker), 'the worker runs on')
  t.same(children(p.proc.pid as number), [worker], 'and was not replaced')
  held.end('held')
  await Promise.race([once(held, 'close'), sleep(5000)])
  t.equal(got, 'held', 'the open session finished normally')
  t.equal((await exchange(p.port, 'new')).data.toString(), 'new')
  t.notOk(p.lines.some(l => /worker process ended|reloaded|stopping/.test(l)))
  // pkill tcpproxy: TERM to every process stops the service normally.
  process.kill(worker, 'SIGTERM')
  process.kill(p.proc.pid as number, 'SIGTERM')
  t.equal(await Promise.race([p.exited, sleep(15000).then(() => 'still running')]), 0)
  t.ok(await waitGone(worker))
})

t.test('SIGHUP in inetd mode does not cut the connection', async t => {
  const up = await backend(s => {
    s.on('data', () => s.end('late reply'))
    s.on('error', () => {})
  })
  t.teardown(() => up.close())
  const { createServer } = await import('node:net')
  const inetd = createServer({ pauseOnConnect: true })
  inetd.listen(0, '127.0.0.1')
  await once(inetd, 'listening')
  t.teardown(() => inetd.close())
  const child = new Promise<{ code: number | null }>(resolve => {
    inetd.once('connection', s => {
      const c = spawn(process.execPath, [BIN, `127.0.0.1:${up.port}`], { stdio: [s, s, 'pipe'] })
      s.destroy()
      let log = ''
      c.stderr.on('data', d => {
        log += d
        if (/connect:/.test(log)) c.kill('SIGHUP')
      })
      c.on('exit', code => resolve({ code }))
    })
  })
  const client = connect({ port: (inetd.address() as { port: number }).port, host: '127.0.0.1' })
  let got = ''
  client.on('data', d => (got += d))
  const closed = once(client, 'close')
  await sleep(1500)
  client.end('go')
  await closed
  t.equal(got, 'late reply')
  t.equal((await child).code, 0)
})

for (const model of ['supervisor and worker', 'one process']) t.test(`the log reader goes away (-d 2>&1 | head -c1): the proxy keeps serving (${model})`, async t => {
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const port = await freePort()
  const proc = spawn(process.execPath, [BIN, '-d', ...(model === 'one process' ? ['-u', 'root'] : []), '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  t.teardown(() => proc.kill('SIGKILL'))
  let exited: number | string | null = null
  const ended = new Promise<number | string>(resolve => proc.on('exit', (code, signal) => resolve((exited = code ?? (signal as string)))))
  let text = ''
  proc.stderr.on('data', d => (text += d))
  for (let i = 0; i < 200 && !/ready/.test(text); i++) await sleep(25)
  t.match(text, /ready/)
  proc.stderr.destroy()
  // Every exchange logs lines into the closed pipe: EPIPE, in the worker and the supervisor.
  for (let i = 0; i < 5; i++) t.equal((await exchange(port, `round ${i}`)).data.toString(), `round ${i}`)
  // A reload logs in the supervisor too.
  proc.kill('SIGHUP')
  await sleep(500)
  t.equal(exited, null, 'the process runs on')
  t.equal((await exchange(port, 'after')).data.toString(), 'after')
  proc.kill('SIGTERM')
  t.equal(await Promise.race([ended, sleep(15000).then(() => 'still running')]), 0, 'and stops normally')
})

t.test('a background start lets go of the caller\'s stdout and stderr once it is reported', async t => {
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const dir = t.testdir({})
  const pidfile = join(dir, 'pid')
  const port = await freePort()
  const started = Date.now()
  // `$(tcpproxy ...)` and `tcpproxy ... | cat` wait for EOF on both.
  const proc = spawn(process.execPath, [BIN, '--pidfile', pidfile, '--syslog-socket', join(dir, 'no-syslog'), '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let err = ''
  proc.stderr.on('data', d => (err += d))
  const closed = Promise.all([once(proc.stdout, 'close'), once(proc.stderr, 'close')]).then(() => true)
  const eof = await Promise.race([closed, sleep(10000).then(() => false)])
  const pid = Number(readFileSync(pidfile, 'utf8'))
  t.teardown(() => void (alive(pid) && process.kill(pid, 'SIGKILL')))
  t.ok(eof, 'EOF on both within 10 s')
  t.ok(Date.now() - started < 10000)
  t.ok(alive(pid), 'the daemon runs')
  t.match(err, `tcpproxy: no syslog socket at ${join(dir, 'no-syslog')}: the daemon's log is discarded once it has started`, 'where the log goes is said')
  t.equal((await exchange(port, 'daemon')).data.toString(), 'daemon')
  process.kill(pid, 'SIGTERM')
  t.ok(await waitGone(pid))
})
