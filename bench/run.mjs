#!/usr/bin/env node
// Benchmark of tcpproxy against direct, socat, HAProxy (and other peers).
// Plain Node ESM, node:* only. Usage: see bench/README.md or `node bench/run.mjs --help`.
//
// Outline: compile bench/tcpbench.c (the C load generator + backend) into
// bench/.build/ on first use; measure memory on fresh proxy processes; start
// every proxy afresh; run the half-close check; then run the timed figures
// interleaved (for each repetition, for each figure, every proxy in turn, the
// order rotated per repetition); summarise medians and paired ratios.

import { spawn, spawnSync, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const BENCH = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.dirname(BENCH)
const BUILD = path.join(BENCH, '.build')
const RESULTS_DIR = path.join(BENCH, '.results')
const TCPBENCH = path.join(BUILD, 'tcpbench')
const HOST = '127.0.0.1'
const TESTS = ['thr1', 'thr8', 'connrate', 'latency']
const ALL_ONLY = [...TESTS, 'memory', 'halfclose']
const DEFAULT_TCPPROXY = 'node bin/tcpproxy -d -t 0 -b 127.0.0.1:{LISTEN} 127.0.0.1:{TARGET}'
// The same build with --workers 2: both cores of the project machine (HAProxy runs 2 threads).
const workersCmd = cmd => cmd.replace(/ -b /, ' --workers 2 -b ')
const DISTURBED_CPU = 0.3 // other work on the machine (CPUs) above which a sample is redone once

// ------------------------------------------------------------------ options

const HELP = `usage: node bench/run.mjs [options]        (npm run bench -- [options])

  --quick                 short run for a before/after check (about a minute)
  --reps N                repetitions of the timed figures (default 5, quick 1)
  --connrate-reps N       repetitions of the connection rate (default: --reps; quick at least 3)
  --seconds S             timed part of a throughput/conn-rate sample (default 2, quick 1)
  --warmup S              warm-up before it (default 0.5, quick 0.3)
  --prewarm S             untimed connections through each proxy before the first
                          timed figure (default 1; 0 = none)
  --only LIST             ${ALL_ONLY.join(',')} (default all)
  --proxies LIST          direct,tcpproxy,tcpproxy-w2,socat,haproxy,naive-node or names given
                          with --proxy (default direct,tcpproxy,tcpproxy-w2,socat,haproxy)
  --tcpproxy "CMD"        command for tcpproxy, {LISTEN} {TARGET} are replaced
                          (default: ${DEFAULT_TCPPROXY})
  --proxy "NAME=CMD"      an extra peer (repeatable), same placeholders; add NAME to --proxies
                          (it is added automatically if --proxies is not given)
  --latency-count N       round trips per latency sample (default 20000, quick 5000)
  --latency-pin CPU|none  pin proxy + load generator to one CPU for latency (default 0)
  --mem-conns N           idle connections for the memory figure (default 5000, quick 2000)
  --mem-rounds N          open/close rounds on the same fresh process (default 3, quick 1)
  --halfclose-tries N     (default 3, quick 1)
  --budget S              stop starting repetitions once S seconds are used (default 660, quick 75)
  --write-results         also write bench/RESULTS.md
  --list                  print the peers and their commands and exit
  --help
`

function parseOptions(argv) {
  const o = {
    quick: false, reps: null, connrateReps: null, seconds: null, warmup: null, prewarm: 1, only: ALL_ONLY, proxies: null,
    tcpproxy: DEFAULT_TCPPROXY, extra: [], latencyCount: null, latencyPin: '0', memConns: null,
    memRounds: null, halfcloseTries: null, budget: null, writeResults: false, list: false,
  }
  const need = (i) => {
    if (i + 1 >= argv.length) die(`option ${argv[i]} needs a value`)
    return argv[i + 1]
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    switch (a) {
      case '--quick': o.quick = true; break
      case '--write-results': o.writeResults = true; break
      case '--list': o.list = true; break
      case '--help': case '-h': process.stdout.write(HELP); process.exit(0)
      case '--reps': o.reps = posInt(need(i), a); i++; break
      case '--connrate-reps': o.connrateReps = posInt(need(i), a); i++; break
      case '--seconds': o.seconds = posNum(need(i), a); i++; break
      case '--warmup': o.warmup = Number(need(i)); i++; break
      case '--prewarm': o.prewarm = Number(need(i)); if (!(o.prewarm >= 0)) die('--prewarm wants seconds, 0 or more'); i++; break
      case '--only': o.only = list(need(i), ALL_ONLY, a); i++; break
      case '--proxies': o.proxies = need(i).split(',').map(s => s.trim()).filter(Boolean); i++; break
      case '--tcpproxy': o.tcpproxy = need(i); i++; break
      case '--proxy': {
        const v = need(i); i++
        const eq = v.indexOf('=')
        if (eq < 1) die('--proxy wants NAME=CMD')
        o.extra.push({ name: v.slice(0, eq), cmd: v.slice(eq + 1) })
        break
      }
      case '--latency-count': o.latencyCount = posInt(need(i), a); i++; break
      case '--latency-pin': o.latencyPin = need(i); i++; break
      case '--mem-conns': o.memConns = posInt(need(i), a); i++; break
      case '--mem-rounds': o.memRounds = posInt(need(i), a); i++; break
      case '--halfclose-tries': o.halfcloseTries = posInt(need(i), a); i++; break
      case '--budget': o.budget = posNum(need(i), a); i++; break
      default: die(`unknown option ${a} (see --help)`)
    }
  }
  const q = o.quick
  o.reps ??= q ? 1 : 5
  // One connection-rate sample of a second moves +-15 % with the order and
  // the machine (a second HAProxy measured 1.01-1.27x the first in four quick
  // runs): the quick run takes three, each in another place of the order.
  o.connrateReps ??= q ? Math.max(3, o.reps) : o.reps
  o.seconds ??= q ? 1 : 2
  o.warmup ??= q ? 0.3 : 0.5
  o.latencyCount ??= q ? 5000 : 20000
  o.memConns ??= q ? 2000 : 5000
  o.memRounds ??= q ? 1 : 3
  o.halfcloseTries ??= q ? 1 : 3
  o.budget ??= q ? 75 : 660
  o.proxies ??= ['direct', 'tcpproxy', 'tcpproxy-w2', 'socat', 'haproxy', ...o.extra.map(e => e.name)]
  return o
}
function die(msg) { process.stderr.write(`bench: ${msg}\n`); process.exit(2) }
function posInt(v, k) { const n = Number(v); if (!Number.isInteger(n) || n < 1) die(`${k} wants a positive integer`); return n }
function posNum(v, k) { const n = Number(v); if (!(n > 0)) die(`${k} wants a positive number`); return n }
function list(v, allowed, k) {
  const l = v.split(',').map(s => s.trim()).filter(Boolean)
  for (const x of l) if (!allowed.includes(x)) die(`${k}: unknown "${x}" (allowed: ${allowed.join(',')})`)
  return l
}

// ------------------------------------------------------------------ helpers

const sleep = (ms) => new Promise(r => setTimeout(r, ms))
const log = (msg) => process.stderr.write(`${msg}\n`)
const t0 = Date.now()
const elapsed = () => (Date.now() - t0) / 1000

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : null
}
function firstLine(cmd, args) {
  try {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 })
    return `${r.stdout}${r.stderr}`.split('\n').find(l => l.trim()) ?? '?'
  } catch { return '?' }
}
function median(a) {
  const v = a.filter(x => Number.isFinite(x)).sort((x, y) => x - y)
  if (!v.length) return NaN
  const m = v.length >> 1
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2
}
const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '–')
const fmtRange = (a, d = 2) => {
  const v = a.filter(Number.isFinite)
  if (v.length < 2) return ''
  return ` (${Math.min(...v).toFixed(d)}–${Math.max(...v).toFixed(d)})`
}
const kib = (bytes) => (Number.isFinite(bytes) ? `${(bytes / 1024).toFixed(1)} KiB` : '–')
const mb = (bytes) => (Number.isFinite(bytes) ? (bytes / 1048576).toFixed(1) : '–')

