/**
 * End to end: faults around a running daemon. In each, the daemon keeps
 * serving everything else and says what happened in one log line.
 * (Out of descriptors under `ulimit -n` is in test/e2e/forward.test.ts, an
 * unwritable -w directory in test/e2e/programs.test.ts, a hanging or crashing
 * ACP in test/e2e/programs.test.ts, resets in test/e2e/relay.test.ts.)
 *
 * Started as root (as here and in CI), tcpproxy serves from a worker that
 * runs as nobody; these tests also check through /proc that no relay,
 * handler or ACP runs as root.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  alive,
  backend,
  children,
  descendants,
  echoAfterEnd,
  exchange,
  fixture,
  freePort,
  procStatus,
  startProxy,
  syslogReceiver,
  tcpproxy,
  waitGone,
} from '../fixtures/harness.js'

const root = process.getuid?.() === 0
const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))
const NOBODY = Number(readFileSync('/etc/passwd', 'utf8').split('\n').find(l => l.startsWith('nobody:'))?.split(':')[2])

/** Why a privileged set-up cannot be done here (a reason to skip), or false when it can. */
function cannot(probe: () => ReturnType<typeof spawnSync>): string | false {
  if (!root) return 'needs root'
  const r = probe()
  return r.status === 0 ? false : `not permitted here: ${String(r.stderr).trim() || r.error?.message}`
}
const probeDir = mkdtempSync(join(tmpdir(), 'tpx-probe-'))
const noTmpfs = cannot(() => {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', probeDir])
  spawnSync('umount', [probeDir])
  return r
})
rmSync(probeDir, { recursive: true, force: true })
/** An address of our own on lo, that a test can take away (no dummy interfaces in every kernel). */
const LOST_ADDR = `10.254.${process.pid % 250}.${1 + (process.pid % 200)}`
const noAddr = cannot(() => {
  const r = spawnSync('ip', ['addr', 'add', `${LOST_ADDR}/32`, 'dev', 'lo'])
  spawnSync('ip', ['addr', 'del', `${LOST_ADDR}/32`, 'dev', 'lo'])
  return r
})

/** Poll until `f` gives a value (5 s at most). */
async function until<T>(f: () => T | undefined): Promise<T | undefined> {
  for (let i = 0; i < 200; i++) {
    const v = f()
    if (v !== undefined) return v
    await sleep(25)
  }
  return undefined
}

t.test('an upstream process killed mid-transfer: the client sees the end, the next connection fails over', async t => {
  // The upstream is its own process, so it can be killed outright.
  const script = `
    const s = require('net').createServer(c => {
      c.on('error', () => {})
      const tick = setInterval(() => c.write(Buffer.alloc(4096, 0x61)), 5)
      c.on('close', () => clearInterval(tick))
    }).listen(0, '127.0.0.1', () => console.log(s.address().port))`
  const victim = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] })
  t.teardown(() => victim.kill('SIGKILL'))
  const victimPort = Number((await once(victim.stdout, 'data'))[0].toString())
  const live = await backend(echoAfterEnd)
  t.teardown(() => live.close())
  const p = await startProxy(port => ['-d', '-b', `127.0.0.1:${port}`, `127.0.0.1:${victimPort}, 127.0.0.1:${live.port}`])
  t.teardown(p.stop)

  const c = connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true })
  let got = 0
  c.on('data', d => (got += d.length))
  c.on('error', () => {})
  c.on('end', () => c.end())
  await until(() => (got >= 64 * 1024 ? true : undefined))
  victim.kill('SIGKILL')
  const closed = await Promise.race([once(c, 'close').then(() => true), sleep(5000).then(() => false)])
  t.ok(closed, 'the client connection ends when its upstream dies')
  const end = await p.waitFor(/disconnect:.*id= 1$/)
  t.match(end, /\+OK: disconnect: client= 127\.0\.0\.1, server= 127\.0\.0\.1:\d+, received= \d+, send= 0, duration= [\d.]+, closed-by= server(-error)?, id= 1$/)
  t.equal(p.lines.filter(l => /id= 1$/.test(l) && /disconnect|close\(\) detected/.test(l)).length <= 2, true, 'one end line (and at most the reset it saw)')

  const r = await exchange(p.port, 'still here')
  t.equal(r.data.toString(), 'still here', 'the next connection goes to the next server of the list')
  t.match(await p.waitFor(/can't connect to server.*id= 2$/), `-INFO: can't connect to server 127.0.0.1:${victimPort}, error= connect ECONNREFUSED`)
})

t.test('a handler killed by a signal is logged with the signal; it ran as nobody; the next connection is served', async t => {
  // --grace: the second handler is still asleep when the test stops the daemon.
  const p = await startProxy(port => ['-d', '--grace', '0.2', '-b', `127.0.0.1:${port}`, '/bin/sleep', '30'])
  t.teardown(p.stop)
  const c = connect({ port: p.port, host: '127.0.0.1' })
  c.on('error', () => {})
  const closed = once(c, 'close')
  const handler = await until(() => descendants(p.proc.pid as number).find(d => d.argv[0] === '/bin/sleep'))
  t.ok(handler, 'the handler runs')
  if (root) t.same(procStatus(handler?.pid as number, 'Uid'), [NOBODY, NOBODY, NOBODY, NOBODY], 'as nobody: real, effective, saved and fs uid')
  process.kill(handler?.pid as number, 'SIGKILL')
  t.match(await p.waitFor(/handler end/), /-ERR: handler end: client= 127\.0\.0\.1, rc= SIGKILL, duration= [\d.]+, id= 1$/)
  await closed
  t.pass('the client connection closed with its handler')
  const c2 = connect({ port: p.port, host: '127.0.0.1' })
  c2.on('error', () => {})
  t.ok(await p.waitFor(/starting `\/bin\/sleep 30', client= .*, id= 2$/), 'the next connection gets its own handler')
  c2.destroy()
})

