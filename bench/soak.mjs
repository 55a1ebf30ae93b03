#!/usr/bin/env node
/**
 * Soak test: a bounded, mixed workload against a running tcpproxy daemon,
 * with SIGHUP reloads every few seconds, and an account at the end.
 *
 *   npm run soak -- --minutes 10 [--concurrency 2000] [--reload-every 3] [-- EXTRA TCPPROXY ARGS]
 *
 * Loopback only. Everything is bounded: the run time, the number of
 * connections in flight (--concurrency lanes, each running one connection
 * after another), the size of every transfer, the wait for stragglers.
 *
 * Scenarios, by weight (see SCENARIOS):
 * - client-first: the client sends, half-closes, then the upstream answers
 *   and closes (the original's 1.1.4 half-close).
 * - server-first: the upstream sends and half-closes at once; the client
 *   sends only after it saw the upstream's EOF (half-close toward the client).
 * - both: both directions at once.
 * - slow-reader: a large answer, the client stops reading for a while
 *   (backpressure through the proxy).
 * - client-reset / server-reset: one side resets mid-transfer; the other
 *   side must see its connection end.
 * - idle: nothing moves; the proxy's idle timeout must close it in time.
 * - refused: the upstream port is closed; the proxy must close the client.
 * - handler: /bin/cat as a handler program (the client socket is its stdio).
 * - proxy-acp: a PROXY v1 header with a made-up client, an access control
 *   program (/bin/true), and send-proxy v1 toward the upstream, which checks
 *   that the made-up client arrived.
 * - acp-deny: an access control program that denies (/bin/false).
 *
 * Every byte in either direction is compared with the sender's copy (slices
 * of one random pool), so a lost, duplicated, reordered or corrupted byte is
 * found. A connection refused by the proxy on a port that is configured the
 * whole time counts as a refusal, reloads or not.
 *
 * At the end: the open descriptors (/proc/PID/fd) and RSS (/proc/PID/status)
 * of the supervisor and every worker against their idle level measured after
 * a warm-up, zombie children, and the daemon's exit status after SIGTERM.
 * Exit status 0 when every check passed.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const BIN = fileURLToPath(new URL('../bin/tcpproxy', import.meta.url))

// ---------------------------------------------------------------- options
function parseOptions(argv) {
  const o = { log: null, rate: 300, minutes: 1, concurrency: 3000, reloadEvery: 3, idleTimeout: 4, extra: [], seed: null }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const num = () => {
      const v = Number(argv[++i])
      if (!Number.isFinite(v) || v <= 0) throw new Error(`option ${a}: not a positive number: ${JSON.stringify(argv[i])}`)
      return v
    }
    if (a === '--minutes') o.minutes = num()
    else if (a === '--concurrency') o.concurrency = Math.floor(num())
    else if (a === '--reload-every') o.reloadEvery = num()
    else if (a === '--idle-timeout') o.idleTimeout = num()
    else if (a === '--log') o.log = argv[++i]
    else if (a === '--rate') o.rate = num()
    else if (a === '--') {
      // The rest is tcpproxy's.
      o.extra = argv.slice(i + 1)
      break
    } else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: node bench/soak.mjs [--minutes N] [--concurrency N] [--rate N] [--reload-every S] [--idle-timeout S] [--log FILE] [-- tcpproxy args]\n')
      process.exit(0)
    } else throw new Error(`unknown option ${a}`)
  }
  // Bounds: a soak is long, not unbounded.
  if (o.minutes > 120) throw new Error('option --minutes: at most 120')
  if (o.concurrency > 6000) throw new Error('option --concurrency: at most 6000 (each connection costs 4 descriptors on this host)')
  return o
}
const opts = parseOptions(process.argv.slice(2))

// ---------------------------------------------------------------- data
/** Every byte sent is a slice of this pool; the receiver compares against it. */
const POOL = randomBytes(16 * 1024 * 1024)
const MAX_SLICE = 8 * 1024 * 1024
const offsetOf = (id, salt) => ((id * 2654435761 + salt * 40503) >>> 0) % (POOL.length - MAX_SLICE)

/** A random size: mostly small, sometimes large. */
function randomSize() {
  const r = Math.random()
  if (r < 0.05) return 0
  if (r < 0.6) return Math.floor(Math.random() * 4096)
  if (r < 0.95) return Math.floor(Math.random() * 256 * 1024)
  return Math.floor(Math.random() * 2 * 1024 * 1024)
}

