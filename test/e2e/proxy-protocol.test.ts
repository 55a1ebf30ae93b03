/**
 * End to end: the PROXY protocol with a real HAProxy on both sides of
 * tcpproxy, and the receiving rules (trusted peers must send a header,
 * others are plain clients, any split of header and data works).
 * HAProxy comes from Debian's package; .ci/run installs it.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { backend, exchange, fixture, freePort, startProxy } from '../fixtures/harness.js'

const ENV_HANDLER = fixture('env-handler.sh')
const haproxyMissing = spawnSync('haproxy', ['-v']).status !== 0 ? 'haproxy is not installed (apt-get install haproxy)' : false

const vars = (text: string): Record<string, string> =>
  Object.fromEntries(text.split('\n').filter(l => l.includes('=')).map(l => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))

/** Start HAProxy with `config` (its log goes to stdout); resolves once `port` accepts. */
async function haproxy(t: { teardown: (fn: () => void) => void }, dir: string, config: string, port: number): Promise<{ log: () => string }> {
  const file = join(dir, 'haproxy.cfg')
  writeFileSync(file, config)
  const proc = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  proc.stdout.on('data', d => (log += d))
  proc.stderr.on('data', d => (log += d))
  t.teardown(() => proc.kill('SIGKILL'))
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>(resolve => {
      const s = connect({ port, host: '127.0.0.1' })
      s.on('connect', () => (s.destroy(), resolve(true)))
      s.on('error', () => resolve(false))
    })
    if (ok) return { log: () => log }
    await new Promise(r => setTimeout(r, 50))
  }
  throw new Error(`haproxy did not start:\n${log}`)
}

/** An upstream that records everything each connection sent, once it has ended. */
async function recordingBackend(): Promise<{ got: string[]; up: Awaited<ReturnType<typeof backend>> }> {
  const got: string[] = []
  const up = await backend(s => {
    let d = ''
    s.on('data', c => (d += c))
    s.on('end', () => (got.push(d), s.end()))
  })
  return { got, up }
}

const globals = `global\n  log stdout format raw local0\ndefaults\n  mode tcp\n  log global\n  option tcplog\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n`

for (const version of ['send-proxy', 'send-proxy-v2']) {
  t.test(`HAProxy ${version} in front: the handler sees the original client`, { skip: haproxyMissing }, async t => {
    const p = await startProxy(port => ['-d', '-n', '--accept-proxy', '127.0.0.1/32', '-b', `127.0.0.1:${port}`, ENV_HANDLER])
    t.teardown(p.stop)
    const front = await freePort()
    await haproxy(t, t.testdir({}), `${globals}listen fe\n  bind 127.0.0.1:${front}\n  server tp 127.0.0.1:${p.port} ${version}\n`, front)
    // The original client comes from 127.0.0.2; HAProxy connects from 127.0.0.1.
    const c = connect({ port: front, host: '127.0.0.1', localAddress: '127.0.0.2' })
    const chunks: Buffer[] = []
    c.on('data', d => chunks.push(d))
    await new Promise(r => c.once('connect', r))
    const clientPort = c.localPort
    await new Promise(r => c.once('close', r))
    const v = vars(Buffer.concat(chunks).toString())
    t.equal(v['PROXY_CLIENT'], '127.0.0.2')
    t.equal(v['PROXY_CLIENTPORT'], String(clientPort))
    t.equal(v['PROXY_PEER'], '127.0.0.1')
    t.equal(v['PROXY_DESTINATION'], '127.0.0.1')
    t.equal(v['PROXY_DESTPORT'], String(front))
    t.match(await p.waitFor(/PROXY v/), `PROXY v${version === 'send-proxy' ? 1 : 2} from 127.0.0.1:`)
  })
}

for (const version of ['v1', 'v2']) {
  t.test(`tcpproxy --send-proxy ${version} in front of HAProxy accept-proxy: HAProxy logs the original client`, { skip: haproxyMissing }, async t => {
    const echo = await backend(s => s.pipe(s))
    t.teardown(() => echo.close())
    const front = await freePort()
    const h = await haproxy(t, t.testdir({}), `${globals}listen fe\n  bind 127.0.0.1:${front} accept-proxy\n  server echo 127.0.0.1:${echo.port}\n`, front)
    const p = await startProxy(port => ['-d', '--send-proxy', version, '-b', `127.0.0.1:${port}`, `127.0.0.1:${front}`])
    t.teardown(p.stop)
    const c = connect({ port: p.port, host: '127.0.0.1', localAddress: '127.0.0.2' })
    await new Promise(r => c.once('connect', r))
    const clientPort = c.localPort
    c.write('ping')
    const [reply] = await Promise.all([new Promise<Buffer>(r => c.once('data', r))])
    t.equal(reply.toString(), 'ping', 'data after the header is the client\'s')
    c.end()
    await new Promise(r => c.once('close', r))
    for (let i = 0; i < 100 && !h.log().includes(`127.0.0.2:${clientPort}`); i++) await new Promise(r => setTimeout(r, 50))
    t.match(h.log(), `127.0.0.2:${clientPort} [`, 'HAProxy saw the client tcpproxy served')
    t.match(await p.waitFor(/disconnect/), 'send= 4', 'the header is not counted as client data')
  })
}

