/**
 * End to end: `--metrics` serves GET /metrics, read by the official
 * Prometheus client's parser (test/fixtures/prom-parse.py), with one
 * process, a root supervisor and `--workers 2`; counters add up over the
 * workers and never go down when a worker dies or the configuration is
 * reloaded.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { backend, children, exchange, freePort, startProxy, tcpproxy } from '../fixtures/harness.js'

const PARSE = fileURLToPath(new URL('../fixtures/prom-parse.py', import.meta.url))
const PYTHON = ['python3', '/usr/bin/python3'].find(p => spawnSync(p, ['-c', 'import prometheus_client']).status === 0)
const skip = PYTHON === undefined ? 'python3-prometheus-client is not installed' : false

interface Sample {
  name: string
  labels: Record<string, string>
  value: number | string
}

async function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, method }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', c => (body += c))
      res.on('end', () => resolve({ status: res.statusCode as number, type: res.headers['content-type'] as string, body }))
    })
      .on('error', reject)
      .end()
  })
}

/** Every sample of a scrape, through the real parser. */
async function scrape(port: number): Promise<Sample[]> {
  const r = await get(port, '/metrics')
  const parsed = spawnSync(PYTHON as string, [PARSE], { input: r.body, encoding: 'utf8', timeout: 20000 })
  if (parsed.status !== 0) throw new Error(parsed.stderr)
  return (JSON.parse(parsed.stdout) as { samples: Sample[] }[]).flatMap(f => f.samples)
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}): number =>
  samples
    .filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + (s.value as number), 0)

/** Scrape until `ok` holds (workers ship at most once a second); bounded to 10 s. */
async function scrapeUntil(port: number, ok: (s: Sample[]) => boolean): Promise<Sample[]> {
  let s = await scrape(port)
  for (let i = 0; i < 100 && !ok(s); i++) {
    await new Promise(r => setTimeout(r, 100))
    s = await scrape(port)
  }
  return s
}

for (const mode of [
  { name: 'one process', args: ['-u', 'root'] },
  { name: 'a root supervisor', args: [] },
  { name: '--workers 2', args: ['-u', 'root', '--workers', '2'] },
]) {
  t.test(`${mode.name}: counters, bytes, failures, durations and process figures, parsed by prometheus_client`, { skip }, async t => {
    const up = await backend(s => s.on('error', () => {}).end('hello\n'))
    t.teardown(() => up.close())
    const dead = await freePort()
    const mport = await freePort()
    // --max-fails 0: every connection tries the dead server first, so each failure is counted (with
    // the default, the first marks it down and the others skip it: test/e2e/upstreams.test.ts).
    const p = await startProxy(port => ['--foreground', '--metrics', `127.0.0.1:${mport}`, '--max-fails', '0', ...mode.args, '-b', `127.0.0.1:${port}`, `127.0.0.1:${dead},127.0.0.1:${up.port}`])
    t.teardown(p.stop)
    for (let i = 0; i < 4; i++) t.equal((await exchange(p.port, 'hi')).data.toString(), 'hello\n')
    const service = `127.0.0.1:${p.port}`
    const s = await scrapeUntil(mport, s => value(s, 'tcpproxy_connections_total') >= 4 && value(s, 'tcpproxy_connections_active') === 0)
    t.equal(value(s, 'tcpproxy_connections_total', { service }), 4)
    t.equal(value(s, 'tcpproxy_connections_active', { service }), 0)
    t.equal(value(s, 'tcpproxy_received_bytes_total', { service, server: `127.0.0.1:${up.port}` }), 24)
    t.equal(value(s, 'tcpproxy_sent_bytes_total', { service }), 8)
    t.equal(value(s, 'tcpproxy_upstream_connect_failures_total', { service, server: `127.0.0.1:${dead}` }), 4)
    t.equal(value(s, 'tcpproxy_upstream_up', { server: `127.0.0.1:${dead}` }), 0)
    t.equal(value(s, 'tcpproxy_upstream_up', { server: `127.0.0.1:${up.port}` }), 1)
    t.equal(value(s, 'tcpproxy_connection_duration_seconds_count', { service }), 4)
    t.ok(value(s, 'process_resident_memory_bytes') > 10e6, 'memory of every process')
    t.ok(value(s, 'process_open_fds') > 0)
    t.ok(value(s, 'process_start_time_seconds') > 1.6e9)
    const other = await get(mport, '/')
    t.equal(other.status, 404, 'other paths: 404')
    t.equal((await get(mport, '/metrics', 'POST')).status, 405)
    const head = await get(mport, '/metrics?x=1', 'HEAD')
    t.same([head.status, head.type, head.body], [200, 'text/plain; version=0.0.4; charset=utf-8', ''])
  })
}

t.test('--workers 2: counters do not go down when a worker dies or on a reload', { skip }, async t => {
  const up = await backend(s => s.on('error', () => {}).end('hello\n'))
  t.teardown(() => up.close())
  const mport = await freePort()
  const dir = t.testdir({})
  const conf = join(dir, 'tcpproxy.conf')
  const p = await startProxy(port => {
    writeFileSync(conf, `metrics 127.0.0.1:${mport}\nport ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:${up.port}\n`)
    return ['--foreground', '-u', 'root', '--workers', '2', '-c', conf]
  })
  t.teardown(p.stop)
  for (let i = 0; i < 16; i++) await exchange(p.port, null)
  const total = (s: Sample[]): number => value(s, 'tcpproxy_connections_total')
  let s = await scrapeUntil(mport, s => total(s) === 16)
  t.equal(total(s), 16)
  const before = value(s, 'tcpproxy_received_bytes_total')
  const [victim] = children(p.proc.pid as number)
  const bound = (): number => p.lines.filter(l => /bound to/.test(l)).length
  const boundBefore = bound()
  process.kill(victim as number, 'SIGKILL')
  await p.waitFor(/worker process ended/)
  s = await scrape(mport)
  t.equal(total(s), 16, 'the dead worker\'s counts are kept')
  t.equal(value(s, 'tcpproxy_received_bytes_total'), before)
  // Its replacement serves (bound to the port it is handed) before the reload.
  for (let i = 0; i < 150 && bound() === boundBefore; i++) await new Promise(r => setTimeout(r, 100))
  p.proc.kill('SIGHUP')
  await p.waitFor(/reloaded/)
  for (let i = 0; i < 4; i++) await exchange(p.port, null)
  s = await scrapeUntil(mport, s => total(s) === 20)
  t.equal(total(s), 20, 'counting goes on from there across the reload')
})

t.test('a metrics address that cannot be bound stops the start, naming it', async t => {
  const blocker = await backend(() => {})
  t.teardown(() => blocker.close())
  const pidfile = join(t.testdir({}), 'tcpproxy.pid')
  const run = tcpproxy(['--foreground', '-u', 'root', '--pidfile', pidfile, '--metrics', `127.0.0.1:${blocker.port}`, '-b', `127.0.0.1:${await freePort()}`, '127.0.0.1:9'])
  t.equal(await run.exited, 1)
  t.match(run.lines.join('\n'), `tcpproxy: cannot bind metrics 127.0.0.1:${blocker.port}: EADDRINUSE`)
  t.notOk(existsSync(pidfile), 'no pidfile is left behind')
})