/** Incremental byte-for-byte comparison of a stream against POOL[offset, offset+size). */
class Checker {
  constructor(offset, size) {
    this.offset = offset
    this.size = size
    this.seen = 0
    this.bad = null
  }
  feed(chunk) {
    if (this.bad !== null) return
    if (this.seen + chunk.length > this.size) {
      this.bad = `${this.seen + chunk.length - this.size} bytes more than sent`
      return
    }
    const want = POOL.subarray(this.offset + this.seen, this.offset + this.seen + chunk.length)
    if (!want.equals(chunk)) {
      let k = 0
      while (want[k] === chunk[k]) k++
      this.bad = `byte ${this.seen + k} differs`
    }
    this.seen += chunk.length
  }
  verdict() {
    if (this.bad !== null) return this.bad
    if (this.seen !== this.size) return `${this.size - this.seen} of ${this.size} bytes lost`
    return null
  }
}

// ---------------------------------------------------------------- counters
const stats = {
  started: 0,
  completed: 0,
  failed: 0,
  refused: 0,
  bytesUp: 0,
  bytesDown: 0,
  corrupted: 0,
  lost: 0,
  reloads: 0,
  byScenario: {},
  failures: new Map(),
  maxInFlight: 0,
  connectMax: 0,
  connectSlow: 0,
  loopLagMax: 0,
}
let inFlight = 0
function fail(scenario, why) {
  stats.failed++
  const key = `${scenario}: ${why}`
  stats.failures.set(key, (stats.failures.get(key) ?? 0) + 1)
}

// ---------------------------------------------------------------- upstream
/**
 * The upstream server. Each connection starts (after an optional PROXY v1
 * line) with a 17-byte control header: "SOAK", id u32, mode u8, up u32,
 * down u32. The verdict about what arrived is stored in `upstreamSeen` by id.
 */
const MODES = { clientFirst: 1, serverFirst: 2, serverReset: 3, hold: 4 }
const upstreamSeen = new Map()
const HEADER = 17

function upstreamConnection(s) {
  s.on('error', () => {})
  let buf = Buffer.alloc(0)
  let proxyLine = null
  let st = null
  const onData = chunk => {
    if (st !== null) {
      st.check.feed(chunk)
      return
    }
    buf = Buffer.concat([buf, chunk])
    if (proxyLine === null && buf.length >= 6 && buf.subarray(0, 6).toString() === 'PROXY ') {
      const nl = buf.indexOf('\r\n')
      if (nl < 0) return
      proxyLine = buf.subarray(0, nl).toString()
      buf = buf.subarray(nl + 2)
    }
    if (buf.length < HEADER) return
    if (buf.subarray(0, 4).toString() !== 'SOAK') {
      st = { id: -1 }
      s.destroy()
      return
    }
    const id = buf.readUInt32BE(4)
    const mode = buf[8]
    const up = buf.readUInt32BE(9)
    const down = buf.readUInt32BE(13)
    st = { id, mode, check: new Checker(offsetOf(id, 1), up), proxyLine, ended: false }
    upstreamSeen.set(id, st)
    const rest = buf.subarray(HEADER)
    buf = null
    if (rest.length > 0) st.check.feed(rest)
    const downData = POOL.subarray(offsetOf(id, 2), offsetOf(id, 2) + down)
    if (mode === MODES.serverFirst) s.end(downData)
    else if (mode === MODES.serverReset) {
      s.write(downData.subarray(0, Math.min(down, 1024)))
      setTimeout(() => s.resetAndDestroy(), 20 + Math.random() * 200)
    }
    st.sendOnEnd = mode === MODES.clientFirst ? downData : null
  }
  s.on('data', onData)
  s.on('end', () => {
    if (st === null || st.id < 0) return s.end()
    st.ended = true
    if (st.sendOnEnd !== null) s.end(st.sendOnEnd)
    else s.end()
  })
  s.on('close', () => {
    if (st !== null && st.id >= 0) {
      st.closed = true
      st.onClose?.()
    }
  })
}

/** Resolves when the upstream side of connection `id` has closed (or after `ms`, with false). */
function upstreamClosed(id, ms) {
  return new Promise(resolve => {
    const st = upstreamSeen.get(id)
    if (st?.closed) return resolve(true)
    const timer = setTimeout(() => resolve(false), ms)
    const poll = setInterval(() => {
      const s = upstreamSeen.get(id)
      if (s === undefined) return
      if (s.closed) {
        clearInterval(poll)
        clearTimeout(timer)
        resolve(true)
      }
    }, 50)
    setTimeout(() => clearInterval(poll), ms + 10)
  })
}