t.test('a trusted peer without a header is refused; an untrusted peer\'s header is data', async t => {
  const { got, up } = await recordingBackend()
  t.teardown(() => up.close())
  const p = await startProxy(port => ['-d', '--accept-proxy', '127.0.0.1', '--proxy-timeout', '0.5', '-b', String(port), `127.0.0.1:${up.port}`])
  t.teardown(p.stop)
  const plain = await exchange(p.port, 'GET / HTTP/1.0\r\n\r\n')
  t.equal(plain.data.length, 0)
  t.match(await p.waitFor(/bad PROXY header/), /-ERR: bad PROXY header from 127\.0\.0\.1:\d+: bad PROXY header at byte 0: not a PROXY header, id= 1$/)
  const silent = await exchange(p.port, null, { end: false })
  t.ok(silent.ms >= 400 && silent.ms < 3000, `a silent trusted peer is cut after the timeout (${silent.ms} ms)`)
  t.match(await p.waitFor(/bad PROXY header.*id= 2$/), 'no complete PROXY header within 500 ms')
  // ::1 is not in the trusted list: its "header" is just data for the upstream.
  const r = await exchange(p.port, 'PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\nhi', { host: '::1' })
  t.equal(r.error, null)
  await p.waitFor(/disconnect.*id= 3$/)
  t.same(got, ['PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\nhi'])
  t.match(p.lines.find(l => l.includes('+INFO: connect:') && l.endsWith('id= 3')), 'client= ::1')
})

t.test('--send-proxy over IPv6, and UNKNOWN when the client and local families differ', async t => {
  const heads: string[] = []
  const up = await backend(s => {
    s.once('data', d => heads.push(d.toString().split('\r\n')[0] as string))
    s.on('error', () => {})
    s.on('end', () => s.end())
  }, '::1')
  t.teardown(() => up.close())
  const v6 = await startProxy(port => ['-d', '--send-proxy', 'v1', '-b', `[::1]:${port}`, `[::1]:${up.port}`], '::1')
  t.teardown(v6.stop)
  const c = await exchange(v6.port, 'x', { host: '::1' })
  t.equal(c.error, null)
  const mixed = await startProxy(port => ['-d', '--accept-proxy', '127.0.0.1', '--send-proxy', 'v1', '-b', `127.0.0.1:${port}`, `[::1]:${up.port}`])
  t.teardown(mixed.stop)
  await exchange(mixed.port, 'PROXY TCP6 2001:db8::1 2001:db8::2 1000 25\r\ny')
  await mixed.waitFor(/disconnect/)
  t.match(heads[0], /^PROXY TCP6 ::1 ::1 \d+ \d+$/)
  t.equal(heads[1], 'PROXY UNKNOWN')
})

t.test('header and data in one segment or split byte by byte reach the upstream intact', async t => {
  const { got, up } = await recordingBackend()
  t.teardown(() => up.close())
  const p = await startProxy(port => ['-d', '--accept-proxy', '127.0.0.0/8', '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.teardown(p.stop)
  const header = 'PROXY TCP6 2001:db8::1 2001:db8::2 4000 80\r\n'
  await exchange(p.port, `${header}one segment`)
  const c = connect({ port: p.port, host: '127.0.0.1' })
  c.on('error', e => t.fail(`client error ${e.message}: ${p.lines.join('\n')}`))
  await new Promise(r => c.once('connect', r))
  for (const byte of Buffer.from(`${header}byte by byte`)) {
    c.write(Buffer.from([byte]))
    await new Promise(r => setTimeout(r, 2))
  }
  c.end()
  await new Promise(r => c.once('close', r))
  await p.waitFor(/disconnect.*id= 2$/)
  t.same(got, ['one segment', 'byte by byte'])
  t.match(p.lines.find(l => l.includes('+INFO: connect:') && l.endsWith('id= 2')), 'client= 2001:db8::1,')
})
