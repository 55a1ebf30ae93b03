/**
 * End to end: the supervisor under reloads it cannot serve, workers that die
 * in a hand-over, and fuser -k (issue 13, items 6, 9, 10). Started as root,
 * so the supervisor and worker path is the real one.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BIN, alive, backend, children, echoAfterEnd, exchange, freePort, startProxy, tcpproxy, waitGone } from '../fixtures/harness.js'

const root = process.getuid?.() === 0
const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))
/** Two services whose interfaces mean the same address on one port: the worker's selection refuses them. */
const conflicting = (port: number, server: number): string =>
  `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${server}\n\nport ${port}\ninterface localhost\nserver 127.0.0.1:${server}\n`
const conflictLine = (conf: string, port: number): string =>
  `${conf}:6: interfaces "127.0.0.1" and "localhost" both mean 127.0.0.1 on port ${port}`

t.test('interfaces that mean one address on one port: --check, the start and a reload refuse the file alike', async t => {
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const dir = t.testdir({})
  const conf = join(dir, 'c.conf')
  const port = await freePort()
  writeFileSync(conf, conflicting(port, up.port))
  const check = spawnSync(process.execPath, [BIN, '--check', '-c', conf], { encoding: 'utf8' })
  t.equal(check.status, 2, '--check refuses it')
  t.equal(check.stderr, `tcpproxy: ${conflictLine(conf, port)}\n`)
  const start = tcpproxy(['-d', '-c', conf])
  t.equal(await start.exited, 2, 'so does the start')
  t.same(start.lines, [`tcpproxy: ${conflictLine(conf, port)}`])

  const p = await startProxy(port => {
    writeFileSync(conf, `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${up.port}\n`)
    return ['-d', '-c', conf]
  })
  t.teardown(p.stop)
  const workers = children(p.proc.pid as number)
  writeFileSync(conf, conflicting(p.port, up.port))
  p.proc.kill('SIGHUP')
  t.match(await p.waitFor(/reload failed/), `-ERR: reload failed, keeping the old configuration: ${conflictLine(conf, p.port)}`)
  await sleep(300)
  t.same(children(p.proc.pid as number), workers, 'no worker was touched')
  t.notOk(p.lines.some(l => /worker process ended|reloaded/.test(l)))
  t.equal((await exchange(p.port, 'kept')).data.toString(), 'kept', 'the old configuration serves')
})

t.test('a worker that dies in the middle of a reload\'s hand-over: the supervisor lives, the bookkeeping stays true', { skip: root ? false : 'needs root' }, async t => {
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const dir = t.testdir({})
  const conf = join(dir, 'c.conf')
  const service = (port: number): string => `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${up.port}\n\n`
  const p = await startProxy(port => {
    writeFileSync(conf, service(port))
    return ['-d', '-c', conf]
  })
  t.teardown(p.stop)
  const [worker] = children(p.proc.pid as number) as [number]
  // Many new ports: their hand-over takes long enough to be interrupted.
  const ports = new Set<number>()
  for (let i = 0; i < 200 && ports.size < 60; i++) {
    const port = await freePort()
    if (port !== p.port) ports.add(port)
  }
  const extra = [...ports]
  writeFileSync(conf, service(p.port) + extra.map(service).join(''))
  p.proc.kill('SIGHUP')
  await p.waitFor(new RegExp(`^tcpproxy\\[${worker}\\]: bound to 127\\.0\\.0\\.1:${extra[0]}$`))
  process.kill(worker, 'SIGKILL')
  await p.waitFor(/worker process ended \(SIGKILL\)/)
  // The reload goes through all the same; the replacement gets every listener.
  await p.waitFor(/reloaded .*: 61 service\(s\)/)
  for (let i = 0; i < 200 && p.lines.filter(l => new RegExp(`bound to 127\\.0\\.0\\.1:${extra.at(-1)}$`).test(l)).length < 2; i++) await sleep(25)
  t.ok(alive(p.proc.pid as number), 'the supervisor survived')
  for (const port of [p.port, extra[0] as number, extra.at(-1) as number]) t.equal((await exchange(port, `via ${port}`)).data.toString(), `via ${port}`)
  // Removing and adding the ports again works: nothing is left bound behind our back.
  writeFileSync(conf, service(p.port))
  p.proc.kill('SIGHUP')
  await p.waitFor(/reloaded .*: 1 service\(s\)/)
  t.match((await exchange(extra[0] as number, 'x')).error, { code: 'ECONNREFUSED' })
  writeFileSync(conf, service(p.port) + service(extra[0] as number))
  p.proc.kill('SIGHUP')
  await p.waitFor(/reloaded .*: 2 service\(s\)/)
  t.notOk(p.lines.some(l => /EADDRINUSE|reload failed|cannot start/.test(l)), p.lines.filter(l => /ERR/.test(l)).join('\n'))
  t.equal((await exchange(extra[0] as number, 'back')).data.toString(), 'back')
})

t.test('fuser -k -n tcp $(tcpproxy -z -c FILE) stops the service: supervisor and worker', { skip: spawnSync('fuser', ['-V']).error ? 'fuser is not installed (apt-get install psmisc)' : !root ? 'needs root' : false }, async t => {
  const dir = t.testdir({})
  const conf = join(dir, 'c.conf')
  const p = await startProxy(port => {
    writeFileSync(conf, `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:9\n`)
    return ['-d', '-c', conf]
  })
  t.teardown(p.stop)
  const [worker] = children(p.proc.pid as number) as [number]
  const z = spawnSync(process.execPath, [BIN, '-z', '-c', conf], { encoding: 'utf8' })
  const f = spawnSync('fuser', ['-k', '-n', 'tcp', ...z.stdout.trim().split('\n')], { encoding: 'utf8' })
  t.equal(f.status, 0)
  t.match(f.stdout, new RegExp(`\\b${p.proc.pid}\\b`), 'the supervisor holds the port')
  t.match(f.stdout, new RegExp(`\\b${worker}\\b`), 'and the worker')
  t.equal(await p.exited, 'SIGKILL')
  t.ok(await waitGone(worker))
  // A killed process is a zombie (what waitGone waits for) before its last
  // threads have exited and closed its descriptors: a connect meanwhile is
  // reset by the listener's close. Until then, try again.
  let after = await exchange(p.port, 'x')
  for (let i = 0; i < 40 && (after.error as NodeJS.ErrnoException | null)?.code === 'ECONNRESET'; i++) {
    await sleep(50)
    after = await exchange(p.port, 'x')
  }
  // Refused; unless, on a busy machine, another test's process was given the
  // freed port meanwhile: then it is at least not ours.
  const owners = spawnSync('fuser', ['-n', 'tcp', String(p.port)], { encoding: 'utf8' }).stdout.trim().split(/\s+/).filter(w => w !== '')
  if (owners.length === 0) t.match(after.error, { code: 'ECONNREFUSED' }, `the service is stopped (${after.error?.message}, ${after.data.toString()})`)
  const ours = owners.filter(pid => {
    try {
      return /tcpproxy|worker-main/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))
    } catch {
      return false
    }
  })
  t.same(ours, [], `no tcpproxy process holds the port (holders: ${owners.join(' ') || 'none'})`)
})