// ---------------------------------------------------------------- clients
let nextId = 1
function controlHeader(id, mode, up, down) {
  const h = Buffer.alloc(HEADER)
  h.write('SOAK', 0)
  h.writeUInt32BE(id, 4)
  h[8] = mode
  h.writeUInt32BE(up, 9)
  h.writeUInt32BE(down, 13)
  return h
}

/**
 * One client connection: resolves to { ok, why }. `plan` says what to send,
 * when to end, what to expect back.
 */
function clientConnection(port, plan) {
  return new Promise(resolve => {
    const started = Date.now()
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    let connected = false
    let connectedAt = started
    let error = null
    let gotEnd = false
    const check = plan.expectDown === null ? null : new Checker(plan.expectDown.offset, plan.expectDown.size)
    let received = 0
    const deadline = setTimeout(() => {
      error = new Error('client deadline')
      s.destroy()
    }, plan.deadlineMs)
    s.on('connect', () => {
      connected = true
      connectedAt = Date.now()
      const ms = connectedAt - started
      stats.connectMax = Math.max(stats.connectMax, ms)
      if (ms >= 1000) stats.connectSlow++
      plan.onConnect?.(s)
    })
    s.on('data', chunk => {
      received += chunk.length
      check?.feed(chunk)
      plan.onData?.(s, chunk)
    })
    s.on('end', () => {
      gotEnd = true
      plan.onEnd?.(s)
      // The peer is done; a client with nothing more to say ends too, so the socket closes.
      if (!s.writableEnded) s.end()
    })
    s.on('error', e => (error = e))
    s.on('close', () => {
      clearTimeout(deadline)
      resolve({ connected, error, gotEnd, received, check, ms: Date.now() - started, sinceConnect: Date.now() - connectedAt })
    })
  })
}

function sendAndEnd(s, data, end = true) {
  // write() returning false is fine: the stream queues; backpressure is the proxy's job to respect.
  if (data.length > 0) s.write(data)
  if (end) s.end()
}

/** The scenarios and their weights. Each returns a promise of nothing; failures go to `fail`. */
const SCENARIOS = [
  ['trickle', 20, runStream('trickle')],
  ['client-first', 30, runStream('clientFirst')],
  ['server-first', 12, runStream('serverFirst')],
  ['both', 12, runStream('both')],
  ['slow-reader', 4, runStream('slow')],
  ['client-reset', 6, runClientReset],
  ['server-reset', 6, runServerReset],
  ['idle', 8, runIdle],
  ['refused', 6, runRefused],
  ['handler', 3, runHandler],
  ['proxy-acp', 3, runStream('clientFirst', { proxyHeader: true })],
  ['acp-deny', 2, runDenied],
]
const TOTAL_WEIGHT = SCENARIOS.reduce((n, [, w]) => n + w, 0)
function pickScenario() {
  let r = Math.random() * TOTAL_WEIGHT
  for (const sc of SCENARIOS) if ((r -= sc[1]) < 0) return sc
  return SCENARIOS[0]
}

let ports = null

/**
 * Account for one direction's bytes: all of them must have arrived (or, after
 * a reset, `whole` false, a correct prefix). Returns whether they did.
 */
function judged(name, direction, check, whole = true) {
  const v = whole ? check.verdict() : check.bad
  if (direction === 'up') stats.bytesUp += check.seen
  else stats.bytesDown += check.seen
  if (v === null) return true
  if (/lost/.test(v)) stats.lost++
  else stats.corrupted++
  fail(name, `${direction === 'up' ? 'client->server' : 'server->client'}: ${v}`)
  return false
}

function countRefusal(scenario, r) {
  if (!r.connected && r.error?.code === 'ECONNREFUSED') {
    stats.refused++
    fail(scenario, 'connection refused by the proxy')
    return true
  }
  return false
}

/**
 * A long-lived connection: the data in small pieces, one every 0.2-1.5 s
 * (below the idle timeout), for up to 80 s. These make up most of the
 * connections in flight at any moment.
 */
function trickle(s, data) {
  const pieces = 15 + Math.floor(Math.random() * 40)
  const step = Math.ceil(data.length / pieces) || 1
  let at = 0
  const next = () => {
    if (s.destroyed) return
    if (at >= data.length) return void s.end()
    s.write(data.subarray(at, at + step))
    at += step
    setTimeout(next, 200 + Math.random() * Math.min(1300, opts.idleTimeout * 1000 - 1500))
  }
  next()
}