async function freePort(taken) {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise((resolve, reject) => {
      const s = net.createServer()
      s.once('error', reject)
      s.listen(0, HOST, () => { const p = s.address().port; s.close(() => resolve(p)) })
    })
    if (!taken.has(port)) { taken.add(port); return port }
  }
  throw new Error('no free port')
}

function listeningPorts() {
  const ports = new Set()
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = ''
    try { text = fs.readFileSync(f, 'utf8') } catch { continue }
    for (const line of text.split('\n').slice(1)) {
      const p = line.trim().split(/\s+/)
      if (p[3] === '0A') ports.add(parseInt(p[1].split(':').pop(), 16))
    }
  }
  return ports
}

// /proc process tree of a root pid: [{pid, ppid}]
function procTree(root) {
  const parent = new Map()
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const s = fs.readFileSync(`/proc/${d}/stat`, 'utf8')
      parent.set(Number(d), Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]))
    } catch { /* gone */ }
  }
  const inTree = new Set(parent.has(root) ? [root] : [])
  let changed = true
  while (changed) {
    changed = false
    for (const [pid, pp] of parent) if (!inTree.has(pid) && inTree.has(pp)) { inTree.add(pid); changed = true }
  }
  return [...inTree]
}

function treeMemory(root) {
  let rss = 0, pss = 0, procs = 0
  for (const pid of procTree(root)) {
    try {
      const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
      const m = /VmRSS:\s+(\d+) kB/.exec(st)
      if (!m) continue // zombie
      rss += Number(m[1]) * 1024
      procs++
      const sr = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
      const p = /^Pss:\s+(\d+) kB/m.exec(sr)
      if (p) pss += Number(p[1]) * 1024
    } catch { /* exited meanwhile */ }
  }
  return { rss, pss, procs }
}

// CPU-seconds the whole machine spent in task context (user+nice+system)
function machineBusy() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 4).map(Number)
  return (f[0] + f[1] + f[2]) / 100 // USER_HZ
}
/** Between samples nothing of ours runs: wait (up to maxS) for a 100 ms window
 *  in which other work on the machine uses < DISTURBED_CPU CPUs. */
async function waitQuiet(maxS) {
  const end = Date.now() + maxS * 1000
  for (;;) {
    const a = machineBusy(), ta = Date.now()
    await sleep(100)
    const load = (machineBusy() - a) / ((Date.now() - ta) / 1000)
    if (load < DISTURBED_CPU) return true
    if (Date.now() >= end) return false
  }
}

function countOpenFds(root) {
  let n = 0
  for (const pid of procTree(root)) {
    try { n += fs.readdirSync(`/proc/${pid}/fd`).length } catch { /* gone */ }
  }
  return n
}

// --------------------------------------------------------------- tcpbench

function buildTcpbench() {
  const src = path.join(BENCH, 'tcpbench.c')
  let fresh = false
  try { fresh = fs.statSync(TCPBENCH).mtimeMs >= fs.statSync(src).mtimeMs } catch { /* not built */ }
  if (fresh) return
  const cc = which('cc') ?? which('gcc')
  if (!cc) die('no C compiler: apt-get install -y gcc')
  fs.mkdirSync(BUILD, { recursive: true })
  log(`bench: compiling ${path.relative(ROOT, src)} -> ${path.relative(ROOT, TCPBENCH)}`)
  const r = spawnSync(cc, ['-O2', '-Wall', '-o', TCPBENCH, src], { stdio: 'inherit' })
  if (r.status !== 0) die('tcpbench did not compile')
}

function parseResult(line) {
  const o = {}
  for (const kv of line.replace(/^RESULT\s+/, '').split(/\s+/)) {
    const eq = kv.indexOf('=')
    if (eq < 0) continue
    const k = kv.slice(0, eq), v = kv.slice(eq + 1)
    o[k] = v !== '' && !Number.isNaN(Number(v)) ? Number(v) : v
  }
  return o
}

const rawLines = []

/** Run tcpbench; resolves {rc, results}. onLine(line, child) sees every stdout line. */
function tcpbench(args, { timeoutS = 60, onLine = null, label = '' } = {}) {
  return new Promise((resolve) => {
    const child = spawn(TCPBENCH, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    const results = []
    let buf = '', err = ''
    const timer = setTimeout(() => { log(`bench: tcpbench ${args[0]} exceeded ${timeoutS}s, killing`); child.kill('SIGKILL') }, timeoutS * 1000)
    child.stdout.on('data', (d) => {
      buf += d
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        if (line.startsWith('RESULT ')) { results.push(parseResult(line)); rawLines.push(`${label}\t${line}`) }
        if (onLine) onLine(line, child)
      }
    })
    child.stderr.on('data', (d) => { err += d })
    child.on('close', (rc) => {
      clearTimeout(timer)
      if (err.trim()) log(err.trim().split('\n').map(l => `  [tcpbench] ${l}`).join('\n'))
      resolve({ rc, results })
    })
  })
}

// ------------------------------------------------------------------ proxies

