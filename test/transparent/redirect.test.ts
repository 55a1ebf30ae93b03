/**
 * lib/transparent/redirect.ts on loopback: the original destination of a connection
 * (transparent listeners: the local address; otherwise SO_ORIGINAL_DST,
 * which a direct loopback connection does not have) and the loop checks.
 * Redirected connections through real firewall rules: e2e-transparent.
 */
import t from 'tap'
import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import { Redirects, localAddresses } from '../../lib/transparent/redirect.js'
import { nativeAvailable } from '../../lib/native/addon.js'
import type { ListenSpec } from '../../lib/config/address.js'

/** A connected pair on `host`: the accepted side and the client. */
async function pair(host: string): Promise<{ accepted: Socket; client: Socket; port: number }> {
  const server = createServer()
  server.listen(0, host)
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  const accepted = once(server, 'connection') as Promise<[Socket]>
  const client = connect(port, host)
  const [socket] = await accepted
  await once(client, 'connect').catch(() => {})
  server.close()
  t.teardown(() => {
    socket.destroy()
    client.destroy()
  })
  return { accepted: socket, client, port }
}

t.test('localAddresses lists the loopback addresses, canonical', async t => {
  const all = localAddresses()
  t.ok(all.has('127.0.0.1'))
  t.ok(all.has('::1'))
})

t.test('a transparent listener: the local address is the original destination unless it is the listener\'s own', async t => {
  const redirects = new Redirects(() => [])
  const v4 = await pair('127.0.0.1')
  const own: ListenSpec = { address: null, port: v4.port, transparent: true }
  t.equal(redirects.find(v4.accepted, own), null, 'the wildcard listener\'s port on a local address: direct')
  t.same(redirects.find(v4.accepted, { address: null, port: 1, transparent: true }), { address: '127.0.0.1', port: v4.port, family: 4 }, 'another port: redirected there')
  t.same(
    redirects.find(v4.accepted, { address: '127.0.0.2', port: v4.port, transparent: true }),
    { address: '127.0.0.1', port: v4.port, family: 4 },
    'another address than the listener\'s: redirected',
  )
  t.equal(redirects.find(v4.accepted, { address: '127.0.0.1', port: v4.port, transparent: true }), null)
  // An address that is not this host's, as TPROXY delivers them.
  const foreign = new Redirects(() => [], () => new Set(['10.0.0.1']))
  t.same(foreign.find(v4.accepted, own), { address: '127.0.0.1', port: v4.port, family: 4 }, 'not a local address: redirected')
  const v6 = await pair('::1')
  t.same(redirects.find(v6.accepted, { address: null, port: 1, transparent: true }), { address: '::1', port: v6.port, family: 6 })
})

t.test('any other listener asks the kernel (SO_ORIGINAL_DST)', { skip: nativeAvailable() ? false : 'the native addon is not built' }, async t => {
  const redirects = new Redirects(() => [])
  const { accepted } = await pair('127.0.0.1')
  t.equal(redirects.find(accepted, { address: null, port: 1 }), null, 'a direct connection was not redirected')
  t.equal(redirects.find(accepted, null), null, 'inetd\'s connection too')
  accepted.destroy()
  await once(accepted, 'close')
  t.throws(() => redirects.find(accepted, null), { code: 'ERR_RUNTIME' }, 'a closed socket cannot be asked')
})

t.test('loops: an own listener as the destination, an own upstream connection coming back', async t => {
  let listening: ListenSpec[] = [
    { address: null, port: 8080 },
    { address: '10.0.0.2', port: 8081 },
  ]
  const redirects = new Redirects(() => listening, () => new Set(['10.0.0.1', '10.0.0.2']))
  t.equal(redirects.loop({ address: '10.0.0.1', port: 8080, family: 4 }, '10.1.1.1', 5000), "10.0.0.1:8080 is this proxy's own listener")
  t.equal(redirects.loop({ address: '10.0.0.2', port: 8081, family: 4 }, '10.1.1.1', 5000), "10.0.0.2:8081 is this proxy's own listener")
  t.equal(redirects.loop({ address: '10.0.0.1', port: 8081, family: 4 }, '10.1.1.1', 5000), null, 'the 8081 listener is on 10.0.0.2 only')
  t.equal(redirects.loop({ address: '192.0.2.1', port: 8080, family: 4 }, '10.1.1.1', 5000), null, 'not an address of this host')
  listening = []
  t.equal(redirects.loop({ address: '10.0.0.1', port: 8080, family: 4 }, '10.1.1.1', 5000), null, 'the listeners in use now count')

  t.equal(redirects.tracking, false)
  const { client } = await pair('127.0.0.1')
  const untrack = redirects.track(client)
  t.equal(redirects.tracking, true)
  const dest = { address: '192.0.2.1', port: 25, family: 4 as const }
  t.equal(
    redirects.loop(dest, '127.0.0.1', client.localPort as number),
    "the connection is this proxy's own upstream connection, redirected back",
  )
  t.equal(redirects.loop(dest, '127.0.0.1', (client.localPort as number) + 1), null, 'another port is another connection')
  client.destroy()
  await once(client, 'close')
  t.equal(redirects.tracking, true, 'remembered until its session says it is over (the relay thread closes Node\'s socket early)')
  untrack()
  t.equal(redirects.tracking, false, 'forgotten once its session ended')
  t.equal(redirects.loop(dest, '127.0.0.1', client.localPort as number), null)
})
