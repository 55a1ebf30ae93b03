// The counting work one relayed connection adds (lib/server/forwarder.ts +
// lib/stats/live.ts), timed in process: accepted, the LiveSession and its
// place in the forwarder's map, connect, relay start and end, closed.
// Usage: node bench/counters-cost.mjs [connections] (build first: npx tsc).
import { Counters } from '../dist/stats/counters.js'
import { LiveSession } from '../dist/stats/live.js'

const n = Number(process.argv[2] ?? 1_000_000)
const counters = new Counters()
const live = new Map()
const handle = { abort() {}, counts: () => ({ received: 0, sent: 0, halfClosed: false }) }
const result = { received: 64, sent: 64, closedBy: 'client', error: null }
function one(id) {
  const key = '127.0.0.1:8025'
  counters.accepted(key)
  const l = new LiveSession(counters, { id, service: key, client: '127.0.0.1', clientPort: 40000, startedMs: performance.now(), state: 'relaying' })
  live.set(id, l)
  l.relaying('127.0.0.1:9000', handle, '127.0.0.1', 40000)
  l.ended(result)
  live.delete(id)
  counters.closed(key, (performance.now() - l.start.startedMs) / 1000)
}
for (let i = 0; i < 100_000; i++) one(i) // warm-up
const t0 = process.hrtime.bigint()
for (let i = 0; i < n; i++) one(i)
const ns = Number(process.hrtime.bigint() - t0) / n
console.log(`${ns.toFixed(0)} ns per connection (${n} connections)`)