function peerDefs(o) {
  const haproxyCfg = (listen, target) => `global
    maxconn 6000
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend fe
    bind ${HOST}:${listen}
    default_backend be
backend be
    server s1 ${HOST}:${target}
`
  const defs = {
    direct: { kind: 'direct' },
    tcpproxy: { cmd: o.tcpproxy, hint: 'build it first: npx tsc (or npm run build)' },
    'tcpproxy-w2': { cmd: workersCmd(o.tcpproxy), hint: 'build it first: npx tsc (or npm run build)' },
    socat: { bin: 'socat', cmd: `socat TCP-LISTEN:{LISTEN},bind=${HOST},reuseaddr,fork,backlog=1024 TCP:${HOST}:{TARGET}`, hint: 'apt-get install -y socat' },
    haproxy: { bin: 'haproxy', cmd: 'haproxy -db -f bench/.build/haproxy-{LISTEN}.cfg', config: haproxyCfg, hint: 'apt-get install -y haproxy' },
    'naive-node': { cmd: 'node bench/proxies/naive-node.mjs {LISTEN} {TARGET}' },
  }
  for (const e of o.extra) defs[e.name] = { cmd: e.cmd }
  return defs
}

const started = new Set() // child processes we started (process group leaders)
function killAll(sig = 'SIGKILL') {
  for (const c of started) { try { process.kill(-c.pid, sig) } catch { /* gone */ } }
}
process.on('exit', () => killAll('SIGKILL'))
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => { killAll('SIGKILL'); process.exit(130) })

class Proxy {
  constructor(name, def, target, taken, logSuffix) {
    Object.assign(this, { name, def, target, taken, logSuffix, child: null, pid: 0, listen: target, cmdline: '' })
    this.logFile = path.join(BUILD, 'logs', `${name}${logSuffix}.log`)
  }
  get direct() { return this.def.kind === 'direct' }
  async start() {
    if (this.direct) return true
    this.listen = await freePort(this.taken)
    const sub = (s) => s.replaceAll('{LISTEN}', String(this.listen)).replaceAll('{TARGET}', String(this.target))
    if (this.def.config) {
      this.cfgFile = sub(path.join(BUILD, 'haproxy-{LISTEN}.cfg'))
      fs.writeFileSync(this.cfgFile, this.def.config(this.listen, this.target))
    }
    this.cmdline = sub(this.def.cmd)
    fs.mkdirSync(path.dirname(this.logFile), { recursive: true })
    const fd = fs.openSync(this.logFile, 'w')
    this.child = spawn('sh', ['-c', `exec ${this.cmdline}`], { cwd: ROOT, detached: true, stdio: ['ignore', fd, fd] })
    fs.closeSync(fd)
    started.add(this.child)
    this.pid = this.child.pid
    this.exited = null
    this.child.on('exit', (code, sig) => { this.exited = sig ?? code; started.delete(this.child) })
    const deadline = Date.now() + 15000
    while (Date.now() < deadline) {
      if (this.exited !== null) break
      if (listeningPorts().has(this.listen)) return true
      await sleep(50)
    }
    const tail = this.logTail()
    this.failure = `${this.name} did not listen on ${HOST}:${this.listen} within 15 s${this.exited !== null ? ` (exited: ${this.exited})` : ''}; command: ${this.cmdline}${tail ? `; log: ${tail}` : ''}${this.def.hint ? `; hint: ${this.def.hint}` : ''}`
    await this.stop()
    return false
  }
  alive() { return this.direct || this.exited === null }
  logTail() {
    try {
      const lines = fs.readFileSync(this.logFile, 'utf8').split('\n').filter(l => l.trim())
      const err = lines.find(l => /error/i.test(l))
      return [...(err ? [err] : []), ...lines.slice(-2)].join(' | ')
    } catch { return '' }
  }
  logStats() {
    try {
      const st = fs.statSync(this.logFile)
      let lines = 0
      const b = fs.readFileSync(this.logFile)
      for (let i = 0; i < b.length; i++) if (b[i] === 10) lines++
      return { bytes: st.size, lines }
    } catch { return { bytes: 0, lines: 0 } }
  }
  async stop() {
    if (!this.child || this.exited !== null) return
    try { process.kill(-this.pid, 'SIGTERM') } catch { /* gone */ }
    const deadline = Date.now() + 3000
    while (this.exited === null && Date.now() < deadline) await sleep(50)
    if (this.exited === null) { try { process.kill(-this.pid, 'SIGKILL') } catch { /* gone */ } await sleep(100) }
    if (this.cfgFile) fs.rmSync(this.cfgFile, { force: true })
  }
  pin(cpus) { // taskset every thread of every process of the tree
    if (this.direct) return
    for (const pid of procTree(this.pid)) {
      spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' })
    }
  }
}

// -------------------------------------------------------------------- main

