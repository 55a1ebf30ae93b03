/**
 * The aggregated counters (lib/stats/counters.ts) in the Prometheus text
 * exposition format 0.0.4, for `GET /metrics` (Content-Type
 * `text/plain; version=0.0.4; charset=utf-8`). Names follow HAProxy's and
 * Envoy's exporters: `tcpproxy_` prefix, `_total` on counters, base units
 * (bytes, seconds). Pure: the process figures are passed in.
 *
 * Every tcpproxy family is written with its HELP and TYPE even without
 * samples, so a scraper sees the same set of families from the start.
 * Services and servers come out sorted, so two scrapes are comparable.
 */
import { DURATION_BUCKETS, sortedEntries, type Snapshot } from './counters.js'

/** Process figures, as the official clients name them; the caller measures them (a missing one is left out). */
export interface ProcessMetrics {
  residentMemoryBytes?: number
  cpuSecondsTotal?: number
  openFds?: number
  startTimeSeconds?: number
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

type Labels = Record<string, string>
type Sample = { suffix?: string; labels: Labels; value: number }

/** A label value: backslash, double quote and newline escaped, as the format requires. */
export function escapeLabel(value: string): string {
  return value.replace(/[\\"\n]/g, c => (c === '\n' ? '\\n' : `\\${c}`))
}

/** A sample value: Go's float syntax for the infinities and NaN, the shortest exact decimal otherwise. */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN'
  if (n === Infinity) return '+Inf'
  if (n === -Infinity) return '-Inf'
  return String(n)
}

/** One family; `help` is this module's own text, with nothing the format would need escaped. */
function family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string, samples: readonly Sample[]): string {
  let out = `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`
  for (const s of samples) {
    const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    const braces = labels.length === 0 ? '' : `{${labels.join(',')}}`
    out += `${name}${s.suffix ?? ''}${braces} ${formatValue(s.value)}\n`
  }
  return out
}


/** The exposition of `snapshot` (and the process figures); ends with a newline. */
export function renderPrometheus(snapshot: Snapshot, proc: ProcessMetrics = {}): string {
  const services = sortedEntries(snapshot.services)
  const perService = (value: (s: Snapshot['services'][string]) => number): Sample[] =>
    services.map(([service, s]) => ({ labels: { service }, value: value(s) }))
  const servers = services.flatMap(([service, s]) => sortedEntries(s.servers).map(([server, u]) => ({ labels: { service, server }, u })))
  const perServer = (value: (u: (typeof servers)[number]['u']) => number): Sample[] => servers.map(({ labels, u }) => ({ labels, value: value(u) }))

  const histogram: Sample[] = services.flatMap(([service, s]) => {
    let cumulative = 0
    const buckets = s.duration.counts.map((n, i) => {
      cumulative += n
      const le = i < DURATION_BUCKETS.length ? formatValue(DURATION_BUCKETS[i]!) : '+Inf'
      return { suffix: '_bucket', labels: { service, le }, value: cumulative }
    })
    return [...buckets, { suffix: '_sum', labels: { service }, value: s.duration.sumMicros / 1e6 }, { suffix: '_count', labels: { service }, value: cumulative }]
  })

  const parts = [
    family('tcpproxy_connections_active', 'gauge', 'Client connections open now.', perService(s => s.active)),
    family('tcpproxy_connections_total', 'counter', 'Client connections accepted.', perService(s => s.connections)),
    family(
      'tcpproxy_denied_total',
      'counter',
      'Client connections refused before relaying, by reason.',
      services.flatMap(([service, s]) => sortedEntries(s.denied).map(([reason, n]) => ({ labels: { service, reason }, value: n }))),
    ),
    family('tcpproxy_connection_duration_seconds', 'histogram', 'How long client connections lasted.', histogram),
    family('tcpproxy_upstream_connections_active', 'gauge', 'Sessions relayed to the server open now.', perServer(u => u.active)),
    family('tcpproxy_upstream_connections_total', 'counter', 'Sessions relayed to the server.', perServer(u => u.connections)),
    family('tcpproxy_received_bytes_total', 'counter', 'Bytes received from the server (sent on to the client).', perServer(u => u.received)),
    family('tcpproxy_sent_bytes_total', 'counter', 'Bytes sent to the server (received from the client).', perServer(u => u.sent)),
    family('tcpproxy_upstream_connect_failures_total', 'counter', 'Connects to the server that failed.', perServer(u => u.connectFailures)),
    // A server never tried has no sample: nothing is known about it yet.
    family(
      'tcpproxy_upstream_up',
      'gauge',
      'Whether the last connect to the server succeeded (1) or failed (0).',
      servers.flatMap(({ labels, u }) => (u.up === null ? [] : [{ labels, value: u.up.up ? 1 : 0 }])),
    ),
  ]
  const processFamily = (name: string, type: 'counter' | 'gauge', help: string, value: number | undefined): void => {
    if (value !== undefined) parts.push(family(name, type, help, [{ labels: {}, value }]))
  }
  processFamily('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', proc.residentMemoryBytes)
  processFamily('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.', proc.cpuSecondsTotal)
  processFamily('process_open_fds', 'gauge', 'Number of open file descriptors.', proc.openFds)
  processFamily('process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.', proc.startTimeSeconds)
  return parts.join('')
}