function runStream(kind, options = {}) {
  return async name => {
    const id = nextId++
    const up = kind === 'trickle' ? Math.floor(Math.random() * 16384) : randomSize()
    const down = kind === 'slow' ? 2 * 1024 * 1024 + Math.floor(Math.random() * 6 * 1024 * 1024) : randomSize()
    const mode = kind === 'serverFirst' || kind === 'both' ? MODES.serverFirst : MODES.clientFirst
    const upData = POOL.subarray(offsetOf(id, 1), offsetOf(id, 1) + up)
    const header = controlHeader(id, mode, up, down)
    const fakeClient = options.proxyHeader ? { ip: `10.${id % 250}.${(id >> 8) % 250}.${(id % 200) + 1}`, port: 1024 + (id % 60000) } : null
    const proxyLine = fakeClient === null ? null : `PROXY TCP4 ${fakeClient.ip} 192.0.2.1 ${fakeClient.port} 25\r\n`
    let paused = false
    const r = await clientConnection(options.proxyHeader ? ports.proxyAcp : ports.stream, {
      expectDown: { offset: offsetOf(id, 2), size: down },
      deadlineMs: kind === 'trickle' ? 120_000 : 60_000,
      onConnect: s => {
        if (proxyLine !== null) s.write(proxyLine)
        s.write(header)
        if (kind === 'serverFirst') return // sends after the upstream's EOF
        if (kind === 'trickle') return trickle(s, upData)
        sendAndEnd(s, upData)
      },
      onEnd: s => {
        if (kind === 'serverFirst') sendAndEnd(s, upData)
      },
      onData: s => {
        if (kind === 'slow' && !paused) {
          paused = true
          s.pause()
          setTimeout(() => s.resume(), 500 + Math.random() * 1500)
        }
      },
    })
    if (countRefusal(name, r)) return
    if (r.error !== null) return fail(name, `client error ${r.error.code ?? r.error.message}`)
    if (!judged(name, 'down', r.check)) return
    if (!(await upstreamClosed(id, 10_000))) return fail(name, 'upstream side never closed')
    const st = upstreamSeen.get(id)
    upstreamSeen.delete(id)
    if (!judged(name, 'up', st.check)) return
    if (fakeClient !== null) {
      const want = `PROXY TCP4 ${fakeClient.ip} 127.0.0.1 ${fakeClient.port} ${ports.proxyAcp}`
      if (st.proxyLine !== want) return fail(name, `upstream got PROXY line ${JSON.stringify(st.proxyLine)}, want ${JSON.stringify(want)}`)
    }
    stats.completed++
  }
}

async function runClientReset(name) {
  const id = nextId++
  const up = 64 * 1024 + Math.floor(Math.random() * 1024 * 1024)
  const upData = POOL.subarray(offsetOf(id, 1), offsetOf(id, 1) + up)
  const r = await clientConnection(ports.stream, {
    expectDown: null,
    deadlineMs: 30_000,
    onConnect: s => {
      s.write(controlHeader(id, MODES.clientFirst, up, 0))
      s.write(upData.subarray(0, Math.floor(up / 3)))
      setTimeout(() => s.resetAndDestroy(), 10 + Math.random() * 100)
    },
  })
  if (countRefusal(name, r)) return
  // The upstream must see its side end (the proxy resets it too), and never more bytes than were sent.
  if (!(await upstreamClosed(id, 10_000))) {
    // The reset may come before the proxy connected upstream: then no upstream connection exists.
    if (!upstreamSeen.has(id)) return void stats.completed++
    return fail(name, 'upstream side not closed after a client reset')
  }
  const st = upstreamSeen.get(id)
  upstreamSeen.delete(id)
  if (judged(name, 'up', st.check, false)) stats.completed++
}

async function runServerReset(name) {
  const id = nextId++
  const down = 4096 + Math.floor(Math.random() * 64 * 1024)
  const r = await clientConnection(ports.stream, {
    expectDown: { offset: offsetOf(id, 2), size: down },
    deadlineMs: 30_000,
    onConnect: s => s.write(controlHeader(id, MODES.serverReset, 0, down)),
  })
  if (countRefusal(name, r)) return
  upstreamSeen.delete(id)
  // The client's side must end (reset passed on), with a correct prefix of what was sent.
  if (r.error?.message === 'client deadline') return fail(name, 'client side not closed after an upstream reset')
  if (judged(name, 'down', r.check, false)) stats.completed++
}

