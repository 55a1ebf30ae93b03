/**
 * The exposition is read back by the official Python client's parser
 * (test/fixtures/prom-parse.py), not by a regex: what it accepts, Prometheus
 * accepts.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Counters, DURATION_BUCKETS } from '../../lib/stats/counters.js'
import { CONTENT_TYPE, escapeLabel, formatValue, renderPrometheus } from '../../lib/stats/prometheus.js'

const PARSE = fileURLToPath(new URL('../fixtures/prom-parse.py', import.meta.url))

interface Family {
  name: string
  type: string
  help: string
  samples: { name: string; labels: Record<string, string>; value: number | string }[]
}

/** A python3 that has prometheus_client: the one on PATH, else Debian's (pyenv shadows it on some machines). */
const PYTHON = ['python3', '/usr/bin/python3'].find(p => spawnSync(p, ['-c', 'import prometheus_client']).status === 0)

function parse(text: string): { families: Family[] | null; stderr: string } {
  const r = spawnSync(PYTHON as string, [PARSE], { input: text, encoding: 'utf8', timeout: 20000 })
  return { families: r.status === 0 ? (JSON.parse(r.stdout) as Family[]) : null, stderr: r.stderr }
}

const skip = PYTHON === undefined ? 'python3-prometheus-client is not installed' : false

