/**
 * Transparent proxying (lib/transparent/sockets.ts and its addon, lib/native/):
 * the addon missing, the functions on loopback, and end to end through a
 * router with real REDIRECT and TPROXY rules, between network namespaces
 * this test makes and removes (needs root, iproute2, iptables and nftables).
 *
 * Topology (IPv4 and IPv6 on each link):
 *
 *   ns client                ns router                     ns origin
 *   10.200.1.2    ----  10.200.1.1 | 10.200.2.1   ----    10.200.2.2
 *   fd00:200:1::2       fd00:200:1::1 | fd00:200:2::1     fd00:200:2::2
 *
 * The router does not forward: the client reaches the origin only through
 * the proxy (test/fixtures/tproxy-forwarder.mjs), which listens on
 *   8080  REDIRECT target, upstream from the router's own address
 *   8081  REDIRECT target, upstream from the client's address (forge_addr)
 *   8082  TPROXY target (an IP_TRANSPARENT listener), upstream from the
 *         client's address and port (forge_addr + forge_port)
 *
 * The firewall commands, as run on the router (the test checks that it runs
 * exactly these). Policy routing, for both rule sets: a packet marked 1 is
 * delivered locally, whatever its destination (the origin's replies to the
 * forged client address, TPROXY'd connections):
 *
 *   ip rule add fwmark 1 lookup 100
 *   ip route add local 0.0.0.0/0 dev lo table 100
 *   ip -6 rule add fwmark 1 lookup 100
 *   ip -6 route add local ::/0 dev lo table 100
 *
 * With iptables (ip6tables takes the same rules for IPv6):
 *
 *   iptables -t nat -A PREROUTING -p tcp --dport 80 -j REDIRECT --to-ports 8080
 *   iptables -t nat -A PREROUTING -p tcp --dport 81 -j REDIRECT --to-ports 8081
 *   iptables -t mangle -A PREROUTING -p tcp -m socket --transparent -j MARK --set-mark 1
 *   iptables -t mangle -A PREROUTING -p tcp --dport 82 -j TPROXY --on-port 8082 --tproxy-mark 1
 *   ip6tables -t nat -A PREROUTING -p tcp --dport 80 -j REDIRECT --to-ports 8080
 *   ip6tables -t nat -A PREROUTING -p tcp --dport 81 -j REDIRECT --to-ports 8081
 *   ip6tables -t mangle -A PREROUTING -p tcp -m socket --transparent -j MARK --set-mark 1
 *   ip6tables -t mangle -A PREROUTING -p tcp --dport 82 -j TPROXY --on-port 8082 --tproxy-mark 1
 *
 * Or with nftables, one table for both families (`nft -f FILE`):
 *
 *   table inet tcpproxy {
 *     chain nat {
 *       type nat hook prerouting priority dstnat; policy accept;
 *       tcp dport 80 redirect to :8080
 *       tcp dport 81 redirect to :8081
 *     }
 *     chain mangle {
 *       type filter hook prerouting priority mangle; policy accept;
 *       meta l4proto tcp socket transparent 1 meta mark set 1 accept
 *       meta l4proto tcp tcp dport 82 tproxy to :8082 meta mark set 1 accept
 *     }
 *   }
 *
 * The `socket --transparent` / `socket transparent 1` rule marks the packets
 * of connections that have a transparent socket on the router: the replies
 * to a forged source address, and the rest of a TPROXY'd connection.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect, createServer, Socket, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import {
  FIXTURE,
  Fixture,
  NS,
  POLICY_ROUTING,
  clientTrip,
  has,
  inNs,
  isRoot,
  namespaceSkip,
  setUpNamespaces,
  unmapped,
  within,
  type Endpoint,
} from '../fixtures/netns.js'
import { DEFAULT_SETTINGS, type ServiceDef } from '../../lib/config/config.js'
import { NATIVE_PATH, loadNative, nativeAvailable } from '../../lib/native/addon.js'
import {
  checkTransparentSupport,
  needsNetAdmin,
  originalDestination,
  probeTransparent,
  setTransparent,
  transparentConnect,
} from '../../lib/transparent/sockets.js'

const SELF = fileURLToPath(import.meta.url)
/** lib/transparent as the fixture imports it, with this runner's TypeScript loader. */
const MODULE = new URL('../../lib/transparent/sockets.ts', import.meta.url).href
const run = promisify(execFile)