t.test('an ACP that floods stderr is stopped and denies, in one bounded log line; ACPs run as nobody', async t => {
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const flood = await startProxy(port => ['-d', '-a', fixture('acp-flood.sh'), '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.teardown(flood.stop)
  const r = await exchange(flood.port, 'x')
  t.equal(r.data.length, 0, 'denied: nothing came back')
  const line = await flood.waitFor(/access denied/)
  t.match(line, /-ERR: access denied: client= 127\.0\.0\.1, rc= too much output, message= x+\.\.\., id= 1$/)
  t.ok(line.length < 700, `the log line is bounded (${line.length} characters for a 1 MiB message)`)
  t.equal(flood.lines.filter(l => /id= 1$/.test(l) && /ERR/.test(l)).length, 1, 'one line')
  t.same(descendants(flood.proc.pid as number).filter(d => /acp-flood|head|tr$/.test(d.argv.join(' '))), [], 'nothing of it is left running')

  const who = await startProxy(port => ['-d', '-a', fixture('acp-uid.sh'), '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.teardown(who.stop)
  await exchange(who.port, null)
  const expected = root ? `uid= ${NOBODY} euid= ${NOBODY}` : `uid= ${process.getuid?.()}`
  t.match(await who.waitFor(/access denied/), `message= ${expected}`, 'the ACP did not run as root')
})

t.test('-w on a full file system: the relay goes on, one line per connection says why the dump stopped', { skip: noTmpfs }, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'tpx-full-'))
  t.teardown(() => {
    spawnSync('umount', [dir])
    rmSync(dir, { recursive: true, force: true })
  })
  t.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16k,mode=1777', 'tmpfs', dir]).status, 0, 'a 16 KiB tmpfs')
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const p = await startProxy(port => ['-d', '-w', join(dir, 'dump'), '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.teardown(p.stop)
  const payload = Buffer.alloc(256 * 1024, 0x41)
  const r = await exchange(p.port, payload)
  t.equal(r.data.length, payload.length, 'every byte relayed although the dump could not be written')
  t.ok(r.data.equals(payload), 'intact')
  t.match(await p.waitFor(/writefile/), new RegExp(`-INFO: can't write writefile: ${dir}/dump\\.1\\.log, error= ENOSPC, id= 1$`))
  t.ok(await p.waitFor(/\+OK: disconnect: .*received= 262144, send= 262144, .*id= 1$/), 'the session ends normally')
  t.equal(p.lines.filter(l => /writefile.*id= 1$/.test(l)).length, 1, 'one line for the connection')
  const again = await exchange(p.port, 'small')
  t.equal(again.data.toString(), 'small', 'the next connection is served')
})

t.test('the syslog socket removed while running: the daemon serves on, its log discarded (its stderr is no longer the caller\'s)', { skip: root ? false : 'needs root' }, async t => {
  const { dir, sock, proc: recv } = await syslogReceiver(t)
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const pidfile = join(dir, 'pid')
  const port = await freePort()
  // In the background: the daemon logs to syslog; once started its stderr is /dev/null.
  const run = tcpproxy(['--syslog-socket', sock, '--pidfile', pidfile, '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.equal(await run.exited, 0)
  const pid = Number(readFileSync(pidfile, 'utf8'))
  t.teardown(async () => {
    process.kill(pid, 'SIGTERM')
    await waitGone(pid)
  })
  const said = run.lines.length
  t.equal((await exchange(port, 'one')).data.toString(), 'one')
  // Gone for good before the next lines: a receiver still dying would take them in.
  const dead = once(recv, 'exit')
  recv.kill('SIGKILL')
  await dead
  unlinkSync(sock)
  t.equal((await exchange(port, 'two')).data.toString(), 'two', 'served without syslog')
  await new Promise(r => setTimeout(r, 500))
  t.equal((await exchange(port, 'three')).data.toString(), 'three')
  const worker = children(pid).find(c => readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('worker-main'))
  t.ok(alive(pid) && worker !== undefined && alive(worker), 'supervisor and worker run on')
  t.equal(run.lines.length, said, 'nothing reached the caller\'s stderr after the start')
})

t.test('the configuration file deleted or replaced by a directory before SIGHUP: the old one stays, one line each', async t => {
  const up = await backend(s => s.end('up\n'))
  t.teardown(() => up.close())
  const dir = t.testdir({})
  const conf = join(dir, 'tcpproxy.conf')
  const p = await startProxy(port => {
    writeFileSync(conf, `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${up.port}\n`)
    return ['-d', '-c', conf]
  })
  t.teardown(p.stop)
  unlinkSync(conf)
  p.proc.kill('SIGHUP')
  t.match(await p.waitFor(/reload failed/), `-ERR: reload failed, keeping the old configuration: cannot read configuration file ${conf}: no such file or directory (ENOENT)`)
  t.equal((await exchange(p.port, null)).data.toString(), 'up\n', 'still served')
  // Root reads any file whatever its mode: a directory is what makes the path unreadable for it.
  mkdirSync(conf)
  p.proc.kill('SIGHUP')
  t.match(await p.waitFor(/reload failed.*EISDIR/), `-ERR: reload failed, keeping the old configuration: cannot read configuration file ${conf}: illegal operation on a directory (EISDIR)`)
  t.equal((await exchange(p.port, null)).data.toString(), 'up\n', 'still served')
  t.equal(p.lines.filter(l => /reload failed/.test(l)).length, 2, 'one line per reload')
})

t.test('a listener address that disappears: the other ports go on; a reload that needs it keeps the old configuration', { skip: noAddr }, async t => {
  const addr = LOST_ADDR
  const ip = (op: 'add' | 'del') => spawnSync('ip', ['addr', op, `${addr}/32`, 'dev', 'lo'])
  t.equal(ip('add').status, 0, `${addr} added to lo`)
  t.teardown(() => void ip('del'))
  const up = await backend(s => s.end(`up ${s.localPort}\n`))
  t.teardown(() => up.close())
  const dir = t.testdir({})
  const conf = join(dir, 'tcpproxy.conf')
  const other = await freePort()
  const extra = await freePort()
  const services = (port: number, more = ''): string =>
    `port ${port}\ninterface ${addr}\nserver 127.0.0.1:${up.port}\nport ${other}\ninterface 127.0.0.1\nserver 127.0.0.1:${up.port}\n${more}`
  const p = await startProxy(port => {
    writeFileSync(conf, services(port))
    return ['-d', '-c', conf]
  }, addr)
  t.teardown(p.stop)
  t.equal((await exchange(p.port, null, { host: addr })).data.toString(), `up ${up.port}\n`, 'served on the address')

  t.equal(ip('del').status, 0, `${addr} taken away`)
  t.equal((await exchange(other, null)).data.toString(), `up ${up.port}\n`, 'the other port is served')
  // A reload keeps the unchanged listener (Linux leaves a socket bound to a removed address alone)...
  p.proc.kill('SIGHUP')
  await p.waitFor(/reloaded .*2 service/)
  // ...but one that has to bind the missing address fails, whole, with one line.
  writeFileSync(conf, services(p.port, `port ${extra}\ninterface ${addr}\nserver 127.0.0.1:${up.port}\n`))
  p.proc.kill('SIGHUP')
  t.match(await p.waitFor(/reload failed/), `-ERR: reload failed, keeping the old configuration: cannot bind ${addr}:${extra}: EADDRNOTAVAIL`)
  t.equal((await exchange(other, null)).data.toString(), `up ${up.port}\n`, 'still served after the failed reload')

  // The address comes back: its listener, never closed, serves again.
  t.equal(ip('add').status, 0, `${addr} back`)
  t.equal((await exchange(p.port, null, { host: addr })).data.toString(), `up ${up.port}\n`, 'served again on the returned address')
})