async function main() {
  const o = parseOptions(process.argv.slice(2))
  const defs = peerDefs(o)
  for (const p of o.proxies) if (!defs[p]) die(`unknown proxy "${p}" (known: ${Object.keys(defs).join(', ')}; add one with --proxy NAME=CMD)`)

  if (o.list) {
    for (const p of o.proxies) process.stdout.write(`${p.padEnd(12)} ${defs[p].cmd ?? '(no proxy: the load generator connects to the backend)'}\n`)
    return
  }
  buildTcpbench()

  // which peers can run at all
  const skipped = []
  const names = []
  for (const p of o.proxies) {
    const d = defs[p]
    if (d.bin && !which(d.bin)) { skipped.push(`${p}: \`${d.bin}\` not installed — to measure it: apt-get install -y ${d.bin}`); continue }
    names.push(p)
  }
  for (const s of skipped) log(`bench: SKIP ${s}`)

  const nproc = os.cpus().length
  const pinCpu = o.latencyPin !== 'none' && which('taskset') ? o.latencyPin : null
  if (o.latencyPin !== 'none' && !pinCpu) log('bench: taskset not found: latency runs unpinned (apt-get install -y util-linux)')
  const allCpus = `0-${nproc - 1}`
  const taken = new Set()
  const target = await freePort(taken)
  const run = {
    o, names, skipped, target, pinCpu, startedAt: new Date(), cmdline: process.argv.slice(2),
    mem: {}, half: {}, samples: {}, disturbed: 0, redone: 0, failures: [], conns: {}, logs: {}, cmds: {}, notes: [],
  }
  for (const t of TESTS) run.samples[t] = {}
  const addConns = (p, n) => { run.conns[p] = (run.conns[p] ?? 0) + n }

  log(`bench: proxies ${names.join(', ')}; backend port ${target}; reps ${o.reps}${o.connrateReps !== o.reps && o.only.includes('connrate') ? ` (connection rate ${o.connrateReps})` : ''}; ${o.seconds}s samples (+${o.warmup}s warm-up); budget ${o.budget}s`)

  // ---- memory: fresh process per proxy, before anything else touched it
  if (o.only.includes('memory')) {
    for (const p of names) {
      if (defs[p].kind === 'direct') continue
      const px = new Proxy(p, defs[p], target, taken, '-memory')
      if (!(await px.start())) { run.failures.push(px.failure); log(`bench: SKIP ${px.failure}`); continue }
      run.cmds[p] = px.cmdline
      await sleep(o.quick ? 500 : 1000)
      const idle = treeMemory(px.pid)
      const rounds = []
      for (let r = 1; r <= o.memRounds; r++) {
        let during = null, fds = 0
        const res = await tcpbench(['hold', '--target', String(target), '--connect', String(px.listen), '--conns', String(o.memConns),
          '--seconds', '120', '--timeout', '120', '--conn-timeout', '10', '--proxy-pid', String(px.pid)], {
          timeoutS: 300, label: `${p}\tmemory${r}`,
          onLine: (line, child) => {
            if (!line.startsWith('HOLDING')) return
            setTimeout(() => {
              during = treeMemory(px.pid)
              fds = countOpenFds(px.pid)
              child.stdin.end('close\n')
            }, o.quick ? 500 : 1000)
          },
        })
        await sleep(o.quick ? 500 : 1000)
        const after = treeMemory(px.pid)
        const h = res.results.find(x => x.test === 'hold') ?? {}
        // (these connections are logged to NAME-memory.log, not counted in the Logging table)
        rounds.push({ during, after, fds, hold: h })
        log(`bench: memory ${p} round ${r}: idle RSS ${mb(idle.rss)} MB, with ${h.held ?? '?'} conns RSS ${mb(during?.rss)} MB PSS ${mb(during?.pss)} MB, after close RSS ${mb(after.rss)} MB`)
        if (h.verify !== 'ok') run.failures.push(`memory ${p} round ${r}: hold verify ${h.verify ?? 'missing'} (ok ${h.held}, failed ${h.failed}, dropped ${h.dropped}, backend left open ${h.backend_left})`)
        if (!px.alive()) { run.failures.push(`memory ${p}: proxy exited (${px.exited}); log: ${px.logTail()}`); break }
      }
      run.mem[p] = { idle, rounds }
      await px.stop()
    }
  }

  if (o.only.includes('memory')) log(`bench: memory phase done at ${elapsed().toFixed(1)} s`)

  // ---- fresh proxies for the rest
  const needTimed = o.only.some(t => TESTS.includes(t) || t === 'halfclose')
  const proxies = []
  if (needTimed) {
    for (const p of names) {
      const px = new Proxy(p, defs[p], target, taken, '')
      if (await px.start()) { proxies.push(px); if (!px.direct) run.cmds[p] = px.cmdline } else { run.failures.push(px.failure); log(`bench: SKIP ${px.failure}`) }
    }
    await sleep(300)
  }

  // ---- half-close correctness
  if (o.only.includes('halfclose')) {
    for (const px of proxies) {
      const r = await tcpbench(['halfclose', '--target', String(target), '--connect', String(px.listen), '--tries', String(o.halfcloseTries), '--conn-timeout', '3'],
        { timeoutS: 30 + 10 * o.halfcloseTries, label: `${px.name}\thalfclose` })
      addConns(px.name, 2 * o.halfcloseTries)
      const by = (dir) => r.results.filter(x => x.dir === dir)
      run.half[px.name] = { c2s: by('c2s'), s2c: by('s2c') }
      log(`bench: halfclose ${px.name}: c2s ${by('c2s').map(x => x.pass ? 'PASS' : 'FAIL').join(',')} s2c ${by('s2c').map(x => x.pass ? 'PASS' : 'FAIL').join(',')}`)
    }
  }

  log(`bench: proxies started, half-close done at ${elapsed().toFixed(1)} s`)

  // ---- timed figures, interleaved
  const tests = TESTS.filter(t => o.only.includes(t))
  const sampleArgs = (t, px) => {
    const base = ['--target', String(target), '--connect', String(px.listen), '--proxy-pid', String(px.pid)]
    const timed = ['--seconds', String(o.seconds), '--warmup', String(o.warmup)]
    if (t === 'thr1') return ['thr', ...base, ...timed, '--streams', '1']
    if (t === 'thr8') return ['thr', ...base, ...timed, '--streams', '8']
    if (t === 'connrate') return ['connrate', ...base, ...timed, '--concurrency', '50']
    return ['latency', ...base, '--count', String(o.latencyCount), '--warmup-count', String(Math.min(1000, o.latencyCount)),
      '--timeout', '60', ...(pinCpu ? ['--cpu', pinCpu] : [])]
  }
  const sampleOnce = async (t, px, rep) => {
    if (t === 'latency' && pinCpu) px.pin(pinCpu)
    const r = await tcpbench(sampleArgs(t, px), { timeoutS: t === 'latency' ? 90 : o.seconds + o.warmup + 40, label: `${px.name}\t${t}\trep${rep}` })
    if (t === 'latency' && pinCpu) px.pin(allCpus)
    const res = r.results[0] ?? { verify: 'FAIL', missing: 1 }
    addConns(px.name, t === 'thr1' ? 1 : t === 'thr8' ? 8 : t === 'latency' ? 1 : (res.backend_accepted ?? 0))
    return { rc: r.rc, ...res }
  }
  // ---- one untimed burst of connections through every proxy, so that the
  // timed figures measure a process in its steady state, as a daemon that
  // has run for a while is. A fresh tcpproxy compiles its connection path
  // (V8 JIT) during its first ~2,000 connections: 220-265 us of CPU per
  // connection in the first 0.3 s, ~160 after (bench/RESULTS.md, Profile),
  // which the 0.3-0.5 s warm-up of one sample does not cover. Every proxy
  // gets the same burst; its errors count as failures.
  const prewarmErrors = {}
  if (tests.includes('connrate') && o.prewarm > 0) {
    for (const px of proxies) {
      if (px.direct || !px.alive()) continue
      const r = await tcpbench(['connrate', '--target', String(target), '--connect', String(px.listen), '--proxy-pid', String(px.pid),
        '--seconds', String(o.prewarm), '--warmup', '0', '--concurrency', '50'], { timeoutS: o.prewarm + 40, label: `${px.name}\tprewarm` })
      const res = r.results[0] ?? { verify: 'FAIL', missing: 1 }
      addConns(px.name, res.backend_accepted ?? 0)
      prewarmErrors[px.name] = res.errors ?? 0
      if (res.verify !== 'ok') run.failures.push(`prewarm ${px.name}: verify ${res.verify}${res.errors ? ` (${res.errors} errors)` : ''}${res.missing ? ' (no RESULT line)' : ''}`)
      log(`bench: prewarm ${px.name}: ${fmt(res.cps, 0)} conn/s untimed, ${res.errors ?? 0} errors${res.missing ? ' (no RESULT line)' : ''}`)
    }
  }
  run.prewarmErrors = prewarmErrors
  let repsDone = 0
  let repTime = 0
  // The last repetition's time over its estimate: the estimate leaves out the waits and the load generator's start.
  let overEstimate = 1
  const sampleCost = (t) => (t === 'latency' ? 0.5 + o.latencyCount * 60e-6 : o.seconds + o.warmup + 0.4) // rough, seconds
  const repsOf = (t) => (t === 'connrate' ? o.connrateReps : o.reps)
  const lastRep = Math.max(0, ...tests.map(repsOf))
  const testsOf = (rep) => tests.filter(t => rep <= repsOf(t))
  const costOf = (rep) => testsOf(rep).reduce((a, t) => a + proxies.length * sampleCost(t), 0)
  let remaining = 0
  for (let rep = 1; rep <= lastRep; rep++) remaining += costOf(rep)
  for (let rep = 1; rep <= lastRep; rep++) {
    // A repetition with fewer figures than the last one (the quick run's
    // extra connection-rate samples) is estimated, not timed by the last.
    const next = rep > 1 && testsOf(rep).length === testsOf(rep - 1).length ? repTime : costOf(rep) * overEstimate
    if (rep > 1 && elapsed() + next > o.budget) {
      run.notes.push(`stopped after ${repsDone} of ${lastRep} repetitions: budget of ${o.budget}s would be exceeded`)
      log(`bench: ${run.notes.at(-1)}`)
      break
    }
    const repStart = elapsed()
    for (const t of testsOf(rep)) {
      const k = (rep - 1) % proxies.length
      const order = [...proxies.slice(k), ...proxies.slice(0, k)]
      for (const px of order) {
        if (!px.alive()) continue
        await waitQuiet(o.quick ? 0.2 : 1)
        let s = await sampleOnce(t, px, rep)
        remaining -= sampleCost(t)
        if (s.other_cpu > DISTURBED_CPU && elapsed() + remaining + sampleCost(t) + 1 < o.budget) {
          run.redone++
          log(`bench: ${t} ${px.name} rep ${rep}: other work on the machine used ${fmt(s.other_cpu)} CPUs, redoing the sample`)
          await waitQuiet(o.quick ? 0.5 : 3)
          s = await sampleOnce(t, px, rep)
          if (s.other_cpu > DISTURBED_CPU) { s.disturbed = true; run.disturbed++ }
        } else if (s.other_cpu > DISTURBED_CPU) { s.disturbed = true; run.disturbed++ }
        s.rep = rep
        ;(run.samples[t][px.name] ??= []).push(s)
        if (s.verify !== 'ok') run.failures.push(`${t} ${px.name} rep ${rep}: verify ${s.verify}${s.errors ? ` (${s.errors} errors)` : ''}${s.missing ? ' (no RESULT line)' : ''}`)
        if (!px.alive()) run.failures.push(`${px.name} exited (${px.exited}) during ${t} rep ${rep}; log: ${px.logTail()}`)
        log(`bench: rep ${rep} ${t.padEnd(8)} ${px.name.padEnd(12)} ${sampleBrief(t, s)}${s.disturbed ? ' [disturbed]' : ''}`)
      }
    }
    repsDone = rep
    repTime = elapsed() - repStart
    overEstimate = Math.max(1, repTime / costOf(rep))
  }
  run.repsDone = repsDone
  run.mixedReps = o.connrateReps !== o.reps && tests.includes('connrate') && tests.some(t => t !== 'connrate')
  run.lastRep = lastRep
  for (const px of proxies) {
    if (!px.direct) run.logs[px.name] = px.logStats()
    await px.stop()
  }
  run.wall = elapsed()

  const md = summarize(run, defs)
  process.stdout.write(md)
  fs.mkdirSync(RESULTS_DIR, { recursive: true })
  const stamp = run.startedAt.toISOString().replace(/[:]/g, '-').replace(/\..*/, '')
  fs.writeFileSync(path.join(RESULTS_DIR, `${stamp}.md`), md)
  fs.writeFileSync(path.join(RESULTS_DIR, `${stamp}.raw.tsv`), rawLines.join('\n') + '\n')
  log(`bench: summary written to ${path.relative(ROOT, path.join(RESULTS_DIR, `${stamp}.md`))} (raw RESULT lines: ${stamp}.raw.tsv)`)
  if (o.writeResults) {
    // The "## Profile" section is written by hand (what the profiles showed
    // and what was changed); a new run keeps it.
    const file = path.join(BENCH, 'RESULTS.md')
    const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''
    const profile = /^## Profile\n[\s\S]*?(?=^## |(?![\s\S]))/m.exec(old)?.[0] ?? ''
    fs.writeFileSync(file, profile === '' ? md : `${md.trimEnd()}\n\n${profile.trimEnd()}\n`)
    log('bench: bench/RESULTS.md written')
  }
}