async function runIdle(name) {
  const id = nextId++
  const r = await clientConnection(ports.stream, {
    expectDown: { offset: 0, size: 0 },
    deadlineMs: (opts.idleTimeout + 20) * 1000,
    onConnect: s => s.write(controlHeader(id, MODES.hold, 0, 0)),
  })
  if (countRefusal(name, r)) return
  upstreamSeen.delete(id)
  const lowMs = opts.idleTimeout * 1000 - 300
  const highMs = opts.idleTimeout * 1000 + 10_000
  if (r.error?.message === 'client deadline') return fail(name, 'idle connection never timed out')
  // Measured from the connect: a connect slowed by a full accept queue is counted apart (connectSlow).
  if (r.sinceConnect < lowMs || r.sinceConnect > highMs) return fail(name, `idle connection closed ${r.sinceConnect} ms after its connect (timeout ${opts.idleTimeout} s)`)
  stats.completed++
}

async function runRefused(name) {
  const r = await clientConnection(ports.refused, { expectDown: null, deadlineMs: 20_000, onConnect: s => s.write('hello') })
  if (countRefusal(name, r)) return
  if (r.error?.message === 'client deadline') return fail(name, 'client not closed when the upstream refused')
  if (r.received !== 0) return fail(name, `${r.received} bytes from nowhere`)
  stats.completed++
}

async function runDenied(name) {
  const r = await clientConnection(ports.deny, { expectDown: null, deadlineMs: 20_000, onConnect: s => s.write('hello') })
  if (countRefusal(name, r)) return
  if (r.error?.message === 'client deadline') return fail(name, 'client not closed when the ACP denied')
  if (r.received !== 0) return fail(name, `${r.received} bytes after a denial`)
  stats.completed++
}

async function runHandler(name) {
  const id = nextId++
  const size = Math.floor(Math.random() * 128 * 1024)
  const data = POOL.subarray(offsetOf(id, 3), offsetOf(id, 3) + size)
  const r = await clientConnection(ports.handler, {
    expectDown: { offset: offsetOf(id, 3), size },
    deadlineMs: 30_000,
    onConnect: s => sendAndEnd(s, data),
  })
  if (countRefusal(name, r)) return
  if (r.error !== null) return fail(name, `client error ${r.error.code ?? r.error.message}`)
  // What came back is what /bin/cat read: both directions at once.
  stats.bytesUp += size
  if (judged(name, 'down', r.check)) stats.completed++
}

// ---------------------------------------------------------------- daemon
const dir = mkdtempSync(join(tmpdir(), 'tcpproxy-soak-'))
const confPath = join(dir, 'soak.conf')

async function listenUpstream() {
  const server = createServer({ allowHalfOpen: true }, upstreamConnection)
  server.maxConnections = 20_000
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 })
  await once(server, 'listening')
  return server
}

async function freePort() {
  const s = createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const { port } = s.address()
  await new Promise(r => s.close(r))
  return port
}

/** The configuration; `variant` alternates what each reload changes. */
function config(variant) {
  const p = ports
  const lines = [
    `# soak configuration, variant ${variant}`,
    `timeout ${opts.idleTimeout}`,
    `connect-timeout 5`,
    `port ${p.stream}`,
    `  interface 127.0.0.1`,
    `    server 127.0.0.1:${p.upstream}`,
    `port ${p.refused}`,
    `  interface 127.0.0.1`,
    `    server 127.0.0.1:${p.closed}`,
    `port ${p.handler}`,
    `  interface 127.0.0.1`,
    `    exec /bin/cat`,
    `port ${p.proxyAcp}`,
    `  interface 127.0.0.1`,
    `    server 127.0.0.1:${p.upstream}`,
    `    accept-proxy 127.0.0.0/8`,
    `    send-proxy v1`,
    `    acp /bin/true`,
    `port ${p.deny}`,
    `  interface 127.0.0.1`,
    `    server 127.0.0.1:${p.upstream}`,
    `    acp /bin/false`,
  ]
  // Every other reload adds a listener and changes a setting, the next one takes them away again.
  if (variant % 2 === 1) {
    lines.push(`port ${p.extra}`, `  interface 127.0.0.1`, `    server 127.0.0.1:${p.upstream}`, `    connect-timeout 4`)
  }
  return lines.join('\n') + '\n'
}

