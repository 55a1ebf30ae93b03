/**
 * End to end: `--workers N`, N worker processes sharing the listeners under
 * one supervisor. Both serve, a reload reaches both, a dead one is replaced
 * while the other keeps the port served, SIGTERM stops all and removes the
 * pidfile.
 */
import t from 'tap'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { backend, exchange, startProxy, type Run } from '../fixtures/harness.js'

const children = (pid: number): number[] =>
  readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number)

/** The pids that logged `connected` lines from line `from` on. */
const servingPids = (p: Run, from: number): Set<number> =>
  new Set(p.lines.slice(from).flatMap(l => /^tcpproxy\[(\d+)\]: \+INFO: connected on/.exec(l)?.[1] ?? []).map(Number))

/**
 * Bursts of concurrent exchanges until `want` distinct workers have served
 * one (the kernel picks the worker; bounded to 20 bursts); returns the
 * replies and the pids seen.
 */
async function spread(p: Run & { port: number }, want: number): Promise<{ replies: string[]; pids: Set<number> }> {
  const from = p.lines.length
  const replies: string[] = []
  for (let burst = 0; burst < 20 && servingPids(p, from).size < want; burst++) {
    const got = await Promise.all(Array.from({ length: 16 }, () => exchange(p.port, null)))
    replies.push(...got.map(g => g.data.toString()))
    // The lines of this burst are logged by now or in a moment.
    await new Promise(r => setTimeout(r, 50))
  }
  return { replies, pids: servingPids(p, from) }
}

t.test('--workers 2: both workers serve one port; reload, replacement and stop reach every worker', async t => {
  const a = await backend(s => s.end('A\n'))
  const b = await backend(s => s.end('B\n'))
  t.teardown(() => [a, b].forEach(s => s.close()))
  const dir = t.testdir({})
  const conf = join(dir, 'tcpproxy.conf')
  const pidfile = join(dir, 'tcpproxy.pid')
  // -u root: the workers stay who the supervisor is (as they would for a normal user).
  const p = await startProxy(port => {
    writeFileSync(conf, `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${a.port}\n`)
    return ['-d', '-u', 'root', '--workers', '2', '--pidfile', pidfile, '-c', conf]
  })
  t.teardown(p.stop)
  t.equal(readFileSync(pidfile, 'utf8'), `${p.proc.pid}\n`, 'the pidfile holds the supervisor')
  const workers = children(p.proc.pid as number)
  t.equal(workers.length, 2, 'two worker processes')
  for (const w of workers) t.ok(readFileSync(`/proc/${w}/cmdline`, 'utf8').split('\0').includes('--max-semi-space-size=2'), 'with the relay\'s V8 flags (lib/daemon/node-flags.ts)')
  const first = await spread(p, 2)
  t.same([...first.pids].sort(), [...workers].sort(), 'both workers served connections')
  t.ok(first.replies.every(r => r === 'A\n'))

  writeFileSync(conf, `port ${p.port}\ninterface 127.0.0.1\nserver 127.0.0.1:${b.port}\n`)
  p.proc.kill('SIGHUP')
  await p.waitFor(/reloaded/)
  const reloaded = await spread(p, 2)
  t.equal(reloaded.pids.size, 2, 'both workers served after the reload')
  t.ok(reloaded.replies.every(r => r === 'B\n'), 'and both use the new configuration')

  const [dead, survivor] = workers as [number, number]
  process.kill(dead, 'SIGKILL')
  t.match(await p.waitFor(/worker process ended/), '-ERR: worker process ended (SIGKILL), starting a new one')
  t.equal((await exchange(p.port, null)).data.toString(), 'B\n', 'the other worker serves meanwhile')
  // The new worker says "bound to" once it serves the port it was lent.
  for (let i = 0; i < 200 && p.lines.filter(l => l.includes('bound to')).length < 3; i++) await new Promise(r => setTimeout(r, 25))
  const now = children(p.proc.pid as number)
  t.equal(now.length, 2)
  t.ok(now.includes(survivor) && !now.includes(dead), 'the dead worker was replaced, the other kept')
  const replaced = await spread(p, 2)
  t.equal(replaced.pids.size, 2, 'the new worker serves too')
  t.ok(replaced.replies.every(r => r === 'B\n'), 'with the configuration in force')

  t.equal(await p.stop(), 0, 'SIGTERM stops supervisor and workers')
  for (const w of now) t.notOk(existsSync(`/proc/${w}/status`) && !/State:\s+Z/.test(readFileSync(`/proc/${w}/status`, 'utf8')), `worker ${w} is gone`)
  t.notOk(existsSync(pidfile), 'the pidfile is removed')
})