function sampleBrief(t, s) {
  if (t.startsWith('thr')) return `${fmt(s.gbps)} Gbit/s, proxy ${fmt(s.proxy_cpu)} CPU-s, other ${fmt(s.other_cpu)} ${s.verify}`
  if (t === 'connrate') return `${fmt(s.cps, 0)} conn/s, ${s.errors} errors, proxy ${fmt(s.proxy_cpu)} CPU-s, other ${fmt(s.other_cpu)}`
  return `p50 ${fmt(s.p50_us, 1)} µs p99 ${fmt(s.p99_us, 1)} µs p99.9 ${fmt(s.p999_us, 1)} µs, other ${fmt(s.other_cpu)}`
}

// ---------------------------------------------------------------- summary

function machineInfo() {
  const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? '?'
  const memKb = Number((fs.readFileSync('/proc/meminfo', 'utf8').match(/MemTotal:\s+(\d+)/) ?? [])[1])
  const rd = (f) => { try { return fs.readFileSync(f, 'utf8').trim().replace(/\s+/g, ' ') } catch { return '?' } }
  const osName = (rd('/etc/os-release').match(/PRETTY_NAME="([^"]+)"/) ?? [])[1] ?? '?'
  const nofile = (rd('/proc/self/limits').match(/Max open files (\d+)/) ?? [])[1] ?? '?'
  let pkgVersion = '?', gitRev = '?'
  try { pkgVersion = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version } catch { /* none */ }
  try { gitRev = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() } catch { gitRev = '(no commit)' }
  let dirty = ''
  try { dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', 'lib'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() ? ' + uncommitted changes in lib/' : '' } catch { /* ignore */ }
  return [
    ['CPU', `${os.cpus().length} × ${cpu}`],
    ['Memory', `${(memKb / 1048576).toFixed(1)} GiB`],
    ['OS / kernel', `${osName} / ${os.release()}`],
    ['node', process.version],
    ['tcpproxy', `${pkgVersion}, git ${gitRev}${dirty}`],
    ['haproxy', which('haproxy') ? firstLine('haproxy', ['-v']) : 'not installed'],
    ['socat', which('socat') ? (spawnSync('socat', ['-V'], { encoding: 'utf8' }).stdout.match(/socat version [^\n]*/) ?? ['?'])[0] : 'not installed'],
    ['C compiler', firstLine(which('cc') ?? 'cc', ['--version'])],
    ['TCP', `lo MTU ${rd('/sys/class/net/lo/mtu')}, cc ${rd('/proc/sys/net/ipv4/tcp_congestion_control')}, somaxconn ${rd('/proc/sys/net/core/somaxconn')}, tcp_tw_reuse ${rd('/proc/sys/net/ipv4/tcp_tw_reuse')}, ports ${rd('/proc/sys/net/ipv4/ip_local_port_range')}, rmem ${rd('/proc/sys/net/ipv4/tcp_rmem')}, wmem ${rd('/proc/sys/net/ipv4/tcp_wmem')}`],
    ['Limits', `open files ${nofile}`],
    ['Load average at the end', rd('/proc/loadavg')],
  ]
}

function summarize(run, defs) {
  const { o, names } = run
  const out = []
  const w = (s = '') => out.push(s)
  const table = (head, rows) => {
    w(`| ${head.join(' | ')} |`)
    w(`|${head.map(() => '---').join('|')}|`)
    for (const r of rows) w(`| ${r.join(' | ')} |`)
    w()
  }
  const S = run.samples
  const val = (t, p, k) => (S[t][p] ?? []).map(s => s[k])
  // median over repetitions of the paired ratio f(sample of p, sample of ref)
  const paired = (t, p, ref, f) => {
    const a = S[t][p] ?? [], b = S[t][ref] ?? []
    const r = []
    for (const s of a) {
      const q = b.find(x => x.rep === s.rep)
      if (q) r.push(f(s, q))
    }
    return median(r)
  }
  const has = (p) => names.includes(p) && Object.values(S).some(x => x[p]?.length)
  const hasH = has('haproxy'), hasD = has('direct'), hasS = has('socat')

  w(`# tcpproxy benchmark — ${run.startedAt.toISOString().replace('T', ' ').replace(/\..*/, '')} UTC`)
  w()
  w(`Command: \`npm run bench --${run.cmdline.length ? ` ${run.cmdline.map(a => (/[\s"]/.test(a) ? `'${a}'` : a)).join(' ')}` : ''}\`  `)
  w(`Wall time: ${run.wall.toFixed(0)} s. Repetitions: ${run.repsDone} of ${run.lastRep}${run.mixedReps ? ` (connection rate ${o.connrateReps}, the other figures ${o.reps})` : ''}; timed samples ${o.seconds} s after ${o.warmup} s warm-up${Object.keys(run.prewarmErrors).length ? `, each proxy first served ${o.prewarm} s of connections untimed` : ''}; latency ${o.latencyCount} round trips${run.pinCpu ? ` with proxy + load generator pinned to CPU ${run.pinCpu} (taskset)` : ' unpinned'}; memory with ${o.memConns} idle connections × ${o.memRounds} round(s) on a fresh process.  `)
  w(`Samples redone because other work on the machine used > ${DISTURBED_CPU} CPU: ${run.redone}; still disturbed after the redo: ${run.disturbed}.  `)
  w('Medians over repetitions; "× direct" / "× haproxy" are medians of per-repetition paired ratios (> 1 = better), so machine noise hits both sides of a ratio alike. Every absolute figure is "this machine, this run".')
  w()
  for (const n of run.notes) w(`Note: ${n}  `)
  for (const s of run.skipped) w(`Skipped: ${s}  `)
  if (run.notes.length || run.skipped.length) w()

  w('## Machine')
  w()
  table(['', ''], machineInfo())

  // ---- targets
  const candidates = names.filter(p => !['direct', 'haproxy', 'socat'].includes(p) && (has(p) || run.mem[p]))
  const verdict = (ok) => (ok === null ? 'n/a' : ok ? 'PASS' : 'FAIL')
  const targetRows = []
  const ratioLines = []
  for (const p of candidates) {
    const r1 = hasH ? paired('thr1', p, 'haproxy', (a, b) => a.gbps / b.gbps) : NaN
    const r8 = hasH ? paired('thr8', p, 'haproxy', (a, b) => a.gbps / b.gbps) : NaN
    const rc = hasH ? paired('connrate', p, 'haproxy', (a, b) => a.cps / b.cps) : NaN
    const rs = hasS ? paired('connrate', p, 'socat', (a, b) => a.cps / b.cps) : NaN
    const errs = (S.connrate[p] ?? []).reduce((x, s) => x + (s.errors ?? 0), 0) + (run.prewarmErrors[p] ?? 0)
    const rl = hasH ? paired('latency', p, 'haproxy', (a, b) => a.p99_us / b.p99_us) : NaN
    const rl50 = hasH ? paired('latency', p, 'haproxy', (a, b) => b.p50_us / a.p50_us) : NaN
    const m = run.mem[p]?.rounds?.[0]
    const perConn = m?.during && m.hold?.held ? (m.during.pss - run.mem[p].idle.pss) / m.hold.held : NaN
    const num = (x, ok) => (Number.isFinite(x) ? ok(x) : null)
    const half = run.half[p]
    const halfOk = half ? [...half.c2s, ...half.s2c].every(x => x.pass === 1) && half.c2s.length > 0 : null
    const verifyFails = run.failures.filter(f => f.includes(` ${p} `) || f.startsWith(`${p} `)).length
    targetRows.push([p, 'throughput 1 stream ≥ 0.9× haproxy', `${fmt(r1)}×`, verdict(num(r1, x => x >= 0.9))])
    targetRows.push([p, 'throughput 8 streams ≥ 0.9× haproxy', `${fmt(r8)}×`, verdict(num(r8, x => x >= 0.9))])
    targetRows.push([p, 'connection rate ≥ 0.8× haproxy', `${fmt(rc)}×`, verdict(num(rc, x => x >= 0.8))])
    targetRows.push([p, 'connection rate ≥ 3× socat', `${fmt(rs)}×`, verdict(num(rs, x => x >= 3))])
    targetRows.push([p, 'connection rate: zero failures', S.connrate[p] ? `${errs} failures in ${S.connrate[p].length} samples${run.prewarmErrors[p] !== undefined ? ' and the prewarm' : ''}` : '–', verdict(S.connrate[p] ? errs === 0 : null)])
    targetRows.push([p, 'latency p99 ≤ 1.25× haproxy', `${fmt(rl)}×`, verdict(num(rl, x => x <= 1.25))])
    targetRows.push([p, 'memory ≤ 6 KiB per idle relayed connection (fresh process)', kib(perConn), verdict(num(perConn, x => x <= 6 * 1024))])
    targetRows.push([p, 'correctness: half-close both ways, all byte counts verified', `${halfOk === null ? 'half-close not run' : halfOk ? 'half-close ok' : 'half-close FAILED'}, ${verifyFails} verification failures`, verdict(halfOk === null ? (verifyFails ? false : null) : halfOk && verifyFails === 0)])
    const parts = [r1, r8, rc, rl50]
    if (parts.every(Number.isFinite)) {
      const g = Math.exp(parts.reduce((a, x) => a + Math.log(x), 0) / parts.length)
      ratioLines.push(`RATIO ${p}/haproxy = ${g.toFixed(3)} (geometric mean of thr1 ${fmt(r1)}, thr8 ${fmt(r8)}, connrate ${fmt(rc)}, latency p50 speed ${fmt(rl50)}; disturbed samples ${run.disturbed})`)
    }
  }
  if (candidates.length) {
    w('## Targets')
    w()
    if (!hasH) w('HAProxy was not measured in this run, so the ratio targets cannot be judged (n/a).\n')
    table(['proxy', 'target', 'measured', 'verdict'], targetRows)
    for (const l of ratioLines) w(`\`${l}\`  `)
    if (ratioLines.length) w('\n(The baseline for the naive Node forwarder is 0.69–0.78 in quick runs; treat one quick RATIO as ±10 %.)\n')
  }

  // ---- correctness
  if (Object.keys(run.half).length || run.failures.length) {
    w('## Correctness')
    w()
    if (Object.keys(run.half).length) {
      w('Half-close, 64 KiB each way: **c2s** = client sends, shutdown(SHUT_WR); the backend reads to EOF, then replies; the reply must reach the client. **s2c** = the backend sends and shuts down first; the client reads to EOF, then sends; that must reach the backend.')
      w()
      const cell = (l) => (l.length ? `${l.every(x => x.pass === 1) ? 'PASS' : 'FAIL'} (${l.map(x => `${x.client_received}/${x.backend_received}`).join(', ')})` : '–')
      table(['proxy', 'c2s (client got / backend got)', 's2c (client got / backend got)'], Object.entries(run.half).map(([p, h]) => [p, cell(h.c2s), cell(h.s2c)]))
    }
    w(run.failures.length ? `Failures (${run.failures.length}):\n\n${run.failures.map(f => `- ${f}`).join('\n')}\n` : 'Byte counts verified in every sample (bulk: sent == received; connection rate: every 64-byte echo compared; memory: every held connection echoed 16 bytes end to end).\n')
  }

  const refCols = (t, p, f) => [hasD ? fmt(paired(t, p, 'direct', f)) : '–', hasH ? fmt(paired(t, p, 'haproxy', f)) : '–']
  const present = (t) => names.filter(p => S[t][p]?.length)

  // ---- throughput
  if (S.thr1 && (present('thr1').length || present('thr8').length)) {
    w('## Bulk throughput')
    w()
    w('Gbit/s at the receiver (backend) over the timed window; after it the client shuts down and the harness checks bytes sent == bytes received. Proxy CPU = utime+stime (+ reaped children) of the proxy\'s process tree from /proc, per GB relayed; "CPUs busy" = proxy CPU-seconds per second.')
    w()
    const rows = []
    for (const p of names) {
      if (!S.thr1[p] && !S.thr8[p]) continue
      const row = [p]
      for (const t of ['thr1', 'thr8']) {
        const g = val(t, p, 'gbps')
        const cpuGb = median((S[t][p] ?? []).map(s => (p === 'direct' ? NaN : s.proxy_cpu / (s.bytes / 1e9))))
        const busy = median((S[t][p] ?? []).map(s => (p === 'direct' ? NaN : s.proxy_cpu / s.seconds)))
        row.push(`${fmt(median(g))}${fmtRange(g)}`, ...refCols(t, p, (a, b) => a.gbps / b.gbps), fmt(cpuGb), fmt(busy))
      }
      rows.push(row)
    }
    table(['proxy', '1 stream', '× direct', '× haproxy', 'CPU s/GB', 'CPUs busy', '8 streams', '× direct', '× haproxy', 'CPU s/GB', 'CPUs busy'], rows)
  }

  // ---- connection rate
  if (present('connrate').length) {
    w('## Connection rate')
    w()
    w('50 concurrent clients, each: connect, send 64 B, read the 64 B echo and compare it, close. Failures = connect errors, resets, early EOF, 3 s timeouts, echo mismatches (all samples, warm-up included).')
    w()
    const rows = names.filter(p => S.connrate[p]).map(p => {
      const c = val('connrate', p, 'cps')
      const errs = (S.connrate[p]).reduce((x, s) => x + (s.errors ?? 0), 0)
      const kinds = ['connect', 'reset', 'eof', 'timeout', 'mismatch'].map(k => [k, S.connrate[p].reduce((x, s) => x + (s[`err_${k}`] ?? 0), 0)]).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(', ')
      const ms = median(S.connrate[p].map(s => (p === 'direct' ? NaN : (s.proxy_cpu * 1000) / (s.conns / 1000))))
      return [p, `${fmt(median(c), 0)}${fmtRange(c, 0)}`, ...refCols('connrate', p, (a, b) => a.cps / b.cps), hasS ? fmt(paired('connrate', p, 'socat', (a, b) => a.cps / b.cps)) : '–',
        `${errs}${kinds ? ` (${kinds})` : ''}`, `${fmt(median(val('connrate', p, 'p50_ms')))} / ${fmt(median(val('connrate', p, 'p99_ms')))}`, fmt(ms, 0)]
    })
    table(['proxy', 'conn/s (min–max)', '× direct', '× haproxy', '× socat', 'failures (all samples)', 'conn p50 / p99 ms', 'proxy CPU ms per 1k conn'], rows)
  }

  // ---- latency
  if (present('latency').length) {
    w('## Latency')
    w()
    w(`64-byte ping-pong over one connection, ${o.latencyCount} round trips after ${Math.min(1000, o.latencyCount)} warm-up, ${run.pinCpu ? `proxy (all threads) and load generator pinned to CPU ${run.pinCpu}: cross-CPU wake-ups cost 60–90 µs on this VM and would otherwise dominate (see perf-baseline)` : 'unpinned'}. µs.`)
    w()
    const dP50 = median(val('latency', 'direct', 'p50_us'))
    const rows = names.filter(p => S.latency[p]).map(p => {
      const p50 = val('latency', p, 'p50_us'), p99 = val('latency', p, 'p99_us')
      return [p, `${fmt(median(p50), 1)}${fmtRange(p50, 1)}`, `${fmt(median(p99), 1)}${fmtRange(p99, 1)}`, fmt(median(val('latency', p, 'p999_us')), 0),
        hasD ? fmt(median(p50) - dP50, 1) : '–', ...refCols('latency', p, (a, b) => b.p50_us / a.p50_us),
        hasH ? fmt(paired('latency', p, 'haproxy', (a, b) => a.p99_us / b.p99_us)) : '–']
    })
    table(['proxy', 'p50', 'p99', 'p99.9', 'added p50 vs direct', 'p50 speed × direct', 'p50 speed × haproxy', 'p99 / haproxy p99 (≤ 1.25 = target)'], rows)
  }

  // ---- memory
  if (Object.keys(run.mem).length) {
    w('## Memory')
    w()
    w(`Fresh proxy process, idle; then ${o.memConns} connections opened through it (64 at a time), each verified end to end with a 16-byte echo and held idle; measured 1 s later; then closed, and measured again 1 s later. RSS and PSS are summed over the proxy's process tree (/proc/PID/status, smaps_rollup); per connection = PSS growth over idle / connections held. Kernel socket buffers are not included for anyone.${o.memRounds > 1 ? ` Rounds 2–${o.memRounds} repeat this on the same process.` : ''}`)
    w()
    const rows = []
    for (const [p, m] of Object.entries(run.mem)) {
      m.rounds.forEach((r, i) => {
        const per = r.during && r.hold.held ? (r.during.pss - m.idle.pss) / r.hold.held : NaN
        rows.push([i ? '' : p, String(i + 1), i ? '' : `${mb(m.idle.rss)} / ${mb(m.idle.pss)}`, `${mb(r.during?.rss)} / ${mb(r.during?.pss)}`, kib(per),
          `${r.hold.held ?? '?'}${r.hold.failed ? ` (${r.hold.failed} failed)` : ''}`, String(r.during?.procs ?? '–'), String(r.fds || '–'),
          `${mb(r.after.rss)} / ${mb(r.after.pss)}`, String(r.hold.backend_left ?? '?')])
      })
    }
    table(['proxy', 'round', 'idle RSS / PSS MB', 'with conns RSS / PSS MB', 'per connection (PSS Δ)', 'held', 'processes', 'open fds', 'after close RSS / PSS MB', 'upstreams left open after close'], rows)
    // A garbage-collected heap grows lazily: round 2 may sit higher than round 1
    // without a leak. "Growth" = the last round ends above every earlier round
    // (after close, PSS) by more than 512 B per connection.
    const growth = Object.entries(run.mem).filter(([, m]) => m.rounds.length > 1 && m.rounds.every(r => r.during)).map(([p, m]) => {
      const after = m.rounds.map(r => r.after.pss), last = after.at(-1), prevMax = Math.max(...after.slice(0, -1))
      const d = (last - prevMax) / o.memConns
      return `- ${p}: after close, PSS per round ${after.map(x => mb(x)).join(' → ')} MB; last round vs the highest earlier one: ${d >= 0 ? '+' : ''}${fmt(d, 0)} B/conn → ${d <= 512 ? 'no growth' : 'GROWS'}`
    })
    if (growth.length) w(`Growth check (a garbage-collected heap may settle higher after round 1 without leaking, so the last round is compared with the highest earlier one; > 512 B/conn = growth):\n\n${growth.join('\n')}\n`)
  }

  // ---- logging
  const logRows = Object.entries(run.logs).filter(([p]) => run.conns[p]).map(([p, l]) => [p, String(l.lines), `${mb(l.bytes)} MB`, String(run.conns[p]), fmt(l.lines / run.conns[p], 2), fmt(l.bytes / run.conns[p], 0)])
  if (logRows.length) {
    w('## Logging')
    w()
    w('What each proxy wrote to stderr/stdout (to a file under bench/.build/logs/) during the timed part; connections ≈ all connections the harness opened through it (its own load is included in every figure above: tcpproxy\'s logging is part of the product).')
    w()
    table(['proxy', 'log lines', 'log size', 'connections', 'lines per conn', 'bytes per conn'], logRows)
  }

  // ---- commands
  w('## Exact commands')
  w()
  w('```')
  w(`npm run bench --${run.cmdline.length ? ` ${run.cmdline.map(a => (/[\s"]/.test(a) ? `'${a}'` : a)).join(' ')}` : ''}`)
  w(`# load generator: cc -O2 -o bench/.build/tcpbench bench/tcpbench.c; backend (in-process) on 127.0.0.1:${run.target}, proxies on free ports`)
  for (const p of names) {
    if (defs[p].kind === 'direct') { w(`${p.padEnd(11)} (no proxy: tcpbench --connect ${run.target})`); continue }
    w(`${p.padEnd(11)} ${run.cmds[p] ?? defs[p].cmd}`)
  }
  const lp = run.target
  w(`# per sample (PORT = the proxy's listen port, PID = its pid):`)
  w(`tcpbench thr       --target ${lp} --connect PORT --streams 1|8 --seconds ${o.seconds} --warmup ${o.warmup} --proxy-pid PID`)
  if (Object.keys(run.prewarmErrors).length) w(`tcpbench connrate  --target ${lp} --connect PORT --proxy-pid PID --seconds ${o.prewarm} --warmup 0 --concurrency 50   # once per proxy before the timed figures, untimed`)
  w(`tcpbench connrate  --target ${lp} --connect PORT --concurrency 50 --seconds ${o.seconds} --warmup ${o.warmup} --proxy-pid PID`)
  w(`${run.pinCpu ? `taskset -a -p -c ${run.pinCpu} PID; ` : ''}tcpbench latency --target ${lp} --connect PORT --count ${o.latencyCount} --warmup-count ${Math.min(1000, o.latencyCount)}${run.pinCpu ? ` --cpu ${run.pinCpu}` : ''}`)
  w(`tcpbench hold      --target ${lp} --connect PORT --conns ${o.memConns} --seconds 120 --conn-timeout 10   # fresh proxy; closed via stdin after measuring`)
  w(`tcpbench halfclose --target ${lp} --connect PORT --tries ${o.halfcloseTries} --conn-timeout 3`)
  w('```')
  w()
  if (names.includes('haproxy') && defs.haproxy.config) {
    w('HAProxy configuration (as written to bench/.build/haproxy-PORT.cfg):')
    w()
    w('```')
    w(defs.haproxy.config('{LISTEN}', run.target).trimEnd())
    w('```')
    w()
  }
  return out.join('\n') + '\n'
}

main().catch((e) => { log(`bench: ${e.stack ?? e}`); killAll('SIGKILL'); process.exit(1) })
