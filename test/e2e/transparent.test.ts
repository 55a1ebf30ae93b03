/**
 * Transparent proxying end to end through bin/tcpproxy: redirect-mode,
 * forge-addr, forge-port, transparent (TPROXY) listeners and the redirect
 * loop check, on a router between network namespaces this test makes
 * (test/fixtures/netns.ts), with the firewall rules of the man page's
 * example. Started as root, so the relays run in a worker that is `nobody`
 * with CAP_NET_ADMIN alone. Needs root, iproute2 and iptables; says why it
 * skips otherwise.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { BIN, ROOT, backend, freePort, tcpproxy, viaInetd, type Run } from '../fixtures/harness.js'
import { Fixture, NS, clientTrip, has, inNs, isRoot, namespaceSkip, setUpNamespaces, unmapped, type Endpoint } from '../fixtures/netns.js'
import { nativeAvailable } from '../../lib/native/addon.js'

const run = promisify(execFile)

/** The router's rules (iptables; ip6tables takes the same), as the man page's example gives them. */
const RULES = ['iptables', 'ip6tables'].flatMap(cmd => [
  `${cmd} -t nat -A PREROUTING -p tcp --dport 80 -j REDIRECT --to-ports 8080`,
  `${cmd} -t nat -A PREROUTING -p tcp --dport 81 -j REDIRECT --to-ports 8081`,
  `${cmd} -t nat -A PREROUTING -p tcp --dport 83 -j REDIRECT --to-ports 8083`,
  `${cmd} -t mangle -A PREROUTING -p tcp -m socket --transparent -j MARK --set-mark 1`,
  `${cmd} -t mangle -A PREROUTING -p tcp --dport 82 -j TPROXY --on-port 8082 --tproxy-mark 1`,
  // A loop: the proxy's own connections to port 84 are sent back to it.
  `${cmd} -t nat -A PREROUTING -p tcp --dport 84 -j REDIRECT --to-ports 8080`,
  `${cmd} -t nat -A OUTPUT -p tcp --dport 84 -j REDIRECT --to-ports 8080`,
])

const CONFIG = (handler: string): string => `# the router's tcpproxy
port 8080
interface *
server 10.200.2.2:81
redirect-mode forward
send-proxy v1

port 8081
interface *
redirect-mode forward-only
forge-addr yes

port 8082
interface *
transparent yes
redirect-mode forward-only
forge-addr yes
forge-port yes

port 8083
interface *
redirect-mode accept
exec ${handler}
`

/**
 * The handler shows what it learnt, who it runs as, and its capabilities;
 * it reads the client's line first (closing with unread data would reset).
 */
const HANDLER = `#!/bin/sh
cat >/dev/null
echo "$PROXY_ORIGDST_SERVER $PROXY_ORIGDST_PORT $PROXY_CLIENT uid=$(id -u) $(grep CapEff /proc/self/status | tr -d '\\t')"
`

interface Reply {
  client: Endpoint
  /** What the origin saw (its first line), or null when the reply was not JSON. */
  seen: { remote: Endpoint; local: Endpoint } | null
  /** The rest: the origin's echo, or everything when not JSON. */
  text: string
}

/** One connection from ns client; a refused or reset one resolves with `error`. */
async function trip(host: string, port: number): Promise<Reply | { error: string }> {
  let done
  try {
    done = await clientTrip(host, port)
  } catch (err) {
    return { error: (err as { stdout?: string }).stdout ?? String(err) }
  }
  const [first, ...rest] = done.response.split('\n')
  try {
    const seen = JSON.parse(first as string) as { remote: Endpoint; local: Endpoint }
    return { client: done.local, seen: { remote: { ...seen.remote, address: unmapped(seen.remote.address) as string }, local: seen.local }, text: rest.join('\n') }
  } catch {
    return { client: done.local, seen: null, text: done.response }
  }
}

const esc = (text: string): string => text.replace(/[[\].]/g, '\\$&')

const reply = (r: Reply | { error: string }): Reply => {
  if ('error' in r) throw new Error(`the connection failed: ${r.error}`)
  return r
}

/** The /proc status fields of the tcpproxy worker (the supervisor's child). */
function workerStatus(supervisor: number): Record<string, string> {
  const children = readFileSync(`/proc/${supervisor}/task/${supervisor}/children`, 'utf8').trim().split(/\s+/)
  const worker = children.find(pid => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('worker-main'))
  const text = readFileSync(`/proc/${worker}/status`, 'utf8')
  return Object.fromEntries(text.split('\n').map(l => l.split(':\t') as [string, string]))
}

const skip = namespaceSkip(nativeAvailable(), ['iptables', 'ip6tables', 'id'])