const IPTABLES = ['iptables', 'ip6tables'].flatMap(cmd => [
  `${cmd} -t nat -A PREROUTING -p tcp --dport 80 -j REDIRECT --to-ports 8080`,
  `${cmd} -t nat -A PREROUTING -p tcp --dport 81 -j REDIRECT --to-ports 8081`,
  `${cmd} -t mangle -A PREROUTING -p tcp -m socket --transparent -j MARK --set-mark 1`,
  `${cmd} -t mangle -A PREROUTING -p tcp --dport 82 -j TPROXY --on-port 8082 --tproxy-mark 1`,
])
const NFT_RULESET = `table inet tcpproxy {
  chain nat {
    type nat hook prerouting priority dstnat; policy accept;
    tcp dport 80 redirect to :8080
    tcp dport 81 redirect to :8081
  }
  chain mangle {
    type filter hook prerouting priority mangle; policy accept;
    meta l4proto tcp socket transparent 1 meta mark set 1 accept
    meta l4proto tcp tcp dport 82 tproxy to :8082 meta mark set 1 accept
  }
}`


function listen(server: Server, ...args: unknown[]): Promise<number> {
  ;(server.listen as (...a: unknown[]) => void)(...args)
  return within(5000, 'listen', once(server, 'listening')).then(() => (server.address() as { port: number }).port)
}

/** A loopback server whose connections are handed to `onConn`. */
async function loopbackServer(host: string, onConn: (s: Socket) => void = s => s.end()): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, onConn)
  const port = await listen(server, 0, host)
  return { server, port }
}

// -------------------------------------------------------------------------
// Without the addon