function sample(families: Family[], family: string, name: string, labels: Record<string, string>): number | string | undefined {
  const f = families.find(f => f.name === family)
  return f?.samples.find(s => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value
}

t.test('the exposition parses, with the right families, types, labels and values', { skip }, async t => {
  const c = new Counters()
  const svc = '0.0.0.0:8080'
  const srv = '[2001:db8::1]:80'
  c.accepted(svc)
  c.connected(svc, srv, 1)
  c.relayEnded(svc, srv, 1500, 200)
  c.closed(svc, 0.25)
  c.accepted(svc)
  c.denied(svc, 'max-connections')
  c.closed(svc, 7200)
  c.connectFailed(svc, 'down.example:81', 2)
  c.accepted('127.0.0.1:25')
  const text = renderPrometheus(c.snapshot(), { residentMemoryBytes: 5e7, cpuSecondsTotal: 1.25, openFds: 12, startTimeSeconds: 1764763200 })
  const { families, stderr } = parse(text)
  t.equal(stderr, '')
  const f = families as Family[]
  const types = Object.fromEntries(f.map(x => [x.name, x.type]))
  t.same(types, {
    tcpproxy_connections_active: 'gauge',
    tcpproxy_connections: 'counter',
    tcpproxy_denied: 'counter',
    tcpproxy_connection_duration_seconds: 'histogram',
    tcpproxy_upstream_connections_active: 'gauge',
    tcpproxy_upstream_connections: 'counter',
    tcpproxy_received_bytes: 'counter',
    tcpproxy_sent_bytes: 'counter',
    tcpproxy_upstream_connect_failures: 'counter',
    tcpproxy_upstream_up: 'gauge',
    process_resident_memory_bytes: 'gauge',
    process_cpu_seconds: 'counter',
    process_open_fds: 'gauge',
    process_start_time_seconds: 'gauge',
  })
  t.equal(sample(f, 'tcpproxy_connections', 'tcpproxy_connections_total', { service: svc }), 2)
  t.equal(sample(f, 'tcpproxy_connections', 'tcpproxy_connections_total', { service: '127.0.0.1:25' }), 1)
  t.equal(sample(f, 'tcpproxy_connections_active', 'tcpproxy_connections_active', { service: svc }), 0)
  t.equal(sample(f, 'tcpproxy_denied', 'tcpproxy_denied_total', { service: svc, reason: 'max-connections' }), 1)
  t.equal(sample(f, 'tcpproxy_received_bytes', 'tcpproxy_received_bytes_total', { service: svc, server: srv }), 1500)
  t.equal(sample(f, 'tcpproxy_sent_bytes', 'tcpproxy_sent_bytes_total', { service: svc, server: srv }), 200)
  t.equal(sample(f, 'tcpproxy_upstream_connections', 'tcpproxy_upstream_connections_total', { service: svc, server: srv }), 1)
  t.equal(sample(f, 'tcpproxy_upstream_connect_failures', 'tcpproxy_upstream_connect_failures_total', { service: svc, server: 'down.example:81' }), 1)
  t.equal(sample(f, 'tcpproxy_upstream_up', 'tcpproxy_upstream_up', { service: svc, server: srv }), 1)
  t.equal(sample(f, 'tcpproxy_upstream_up', 'tcpproxy_upstream_up', { service: svc, server: 'down.example:81' }), 0)
  t.equal(sample(f, 'process_cpu_seconds', 'process_cpu_seconds_total', {}), 1.25)
  t.equal(sample(f, 'process_open_fds', 'process_open_fds', {}), 12)

  const h = 'tcpproxy_connection_duration_seconds'
  const buckets = (f.find(x => x.name === h) as Family).samples.filter(s => s.name === `${h}_bucket` && s.labels['service'] === svc)
  t.same(
    buckets.map(b => b.labels['le']),
    [...DURATION_BUCKETS.map(formatValue), '+Inf'],
  )
  t.same(
    buckets.map(b => b.value),
    [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2],
    'cumulative: 0.25 s in le=0.5 and up, 7200 s in le=14400 and +Inf',
  )
  t.equal(sample(f, h, `${h}_sum`, { service: svc }), 7200.25)
  t.equal(sample(f, h, `${h}_count`, { service: svc }), 2)
})

t.test('label values with backslashes, quotes and newlines survive a real parser', { skip }, async t => {
  const c = new Counters()
  const nasty = 'a\\b"c\nd}{,=\u00e9'
  c.denied('x', nasty)
  const { families, stderr } = parse(renderPrometheus(c.snapshot()))
  t.equal(stderr, '')
  t.equal(sample(families as Family[], 'tcpproxy_denied', 'tcpproxy_denied_total', { service: 'x', reason: nasty }), 1)
})

t.test('an empty snapshot still declares every tcpproxy family, and no process figures unless given', async t => {
  const text = renderPrometheus({ services: {} })
  t.equal(text.match(/^# TYPE /gm)?.length, 10)
  t.notMatch(text, /process_/)
  t.match(renderPrometheus({ services: {} }, { openFds: 3 }), /^process_open_fds 3$/m)
  t.equal(CONTENT_TYPE, 'text/plain; version=0.0.4; charset=utf-8')
})

t.test('services and servers come out sorted; a server never tried has no up sample', async t => {
  const c = new Counters()
  for (const s of ['b:2', 'a:1', 'c:3']) {
    c.accepted(s)
    for (const u of ['z:9', 'y:8']) c.connected(s, u, 1)
  }
  const snap = c.snapshot()
  snap.services['a:1']!.servers['y:8']!.up = null
  const text = renderPrometheus(snap)
  const lines = text.split('\n').filter(l => l.startsWith('tcpproxy_upstream_up{'))
  t.same(lines, [
    'tcpproxy_upstream_up{service="a:1",server="z:9"} 1',
    'tcpproxy_upstream_up{service="b:2",server="y:8"} 1',
    'tcpproxy_upstream_up{service="b:2",server="z:9"} 1',
    'tcpproxy_upstream_up{service="c:3",server="y:8"} 1',
    'tcpproxy_upstream_up{service="c:3",server="z:9"} 1',
  ])
})

t.test('a parser can fail: a broken exposition is refused', { skip }, async t => {
  const { families, stderr } = parse('tcpproxy_x{service="a} 1\n')
  t.equal(families, null)
  t.match(stderr, /parse error/)
})

t.test('values and label escapes', async t => {
  t.equal(formatValue(Infinity), '+Inf')
  t.equal(formatValue(-Infinity), '-Inf')
  t.equal(formatValue(NaN), 'NaN')
  t.equal(formatValue(0.005), '0.005')
  t.equal(formatValue(1e21), '1e+21')
  t.equal(escapeLabel('a\\"\n'), 'a\\\\\\"\\n')
})
