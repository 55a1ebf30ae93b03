import t from 'tap'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { DEFAULT_SETTINGS } from '../../lib/config/config.js'
import { ANY_SOURCE, checkSourceAddresses, connectAttempts, connectOne, sourceFor, type Attempt } from '../../lib/server/upstream.js'
import { backend, freePort, hangingPort } from '../fixtures/harness.js'

t.test('connectOne gives a half-open capable socket', async t => {
  const up = await backend(s => s.on('error', () => {}).end('hi'))
  t.teardown(() => up.close())
  const s = await connectOne('127.0.0.1', up.port, 1000)
  t.equal(s.allowHalfOpen, true)
  s.destroy()
})

/** Every attempt connectAttempts yields, in order. */
async function attempts(...args: Parameters<typeof connectAttempts>): Promise<Attempt[]> {
  const all: Attempt[] = []
  for await (const a of connectAttempts(...args)) all.push(a)
  return all
}

t.test('connectAttempts tries the list in order, yields each failure before the next try, stops at the first that connects', async t => {
  const dead1 = await freePort()
  const dead2 = await freePort()
  const up = await backend(s => s.on('error', () => {}).end())
  t.teardown(() => up.close())
  const servers = [{ host: '127.0.0.1', port: dead1 }, { host: '127.0.0.1', port: null }, { host: 'localhost', port: up.port }, { host: '127.0.0.1', port: dead1 }]
  const seen: string[] = []
  let c: Attempt | undefined
  for await (const a of connectAttempts(servers, dead2, 1000)) {
    seen.push(a.ok ? `connected ${a.host}:${a.port}` : `failed ${a.port} ${(a.error as NodeJS.ErrnoException).code}`)
    c = a
  }
  t.same(seen, [`failed ${dead1} ECONNREFUSED`, `failed ${dead2} ECONNREFUSED`, `connected localhost:${up.port}`], 'nothing tried after the first that connects')
  if (c?.ok !== true) throw new Error('not connected')
  c.socket.destroy()
})

t.test('connectAttempts yields only failures, each an Error, when none accepts', async t => {
  const dead = await freePort()
  const all = await attempts([{ host: '127.0.0.1', port: dead }, { host: '127.0.0.1', port: null }], dead, 1000)
  t.same(all.map(a => a.ok), [false, false])
  for (const a of all) t.match(a, { ok: false, port: dead, error: { code: 'ECONNREFUSED' } })
  t.ok(all.every(a => !a.ok && a.error instanceof Error))
})

t.test('a forged source connects through a transparent socket from the client\'s address (where the privilege and the addon allow it)', async t => {
  const up = await backend(s => s.on('error', () => {}).end())
  t.teardown(() => up.close())
  const got = await connectOne('127.0.0.1', up.port, 1000, { kind: 'forged', address: '127.0.0.7', port: 0 }).then(
    s => s,
    (err: unknown) => err as Error,
  )
  if (got instanceof Error) {
    // Not root, or no addon: the transparent socket is refused, never a plain connect.
    t.match(got.message, /transparent|not supported|native/i)
    return
  }
  t.equal(got.localAddress, '127.0.0.7', 'from the forged address')
  got.destroy()
  const up6 = createServer(s => s.on('error', () => {}).end()).listen(0, '::1')
  await once(up6, 'listening')
  t.teardown(() => up6.close())
  const six = await connectOne('::1', (up6.address() as { port: number }).port, 1000, { kind: 'forged', address: '::1', port: 0 })
  t.equal(six.localAddress, '::1', 'an IPv6 source makes an IPv6 socket')
  six.destroy()
})

t.test('a connect that hangs is abandoned after the timeout', async t => {
  const port = await hangingPort(t, 8000)
  const start = Date.now()
  await t.rejects(connectOne('127.0.0.1', port, 300), { code: 'ETIMEDOUT', message: 'connect timed out after 0.3 s' })
  t.ok(Date.now() - start < 2000)
})

t.test('checkSourceAddresses: a source address must be this host\'s, named by file:line or -q', async t => {
  const svc = (sourceAddress: string | null, line: number) => ({
    ...DEFAULT_SETTINGS,
    servers: [{ host: 'a.example', port: 25 }],
    sourceAddress,
    port: 25,
    iface: null,
    ifaceText: '*',
    source: { file: line > 0 ? 'tcpproxy.conf' : 'option -b', line },
  })
  await t.resolves(checkSourceAddresses([svc(null, 1), svc('127.0.0.5', 2), svc('::1', 3)]))
  await t.rejects(checkSourceAddresses([svc('127.0.0.5', 2), svc('192.0.2.1', 7)]), {
    code: 'ERR_CONFIG',
    message: 'tcpproxy.conf:7: srcip 192.0.2.1: cannot use it as a source address: EADDRNOTAVAIL',
  })
  await t.rejects(checkSourceAddresses([svc('192.0.2.1', 0)]), {
    code: 'ERR_CONFIG',
    message: 'option -q: 192.0.2.1: cannot use it as a source address: EADDRNOTAVAIL',
  })
})

t.test('connectOne from a fixed source address', async t => {
  let remote = ''
  const up = await backend(s => {
    remote = s.remoteAddress as string
    s.on('error', () => {}).end()
  })
  t.teardown(() => up.close())
  const s = await connectOne('127.0.0.1', up.port, 1000, { kind: 'address', address: '127.0.0.9' })
  t.equal(s.localAddress, '127.0.0.9')
  s.destroy()
  await new Promise(r => setTimeout(r, 50))
  t.equal(remote, '127.0.0.9', 'the server sees it')
})

t.test('sourceFor: forge-addr (with the client\'s port for forge-port), srcip, or any', async t => {
  const svc = { forgeAddr: false, forgePort: false, sourceAddress: null }
  t.same(sourceFor(svc, '192.0.2.7', 4000), ANY_SOURCE)
  t.same(sourceFor({ ...svc, sourceAddress: '127.0.0.2' }, '192.0.2.7', 4000), { kind: 'address', address: '127.0.0.2' })
  t.same(sourceFor({ ...svc, forgeAddr: true }, '192.0.2.7', 4000), { kind: 'forged', address: '192.0.2.7', port: 0 })
  t.same(sourceFor({ ...svc, forgeAddr: true, forgePort: true }, '192.0.2.7', 4000), { kind: 'forged', address: '192.0.2.7', port: 4000 })
})
