/**
 * End to end: `keepalive` puts SO_KEEPALIVE with TCP_KEEPIDLE on both
 * sockets of a relayed session, read back from the kernel (ss -o shows the
 * keepalive timer), whoever relays (the relay thread or the event loop).
 */
import t from 'tap'
import { once } from 'node:events'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect, type Socket } from 'node:net'
import { backend, reachableDir, startProxy } from '../fixtures/harness.js'

/** `timer:(...)` of the established socket between local port `from` and peer port `to`, or ''. */
function timer(from: number, to: number): string {
  const out = spawnSync('ss', ['-tnoH', 'state', 'established', `( sport = :${from} and dport = :${to} )`]).stdout.toString()
  return /timer:\(([^)]*)\)/.exec(out)?.[1] ?? ''
}

const noSs = spawnSync('ss', ['-V']).error ? 'ss is not installed (apt-get install iproute2)' : false

for (const [how, extra] of [['the relay thread', []], ['the event loop', ['--no-relay-thread']]] as const) {
  t.test(`keepalive on the client's and the server's socket, relayed by ${how}`, { skip: noSs }, async t => {
    const held: Socket[] = []
    const up = await backend(s => void held.push(s.on('error', () => {})))
    t.teardown(() => up.close())
    const dir = reachableDir(t)
    const conf = join(dir, 'keepalive.conf')
    const p = await startProxy(port => {
      writeFileSync(conf, `keepalive 0\nport ${port}\n  interface 127.0.0.1\n  keepalive 900\n  server 127.0.0.1:${up.port}\n`)
      return ['-d', ...extra, '-u', 'root', '-c', conf]
    })
    t.teardown(p.stop)
    const c = connect({ port: p.port, host: '127.0.0.1' })
    await once(c, 'connect')
    t.teardown(() => c.destroy())
    await p.waitFor(/connect: client/)
    for (let i = 0; i < 100 && held.length === 0; i++) await new Promise(r => setTimeout(r, 20))
    const upstream = held[0] as Socket
    // Ours: from the listening port to the client, and from the upstream connection's port to the server.
    t.match(timer(p.port, c.localPort as number), /^keepalive,1[45]min/, "the client's socket")
    t.match(timer(upstream.remotePort as number, up.port), /^keepalive,1[45]min/, "the server's socket")
    t.equal(timer(c.localPort as number, p.port), '', 'the test client has none (the check can fail)')
  })
}

t.test('a reload changes keepalive for new sessions; an open one keeps its sockets as they are', { skip: noSs }, async t => {
  const up = await backend(s => void s.on('error', () => {}))
  t.teardown(() => up.close())
  const dir = reachableDir(t)
  const conf = join(dir, 'keepalive.conf')
  const write = (port: number, seconds: number): void => writeFileSync(conf, `port ${port}\n  interface 127.0.0.1\n  keepalive ${seconds}\n  server 127.0.0.1:${up.port}\n`)
  const p = await startProxy(port => {
    write(port, 900)
    return ['-d', '-u', 'root', '-c', conf]
  })
  t.teardown(p.stop)
  const open = async (): Promise<Socket> => {
    const c = connect({ port: p.port, host: '127.0.0.1' })
    await once(c, 'connect')
    t.teardown(() => c.destroy())
    return c
  }
  const before = await open()
  await p.waitFor(/connect: client.*id= 1/)
  write(p.port, 0)
  p.proc.kill('SIGHUP')
  await p.waitFor(/reloaded/)
  const after = await open()
  await p.waitFor(/connect: client.*id= 2/)
  t.match(timer(p.port, before.localPort as number), /^keepalive,1[45]min/, 'the open session keeps keepalive')
  t.equal(timer(p.port, after.localPort as number), '', 'the new one has none')
})
