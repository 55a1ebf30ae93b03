#!/usr/bin/env node
/**
 * Memory per slow-reader session (issue #13, item 17b): N clients connect
 * through tcpproxy and never read, while the upstream sends as fast as it
 * may. Prints the proxy's RSS growth (supervisor and worker together) per
 * session, with the relay thread and with --no-relay-thread.
 *
 *   node bench/slow-readers.mjs [sessions=40] [seconds=3]
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, readdirSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

const sessions = Number(process.argv[2] ?? 40)
const seconds = Number(process.argv[3] ?? 3)
const BIN = fileURLToPath(new URL('../bin/tcpproxy', import.meta.url))
const block = Buffer.alloc(256 * 1024, 'x')

const up = createServer(s => {
  s.on('error', () => {})
  const push = () => {
    while (s.write(block));
    s.once('drain', push)
  }
  push()
})
up.listen(0, '127.0.0.1')
await once(up, 'listening')

/** RSS in bytes of `pid` and its children. */
function rss(pid) {
  const pids = [pid, ...readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number)]
  return pids.reduce((n, p) => n + Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))[1]) * 1024, 0)
}
const sleep = ms => new Promise(r => setTimeout(r, ms))

for (const extra of [[], ['--no-relay-thread']]) {
  const port = 20000 + Math.floor(Math.random() * 20000)
  const proc = spawn(process.execPath, [BIN, '-d', ...extra, '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.address().port}`], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  proc.stderr.on('data', d => (log += d))
  for (let i = 0; i < 100 && !/ready/.test(log); i++) await sleep(50)
  // One session first, so the thread and its buffer exist before the baseline.
  const warm = connect({ port, host: '127.0.0.1' })
  await once(warm, 'data')
  warm.destroy()
  await sleep(500)
  const before = rss(proc.pid)
  const clients = []
  for (let i = 0; i < sessions; i++) {
    const c = connect({ port, host: '127.0.0.1' })
    c.pause()
    c.on('error', () => {})
    clients.push(c)
  }
  await sleep(seconds * 1000)
  const after = rss(proc.pid)
  console.log(`${extra.join(' ') || 'relay thread'}: ${sessions} slow readers, RSS +${((after - before) / 1024 / 1024).toFixed(1)} MiB, ${((after - before) / sessions / 1024).toFixed(0)} KiB per session`)
  for (const c of clients) c.destroy()
  proc.kill('SIGTERM')
  await once(proc, 'exit')
}
up.close()
process.exit(0)