function procStatus(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = name => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1] ?? ''
  return { rssKiB: Number(field('VmRSS').split(/\s+/)[0]), state: field('State'), ppid: Number(field('PPid')), uid: field('Uid') }
}
const fdCount = pid => readdirSync(`/proc/${pid}/fd`).length
/** What a process's descriptors point at, for the report when they differ from idle. */
const fdTargets = pid =>
  readdirSync(`/proc/${pid}/fd`).map(fd => {
    try {
      return `${fd}->${readlinkSync(`/proc/${pid}/fd/${fd}`)}`
    } catch {
      return `${fd}->?`
    }
  })
const children = pid => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}
/** The daemon's processes: the one started, and its node children (workers); not logger or programs. */
function daemonProcesses(pid) {
  const workers = children(pid).filter(c => {
    try {
      return /node/.test(readFileSync(`/proc/${c}/cmdline`, 'utf8').split('\0')[0])
    } catch {
      return false
    }
  })
  return [pid, ...workers]
}
function snapshot(pid, detail = false) {
  return daemonProcesses(pid).map(p => ({ pid: p, fds: fdCount(p), ...procStatus(p), ...(detail ? { targets: fdTargets(p) } : {}) }))
}
/** Every zombie among the daemon's descendants. */
function zombies(pid) {
  const out = []
  const walk = p => {
    for (const c of children(p)) {
      try {
        if (/^Z/.test(procStatus(c).state)) out.push(c)
      } catch {
        // gone meanwhile
      }
      walk(c)
    }
  }
  walk(pid)
  return out
}
/** Descendants that are programs (handlers, ACPs) still running. */
function programsRunning(pid) {
  const out = []
  const walk = p => {
    for (const c of children(p)) {
      try {
        const exe = readFileSync(`/proc/${c}/cmdline`, 'utf8').split('\0')[0]
        if (!/node|logger/.test(exe)) out.push(`${c}:${exe}`)
      } catch {
        // gone meanwhile
      }
      walk(c)
    }
  }
  walk(pid)
  return out
}

const sleep = ms => new Promise(r => setTimeout(r, ms))