t.test('without the addon, only these functions fail, with ERR_NOT_SUPPORTED', async t => {
  // First use loads the default path; the answer must agree with the file.
  let built = true
  try {
    readFileSync(NATIVE_PATH)
  } catch {
    built = false
  }
  t.equal(nativeAvailable(), built, `the addon ${built ? 'is' : 'is not'} built at ${NATIVE_PATH}`)

  t.equal(loadNative('/nonexistent/tcpproxy_native.node'), false)
  t.equal(nativeAvailable(), false)
  const notSupported = {
    name: 'TcpproxyError',
    code: 'ERR_NOT_SUPPORTED',
    message: /^transparent proxying needs the native addon: Cannot find module '\/nonexistent\/tcpproxy_native\.node' \(.*npm rebuild tcpproxy/,
  }
  t.throws(() => originalDestination(new Socket()), notSupported)
  t.throws(() => probeTransparent(4), notSupported)
  t.throws(() => setTransparent(createServer()), notSupported)
  t.throws(
    () => transparentConnect({ family: 4, localAddress: '127.0.0.1', localPort: 0, host: '127.0.0.1', port: 9 }),
    notSupported,
  )
  t.equal(loadNative(), built, 'the default path loads again')
})

// -------------------------------------------------------------------------
// On loopback

const native = nativeAvailable()
let privileged = false
if (native) {
  try {
    probeTransparent(4)
    privileged = true
  } catch {
    privileged = false
  }
}

t.test('originalDestination on loopback', { skip: native ? false : 'the native addon is not built' }, async t => {
  for (const host of ['127.0.0.1', '::1']) {
    const accepted: Socket[] = []
    const { server, port } = await loopbackServer(host, s => accepted.push(s))
    t.teardown(() => server.close())
    const client = connect({ host, port })
    t.teardown(() => client.destroy())
    await within(5000, 'connect', once(client, 'connect'))
    await within(5000, 'accept', new Promise(r => (accepted.length > 0 ? r(null) : server.once('connection', r))))
    const serverSide = accepted[0] as Socket
    t.equal(originalDestination(serverSide), null, `a direct connection to ${host} was not redirected`)
    t.equal(originalDestination(client), null, `nor its client side`)
    serverSide.destroy()
    await once(serverSide, 'close')
    t.throws(() => originalDestination(serverSide), {
      code: 'ERR_RUNTIME',
      message: 'the socket has no file descriptor (not open, or already closed)',
    })
  }

  // Not an IP socket at all.
  const dir = mkdtempSync(join(tmpdir(), 'tpx-unix-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'sock')
  const unix = createServer(s => s.end())
  await listen(unix, path)
  t.teardown(() => unix.close())
  const client = connect(path)
  t.teardown(() => client.destroy())
  await within(5000, 'unix connect', once(client, 'connect'))
  t.throws(() => originalDestination(client), {
    code: 'ERR_RUNTIME',
    message: /^cannot read the original destination: getsockname: Address family not supported/,
  })
  t.throws(() => setTransparent(unix), {
    code: 'ERR_RUNTIME',
    message: /^transparent proxying unavailable: setsockopt\(IP_TRANSPARENT\): Address family not supported/,
  })
  t.throws(() => setTransparent(createServer()), { code: 'ERR_RUNTIME', message: /no file descriptor/ })
})

t.test(
  'transparentConnect and setTransparent on loopback',
  { skip: !native ? 'the native addon is not built' : !privileged ? 'IP_TRANSPARENT needs CAP_NET_ADMIN or CAP_NET_RAW' : false },
  async t => {
    t.doesNotThrow(() => probeTransparent(4))
    t.doesNotThrow(() => probeTransparent(6))

    const seen: Array<{ address: string | undefined; port: number | undefined }> = []
    const { server, port } = await loopbackServer('127.0.0.1', s => {
      seen.push({ address: s.remoteAddress, port: s.remotePort })
      s.on('data', d => s.write(d))
      s.on('end', () => s.end())
    })
    t.teardown(() => server.close())
    t.doesNotThrow(() => setTransparent(server), 'a listening server becomes transparent')

    const exchange = async (sock: Socket): Promise<string> => {
      const chunks: Buffer[] = []
      sock.on('data', c => chunks.push(c))
      await within(5000, 'transparent connect', once(sock, 'connect'))
      sock.end('ping')
      await within(5000, 'reply', once(sock, 'end'))
      sock.destroy()
      return Buffer.concat(chunks).toString()
    }

    // Any local port; an IPv4-mapped source and destination are taken as IPv4.
    const a = transparentConnect({ family: 4, localAddress: '::ffff:127.0.0.77', localPort: 0, host: '::ffff:127.0.0.1', port })
    const remote = once(a, 'connect').then(() => a.remoteAddress)
    t.equal(await exchange(a), 'ping', 'data goes both ways, half-close included')
    t.equal(seen.at(-1)?.address, '127.0.0.77', 'the server sees the chosen source address')
    t.equal(await remote, '127.0.0.1', 'connected to the IPv4 address')

    // A fixed source port, and a host name to look up first.
    const fixed = await loopbackServer('127.0.0.1')
    fixed.server.close()
    const b = transparentConnect({ family: 4, localAddress: '127.0.0.78', localPort: fixed.port, host: 'localhost', port })
    t.equal(await exchange(b), 'ping')
    t.equal(seen.at(-1)?.address, '127.0.0.78')
    t.equal(seen.at(-1)?.port, fixed.port, 'the server sees the chosen source port')

    // The source port is taken: 'error', asynchronously, as net.connect reports bind errors.
    const c = transparentConnect({ family: 4, localAddress: '127.0.0.1', localPort: port, host: '127.0.0.1', port })
    const [inUse] = (await within(5000, 'bind error', once(c, 'error'))) as [NodeJS.ErrnoException]
    t.equal(inUse.code, 'EADDRINUSE')
    t.equal(inUse.message, `cannot open a transparent socket from 127.0.0.1:${port}: bind: Address already in use`)
    t.ok(c.destroyed)

    // A refused connection is Node's own connect error.
    const closed = await loopbackServer('127.0.0.1')
    closed.server.close()
    await once(closed.server, 'close')
    const d = transparentConnect({ family: 4, localAddress: '127.0.0.79', localPort: 0, host: '127.0.0.1', port: closed.port })
    const [refused] = (await within(5000, 'refused', once(d, 'error'))) as [NodeJS.ErrnoException]
    t.equal(refused.code, 'ECONNREFUSED')
  },
)

const probeSkip = !native
  ? 'the native addon is not built'
  : privileged && !has('setpriv')
    ? 'needs setpriv (util-linux) to drop capabilities'
    : false

t.test('without CAP_NET_ADMIN and CAP_NET_RAW, IP_TRANSPARENT fails with ERR_PRIVILEGES', { skip: probeSkip }, async t => {
  let result: Record<string, { code?: string; message?: string } | null>
  if (!privileged) {
    // This process already lacks the capabilities.
    result = {}
    for (const family of [4, 6] as const) {
      try {
        probeTransparent(family)
        result[`probe${family}`] = null
      } catch (err) {
        result[`probe${family}`] = err as Error
      }
    }
  } else {
    // A child with both capabilities dropped from every set.
    const { stdout } = await run(
      'setpriv',
      ['--inh-caps=-all', '--bounding-set=-net_admin,-net_raw', '--', process.execPath, ...process.execArgv, FIXTURE, 'probe', MODULE],
      { timeout: 30_000 },
    )
    result = JSON.parse(stdout.trim().split('\n').at(-1) as string)
    t.match(result.setTransparent, {
      code: 'ERR_PRIVILEGES',
      message: 'transparent proxying unavailable: setsockopt(IP_TRANSPARENT): Operation not permitted (IP_TRANSPARENT needs CAP_NET_ADMIN or CAP_NET_RAW)',
    })
    t.match(result.connect, {
      code: 'EPERM',
      message: 'cannot open a transparent socket from 127.0.0.1:0: setsockopt(IP_TRANSPARENT): Operation not permitted',
    })
  }
  t.match(result.probe4, {
    code: 'ERR_PRIVILEGES',
    message: 'transparent proxying unavailable: setsockopt(IP_TRANSPARENT): Operation not permitted (IP_TRANSPARENT needs CAP_NET_ADMIN or CAP_NET_RAW)',
  })
  t.match(result.probe6, { code: 'ERR_PRIVILEGES', message: /setsockopt\(IPV6_TRANSPARENT\): Operation not permitted/ })
})

/** A service of a file (line > 0) or of the command line (line 0). */
const service = (settings: Partial<ServiceDef>, line = 7): ServiceDef => ({
  ...DEFAULT_SETTINGS,
  servers: [{ host: 'a.example', port: 25 }],
  port: 25,
  iface: null,
  ifaceText: '*',
  source: { file: line > 0 ? 'tcpproxy.conf' : 'option -b', line },
  ...settings,
})

t.test('checkTransparentSupport: no addon is a start-up error naming the service\'s line or option', async t => {
  t.equal(needsNetAdmin([service({}), service({ redirectMode: 'forward', transparent: true })]), false)
  t.equal(needsNetAdmin([service({}), service({ forgeAddr: true })]), true)
  // Services that use none of it need nothing, whatever the machine.
  t.doesNotThrow(() => checkTransparentSupport([service({})]))
  loadNative('/nonexistent/tcpproxy_native.node')
  t.teardown(() => void loadNative())
  t.doesNotThrow(() => checkTransparentSupport([service({})]))
  const missing = /transparent proxying needs the native addon: Cannot find module '\/nonexistent\/tcpproxy_native\.node' \(/
  for (const [settings, line, prefix] of [
    [{ redirectMode: 'forward' }, 7, 'tcpproxy.conf:7: redirect-mode forward: '],
    [{ redirectMode: 'accept', transparent: true }, 3, 'tcpproxy.conf:3: transparent: '],
    [{ forgeAddr: true }, 0, 'option --forge-addr: '],
    [{ transparent: true }, 0, 'option --transparent: '],
    [{ redirectMode: 'forward-only' }, 0, 'option -r: '],
  ] as Array<[Partial<ServiceDef>, number, string]>) {
    t.throws(() => checkTransparentSupport([service({}), service(settings, line)], false), {
      name: 'ConfigError',
      code: 'ERR_NOT_SUPPORTED',
      message: new RegExp(`^${prefix.replace(/[.]/g, '\\.')}${missing.source}`),
    })
  }
})

t.test('checkTransparentSupport with the addon: the privilege test only where it is needed', { skip: native ? false : 'the native addon is not built' }, async t => {
  t.doesNotThrow(() => checkTransparentSupport([service({ redirectMode: 'forward' })]), 'SO_ORIGINAL_DST needs no privilege')
  if (privileged) t.doesNotThrow(() => checkTransparentSupport([service({ forgeAddr: true }), service({ transparent: true })]))
  t.doesNotThrow(() => checkTransparentSupport([service({ forgeAddr: true })], false), 'no test when asked not to')
})

t.test(
  'dropKeepingNetAdmin: nobody with CAP_NET_ADMIN alone, or a clear error',
  { skip: !native ? 'the native addon is not built' : !isRoot || !privileged ? 'needs root with CAP_NET_ADMIN' : !has('setpriv') ? 'needs setpriv (util-linux)' : false },
  async t => {
    const keepcaps = async (prefix: string[]): Promise<Record<string, unknown>> => {
      const words = [...prefix, process.execPath, ...process.execArgv, FIXTURE, 'keepcaps', MODULE]
      const { stdout } = await run(words[0] as string, words.slice(1), { timeout: 30_000 })
      return JSON.parse(stdout.trim().split('\n').at(-1) as string)
    }
    const kept = await keepcaps([])
    t.same(kept, {
      event: 'keepcaps',
      failedDrop: 'rethrown as is',
      error: null,
      Uid: '65534\t65534\t65534\t65534',
      CapEff: '0000000000001000',
      CapPrm: '0000000000001000',
      CapInh: '0000000000000000',
      probe: null,
    })
    // CAP_NET_ADMIN taken from the bounding set: capset cannot give it back.
    const denied = await keepcaps(['setpriv', '--inh-caps=-all', '--bounding-set=-net_admin', '--'])
    t.match(denied, {
      failedDrop: 'rethrown as is',
      error: { code: 'ERR_PRIVILEGES', message: 'cannot keep CAP_NET_ADMIN: capset: Operation not permitted' },
      Uid: '65534\t65534\t65534\t65534',
      CapEff: '0000000000000000',
    })
  },
)

t.test('the firewall commands in the comment block are the ones the test runs', async t => {
  const header = readFileSync(SELF, 'utf8').split('*/')[0] as string
  const text = header
    .split('\n')
    .map(l => l.replace(/^ \*( {3})?/, ''))
    .join('\n')
  for (const command of [...POLICY_ROUTING, ...IPTABLES]) t.ok(text.split('\n').includes(command), command)
  t.ok(text.includes(NFT_RULESET), 'the nftables rule set')
})

// -------------------------------------------------------------------------
// End to end, between network namespaces

interface Trip {
  client: Endpoint
  /** What the origin server saw, or the proxy's own answer to a direct connection. */
  answer: Record<string, unknown>
  echo: string
  accept: Record<string, unknown>
}

/** One connection from ns client to HOST:PORT, and what each hop saw of it. */
async function trip(forwarder: Fixture, host: string, port: number): Promise<Trip> {
  const done = await clientTrip(host, port)
  const [first, ...rest] = done.response.split('\n')
  const accept = await forwarder.waitFor(
    e => e.event === 'accept' && (e.client as Endpoint).port === done.local.port,
    `the proxy's report of the connection from port ${done.local.port}`,
  )
  return { client: done.local, answer: JSON.parse(first as string), echo: rest.join('\n'), accept }
}

const e2eSkip = namespaceSkip(native, ['iptables', 'ip6tables', 'nft'])

t.test('end to end: REDIRECT, TPROXY and forged sources through a router', { skip: e2eSkip }, async t => {
  if (!setUpNamespaces(t)) return

  const origin = new Fixture(NS.origin, ['origin', '80', '81', '82'], false)
  t.teardown(() => origin.stop())
  const forwarder = new Fixture(NS.router, ['forwarder', MODULE], true)
  t.teardown(() => forwarder.stop())
  await origin.waitFor(e => e.event === 'ready', 'the origin server to listen', 15_000)
  await forwarder.waitFor(e => e.event === 'ready', 'the proxy to listen', 30_000)

  const rulesets = [
    {
      name: 'iptables',
      apply: (): void => IPTABLES.forEach(l => inNs(NS.router, l)),
      flush: (): void => {
        for (const cmd of ['iptables', 'ip6tables']) for (const table of ['nat', 'mangle']) inNs(NS.router, `${cmd} -t ${table} -F`)
      },
    },
    {
      name: 'nftables',
      apply: (): void => inNs(NS.router, 'nft -f -', NFT_RULESET),
      flush: (): void => inNs(NS.router, 'nft delete table inet tcpproxy'),
    },
  ]

  for (const rules of rulesets) {
    await t.test(`with ${rules.name}`, async t => {
      rules.apply()
      t.teardown(rules.flush)

      for (const v of [
        { family: 4, client: '10.200.1.2', router: '10.200.2.1', origin: '10.200.2.2', proxy: '10.200.1.1' },
        { family: 6, client: 'fd00:200:1::2', router: 'fd00:200:2::1', origin: 'fd00:200:2::2', proxy: 'fd00:200:1::1' },
      ]) {
        const seenBy = (trip: Trip): Endpoint => ({
          address: unmapped((trip.answer.remote as Endpoint).address) as string,
          port: (trip.answer.remote as Endpoint).port,
        })

        // REDIRECT: the original destination, and an upstream from the router.
        let r = await trip(forwarder, v.origin, 80)
        t.same(r.accept.original, { address: v.origin, port: 80, family: v.family }, `IPv${v.family} REDIRECT: originalDestination()`)
        t.equal(seenBy(r).address, v.router, `IPv${v.family} no forging: the origin sees the router`)
        t.equal(r.echo, 'hello through the proxy\n', 'the bytes went through and back')

        // forge_addr: the origin sees the client's address.
        r = await trip(forwarder, v.origin, 81)
        t.same(r.accept.original, { address: v.origin, port: 81, family: v.family })
        t.equal(seenBy(r).address, v.client, `IPv${v.family} forge_addr: the origin sees the client's address`)
        t.equal(r.echo, 'hello through the proxy\n')

        // TPROXY: no NAT, the local address is the original destination;
        // forge_addr + forge_port: the origin sees the client's address and port.
        r = await trip(forwarder, v.origin, 82)
        t.equal(r.accept.original, null, `IPv${v.family} TPROXY: originalDestination() is null`)
        t.same(
          { address: unmapped((r.accept.local as Endpoint).address), port: (r.accept.local as Endpoint).port },
          { address: v.origin, port: 82 },
          'the accepted socket has the original destination as its local address',
        )
        t.same(seenBy(r), { address: v.client, port: r.client.port }, `IPv${v.family} TPROXY + forging: the client's address and port`)
        t.equal(r.echo, 'hello through the proxy\n')

        // Straight to the proxy's own port: not redirected.
        r = await trip(forwarder, v.proxy, 8080)
        t.same(r.answer, { direct: true, original: null }, `IPv${v.family} a direct connection: originalDestination() is null`)
      }
      t.same(
        forwarder.events.filter(e => e.event === 'error'),
        [],
        'no upstream failed',
      )
    })
  }
})