t.test('redirect-mode, forge-addr, forge-port and TPROXY through a router', { skip }, async t => {
  if (!setUpNamespaces(t)) return
  for (const line of RULES) inNs(NS.router, line)

  const dir = mkdtempSync(join(tmpdir(), 'tcpproxy-tp-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // The worker (nobody) runs the handler.
  chmodSync(dir, 0o755)
  const handler = join(dir, 'show-origdst')
  writeFileSync(handler, HANDLER, { mode: 0o755 })
  const conf = join(dir, 'tcpproxy.conf')
  writeFileSync(conf, CONFIG(handler))

  const origin = new Fixture(NS.origin, ['origin', '80', '81', '82', '84'], false)
  t.teardown(() => origin.stop())
  await origin.waitFor(e => e.event === 'ready', 'the origin server to listen', 15_000)

  const proxy: Run = tcpproxy(['-d', '-c', conf], { prefix: ['ip', 'netns', 'exec', NS.router] })
  t.teardown(async () => {
    proxy.proc.kill('SIGTERM')
    setTimeout(() => proxy.proc.kill('SIGKILL'), 15_000).unref()
    await proxy.exited
  })
  await proxy.waitFor(/ ready$/, 30_000)

  const status = workerStatus(proxy.proc.pid as number)
  t.match(status.Uid, /^65534\t65534\t65534\t65534$/, 'the worker runs as nobody')
  t.equal(status.CapEff, '0000000000001000', 'with CAP_NET_ADMIN alone, effective...')
  t.equal(status.CapPrm, '0000000000001000', '...and permitted')
  t.equal(status.CapInh, '0000000000000000', 'nothing inheritable')

  for (const v of [
    { family: 4, client: '10.200.1.2', router: '10.200.2.1', origin: '10.200.2.2', proxy: '10.200.1.1', tcp: 'TCP4' },
    { family: 6, client: 'fd00:200:1::2', router: 'fd00:200:2::1', origin: 'fd00:200:2::2', proxy: 'fd00:200:1::1', tcp: 'TCP6' },
  ]) {
    const ip = `IPv${v.family}`
    const at = (a: string, p: number): string => (v.family === 6 ? `[${a}]:${p}` : `${a}:${p}`)

    // -r forward: a REDIRECTed connection goes on to its original destination,
    // which the PROXY header sent onward names.
    let r = reply(await trip(v.origin, 80))
    t.same(r.seen?.local.port, 80, `${ip} forward: the origin's port 80 answered`)
    t.equal(r.seen?.remote.address, v.router, `${ip} the origin sees the router (no forging)`)
    t.equal(r.text, `PROXY ${v.tcp} ${v.client} ${v.origin} ${r.client.port} 80\r\nhello through the proxy\n`, `${ip} send-proxy names the original destination`)
    await proxy.waitFor(new RegExp(`\\+INFO: connection redirected, origdst: ${esc(at(v.origin, 80))}, id= \\d+$`))

    // Not redirected: the configured server.
    r = reply(await trip(v.proxy, 8080))
    t.same(r.seen?.local.port, 81, `${ip} forward, direct connection: the configured server`)
    t.equal(r.text, `PROXY ${v.tcp} ${v.client} ${v.proxy} ${r.client.port} 8080\r\nhello through the proxy\n`)

    // forward-only + forge-addr.
    r = reply(await trip(v.origin, 81))
    t.same(r.seen?.local.port, 81)
    t.equal(r.seen?.remote.address, v.client, `${ip} forge-addr: the origin sees the client's address`)
    t.not(r.seen?.remote.port, r.client.port, 'from a port of the kernel\'s choice')
    t.equal(r.text, 'hello through the proxy\n')

    // forward-only refuses a direct connection.
    const direct = await trip(v.proxy, 8081)
    t.ok('error' in direct || direct.text === '', `${ip} forward-only: a direct connection is closed unanswered`)
    await proxy.waitFor(new RegExp(`-ERR: connection not redirected, client= ${v.client}, id= \\d+$`))

    // TPROXY + forge-addr + forge-port: the client's address and port.
    r = reply(await trip(v.origin, 82))
    t.same(r.seen?.local.port, 82)
    t.same(r.seen?.remote, { address: v.client, port: r.client.port }, `${ip} TPROXY, forge-port: the client's address and port`)
    t.equal(r.text, 'hello through the proxy\n')

    // accept + a handler: the environment names the original destination.
    r = reply(await trip(v.origin, 83))
    t.equal(r.text, `${v.origin} 83 ${v.client} uid=65534 CapEff:0000000000000000\n`, `${ip} PROXY_ORIGDST_*; the handler is nobody without capabilities`)

    // The loop: forwarding to :84 comes straight back; refused, once.
    const before = proxy.lines.filter(l => /redirect loop refused/.test(l)).length
    const loop = await trip(v.origin, 84)
    t.ok('error' in loop || loop.text === '', `${ip} a redirect loop ends the connection`)
    await proxy.waitFor(
      new RegExp(
        `-ERR: redirect loop refused: origdst: ${esc(at(v.origin, 84))}, client= ${esc(v.router)}: ` +
          `the connection is this proxy's own upstream connection, redirected back, id= \\d+$`,
      ),
    )
    t.equal(proxy.lines.filter(l => /redirect loop refused/.test(l)).length, before + 1, 'one loop line: the loop went round once')
  }

  // Still serving after all that.
  t.equal(reply(await trip('10.200.2.2', 80)).text.endsWith('hello through the proxy\n'), true, 'still serving')
  t.notOk(proxy.lines.some(l => /can't connect|connection error/.test(l)), 'no upstream connection failed')
})

const setprivSkip = !isRoot ? 'needs root to drop capabilities' : !has('setpriv') ? 'needs setpriv (util-linux)' : !nativeAvailable() ? 'the native addon is not built' : false

t.test('without CAP_NET_ADMIN, forge-addr and transparent stop the start with one clear line', { skip: setprivSkip }, async t => {
  const drop = ['--inh-caps=-all', '--bounding-set=-net_admin,-net_raw', '--']
  const start = async (args: string[]): Promise<{ code: number; stderr: string }> => {
    try {
      await run('setpriv', [...drop, process.execPath, BIN, ...args], { cwd: ROOT, timeout: 30_000 })
      return { code: 0, stderr: '' }
    } catch (err) {
      const e = err as { code: number; stderr: string }
      return { code: e.code, stderr: e.stderr }
    }
  }
  const listen = `127.0.0.1:${await freePort()}`
  const denied = 'transparent proxying unavailable: setsockopt(IP_TRANSPARENT): Operation not permitted (IP_TRANSPARENT needs CAP_NET_ADMIN or CAP_NET_RAW)'
  // Staying root (-u root): one process, which lacks the capability.
  let r = await start(['-d', '-u', 'root', '--forge-addr', '-b', listen, '127.0.0.1:9'])
  t.same(r, { code: 1, stderr: `tcpproxy: option --forge-addr: ${denied}\n` })
  r = await start(['-d', '-u', 'root', '--transparent', '-b', listen, '127.0.0.1:9'])
  t.same(r, { code: 1, stderr: `tcpproxy: option --transparent: ${denied}\n` })
  // The usual root start: the worker cannot keep what the bounding set took away.
  r = await start(['-d', '--forge-addr', '-b', listen, '127.0.0.1:9'])
  t.equal(r.code, 1)
  t.match(r.stderr, /^tcpproxy: cannot keep CAP_NET_ADMIN: capset: Operation not permitted\n$/)
})

t.test('a reload cannot bring forge-addr to a worker started without CAP_NET_ADMIN', { skip: setprivSkip }, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'tcpproxy-tp-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const conf = join(dir, 'tcpproxy.conf')
  const port = await freePort()
  const text = `port ${port}\ninterface 127.0.0.1\nserver 127.0.0.1:9\n`
  writeFileSync(conf, text)
  // Started as root: a supervisor and a worker that is nobody without capabilities.
  const proxy = tcpproxy(['-d', '-c', conf])
  t.teardown(async () => {
    proxy.proc.kill('SIGTERM')
    await proxy.exited
  })
  await proxy.waitFor(/ ready$/, 15_000)
  t.equal(workerStatus(proxy.proc.pid as number).CapEff, '0000000000000000')
  writeFileSync(conf, `${text}forge-addr yes\n`)
  proxy.proc.kill('SIGHUP')
  await proxy.waitFor(
    /-ERR: reload failed, keeping the old configuration: forge-addr needs a restart: the worker was started without CAP_NET_ADMIN$/,
    10_000,
  )
})

t.test('inetd mode started as root keeps CAP_NET_ADMIN for forge-addr, and forges', { skip: setprivSkip }, async t => {
  let seen = ''
  const up = await backend(s => {
    seen = `${s.remoteAddress}`
    s.on('data', () => {}).on('end', () => s.end('forged'))
  })
  t.teardown(() => up.close())
  const { reply: r, code, log } = await viaInetd(['-d', '--forge-addr', `127.0.0.1:${up.port}`], 'x', { localAddress: '127.0.0.23' })
  t.equal(r.data.toString(), 'forged')
  t.equal(code, 0, log)
  t.equal(seen, '127.0.0.23', "the server saw the client's address, not the proxy's 127.0.0.1")
})