async function main() {
  const upstream = await listenUpstream()
  const closedPort = await freePort()
  ports = {
    upstream: upstream.address().port,
    closed: closedPort,
    stream: await freePort(),
    refused: await freePort(),
    handler: await freePort(),
    proxyAcp: await freePort(),
    deny: await freePort(),
    extra: await freePort(),
  }
  writeFileSync(confPath, config(0))
  const args = [BIN, '--foreground', '-c', confPath, ...opts.extra]
  console.log(`soak: ${opts.minutes} min, ${opts.concurrency} lanes, at most ${opts.rate} new connections/s, SIGHUP every ${opts.reloadEvery} s, idle timeout ${opts.idleTimeout} s`)
  console.log(`soak: tcpproxy ${args.slice(1).join(' ')}`)
  const daemon = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  // The daemon never outlives its soak, also when the soak is interrupted or times out.
  process.on('exit', () => {
    if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(3))
  const logFile = opts.log === null ? null : createWriteStream(opts.log)
  const log = { lines: 0, tags: {}, errors: new Map(), reloaded: 0, reloadFailed: 0 }
  let tail = ''
  const ready = new Promise((resolve, reject) => {
    daemon.once('exit', code => reject(new Error(`tcpproxy exited (${code}) before it was ready:\n${tail}`)))
    daemon.stderr.on('data', d => {
      tail += d.toString()
      const parts = tail.split('\n')
      tail = parts.pop()
      for (const line of parts) {
        if (logFile !== null) logFile.write(line + '\n')
        log.lines++
        if (/ ready$/.test(line)) resolve()
        const tag = /\]: ([-+][A-Z]+):/.exec(line)?.[1] ?? 'untagged'
        log.tags[tag] = (log.tags[tag] ?? 0) + 1
        if (/reloaded /.test(line)) log.reloaded++
        if (/reload failed/.test(line)) log.reloadFailed++
        if (tag === '-ERR' || tag === 'untagged') {
          // One entry per kind of line: the text without numbers.
          const kind = line.replace(/^[^:]+: /, '').replace(/\d+/g, 'N').slice(0, 160)
          log.errors.set(kind, (log.errors.get(kind) ?? 0) + 1)
        }
      }
    })
  })
  await ready
  const pid = daemon.pid

  // Warm-up: a few of each kind, then the idle level.
  const warm = []
  for (const [name, , run] of SCENARIOS) if (name !== 'idle') for (let i = 0; i < 3; i++) warm.push(run(name))
  await Promise.all(warm)
  await sleep(3000)
  const idle = snapshot(pid, true)
  console.log(`soak: idle level: ${idle.map(p => `pid ${p.pid} fds ${p.fds} rss ${p.rssKiB} KiB uid ${p.uid.split(/\s+/)[0]}`).join('; ')}`)
  for (const k of Object.keys(stats)) if (typeof stats[k] === 'number') stats[k] = 0
  stats.failures.clear()
  log.errors.clear()

  const endAt = Date.now() + opts.minutes * 60_000
  let variant = 0
  const reloader = setInterval(() => {
    variant++
    writeFileSync(confPath, config(variant))
    daemon.kill('SIGHUP')
    stats.reloads++
  }, opts.reloadEvery * 1000)

  let peakProc = idle
  const sampler = setInterval(() => {
    try {
      const now = snapshot(pid)
      if (now.reduce((n, p) => n + p.fds, 0) > peakProc.reduce((n, p) => n + p.fds, 0)) peakProc = now
    } catch {
      // a worker being replaced
    }
  }, 1000)
  const progress = setInterval(() => {
    const left = Math.max(0, Math.round((endAt - Date.now()) / 1000))
    console.log(
      `soak: ${left}s left, in flight ${inFlight}, done ${stats.completed}, failed ${stats.failed}, ` +
        `bytes up ${(stats.bytesUp / 1e6).toFixed(0)} MB down ${(stats.bytesDown / 1e6).toFixed(0)} MB, reloads ${stats.reloads}`,
    )
  }, 30_000)

  // New connections are started at --rate per second at most: the point is a
  // daemon under sustained load, not a saturated accept queue.
  let tokens = 0
  const waiting = []
  const bucket = setInterval(() => {
    tokens = Math.min(opts.rate, tokens + opts.rate / 20)
    while (tokens >= 1 && waiting.length > 0) {
      tokens--
      waiting.shift()()
    }
  }, 50)
  const token = () => new Promise(resolve => waiting.push(resolve))
  const lane = async () => {
    while (Date.now() < endAt) {
      await token()
      if (Date.now() >= endAt) break
      const [name, , run] = pickScenario()
      stats.started++
      stats.byScenario[name] = (stats.byScenario[name] ?? 0) + 1
      inFlight++
      stats.maxInFlight = Math.max(stats.maxInFlight, inFlight)
      try {
        await run(name)
      } catch (err) {
        fail(name, `soak error ${err.message}`)
      } finally {
        inFlight--
      }
    }
  }
  // The load generator's own event-loop lag: a starved generator makes the proxy look slow.
  let lagAt = performance.now()
  const lagTimer = setInterval(() => {
    const now = performance.now()
    stats.loopLagMax = Math.max(stats.loopLagMax, now - lagAt - 100)
    lagAt = now
  }, 100)
  const lanes = Array.from({ length: opts.concurrency }, lane)
  // Lanes still waiting for a token at the end are released.
  setTimeout(() => {
    for (const w of waiting.splice(0)) w()
  }, Math.max(0, endAt - Date.now()) + 100)
  // Stragglers are bounded: a lane's connection has its own deadline (at most 120 s).
  await Promise.race([Promise.all(lanes), sleep(opts.minutes * 60_000 + 150_000)])
  clearInterval(reloader)
  clearInterval(progress)
  clearInterval(sampler)
  clearInterval(lagTimer)
  clearInterval(bucket)
  const lanesLeft = inFlight
  // Back to the starting configuration (the idle level was measured with it).
  if (variant % 2 === 1) {
    const before = log.reloaded
    writeFileSync(confPath, config(0))
    daemon.kill('SIGHUP')
    stats.reloads++
    for (let i = 0; i < 100 && log.reloaded === before; i++) await sleep(100)
  }

  // Back to idle: sessions end, descriptors close. Allow the reload chain and GC some time.
  let after = snapshot(pid)
  const idleFds = idle.reduce((n, p) => n + p.fds, 0)
  for (let i = 0; i < 30 && after.reduce((n, p) => n + p.fds, 0) > idleFds; i++) {
    await sleep(1000)
    after = snapshot(pid)
  }
  await sleep(2000)
  after = snapshot(pid, true)
  const z = zombies(pid)
  const running = programsRunning(pid)

  daemon.kill('SIGTERM')
  const [code, signal] = await Promise.race([once(daemon, 'exit'), sleep(30_000).then(() => [null, 'timeout'])])
  upstream.close()
  rmSync(dir, { recursive: true, force: true })

  // ---------------------------------------------------------------- report
  const totalFds = ps => ps.reduce((n, p) => n + p.fds, 0)
  const checks = [
    ['no connection failed', stats.failed === 0],
    ['zero lost bytes', stats.lost === 0],
    ['zero corrupted bytes', stats.corrupted === 0],
    ['zero refused connections', stats.refused === 0],
    ['every reload applied', log.reloaded === stats.reloads && log.reloadFailed === 0],
    ['descriptors back to idle', totalFds(after) <= totalFds(idle) && after.length === idle.length],
    // RSS: V8 keeps some of the heap it grew; "back" means within 64 MiB of idle per process.
    ['RSS back near idle (+64 MiB)', after.every((p, i) => p.rssKiB <= (idle[i]?.rssKiB ?? 0) + 64 * 1024)],
    ['no zombies', z.length === 0],
    ['no handler or ACP left running', running.length === 0],
    ['clean exit after SIGTERM', code === 0],
    ['no lane left hanging', lanesLeft === 0],
  ]
  const mb = n => (n / 1e6).toFixed(1)
  console.log('\nsoak report')
  console.log(`  command:      npm run soak -- --minutes ${opts.minutes} --concurrency ${opts.concurrency} --rate ${opts.rate}${opts.extra.length ? ' -- ' + opts.extra.join(' ') : ''}`)
  console.log(`  connections:  ${stats.started} started, ${stats.completed} verified, ${stats.failed} failed, at most ${stats.maxInFlight} in flight`)
  console.log(`  by scenario:  ${Object.entries(stats.byScenario).map(([k, v]) => `${k} ${v}`).join(', ')}`)
  console.log(`  bytes:        ${mb(stats.bytesUp)} MB client->server, ${mb(stats.bytesDown)} MB server->client, every byte compared`)
  console.log(`  connects:     slowest ${stats.connectMax} ms, ${stats.connectSlow} took 1 s or more (SYN retried: accept queue full); generator loop lag max ${stats.loopLagMax.toFixed(0)} ms`)
  console.log(`  lost/corrupt: ${stats.lost} / ${stats.corrupted} connections; refused: ${stats.refused}`)
  console.log(`  reloads:      ${stats.reloads} SIGHUP sent, ${log.reloaded} logged as reloaded, ${log.reloadFailed} failed`)
  for (const [i, p] of idle.entries()) {
    const a = after[i]
    const peak = peakProc[i]
    console.log(
      `  process ${i === 0 ? 'main  ' : 'worker'}: fds idle ${p.fds}, peak ${peak?.fds ?? '?'}, after ${a?.fds ?? 'gone'}; ` +
        `RSS idle ${(p.rssKiB / 1024).toFixed(1)} MiB, peak ${((peak?.rssKiB ?? 0) / 1024).toFixed(1)} MiB, after ${((a?.rssKiB ?? 0) / 1024).toFixed(1)} MiB`,
    )
  }
  for (const [i, p] of idle.entries()) {
    const a = after[i]
    if (a === undefined || a.fds === p.fds) continue
    const extra = a.targets.filter(x => !p.targets.includes(x))
    const gone = p.targets.filter(x => !a.targets.includes(x))
    console.log(`    pid ${p.pid} descriptors new: ${extra.join(' ') || '-'}; closed: ${gone.join(' ') || '-'}`)
  }
  console.log(`  zombies:      ${z.length}; programs left: ${running.length}; exit after SIGTERM: ${code ?? signal}`)
  console.log(`  log:          ${log.lines} lines, ${Object.entries(log.tags).map(([k, v]) => `${k} ${v}`).join(', ')}`)
  for (const [kind, n] of [...log.errors].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`    ${n} x ${kind}`)
  for (const [why, n] of [...stats.failures].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  FAIL ${n} x ${why}`)
  let ok = true
  for (const [what, pass] of checks) {
    console.log(`  ${pass ? 'ok  ' : 'FAIL'} ${what}`)
    ok &&= pass
  }
  process.exit(ok ? 0 : 1)
}

main().catch(err => {
  console.error(`soak: ${err.message}`)
  rmSync(dir, { recursive: true, force: true })
  process.exit(2)
})
