/**
 * lib/relay.ts in process: two real socket pairs joined by the relay.
 * outerClient <-> proxyClient ==relay== proxyServer <-> outerServer
 */
import t from 'tap'
import { once } from 'node:events'
import { relay, type RelayResult } from '../lib/relay.js'
import { collect, socketPair } from './fixtures/pair.js'

async function setup(idleMs = 0) {
  const [outerClient, proxyClient] = await socketPair()
  const [proxyServer, outerServer] = await socketPair()
  outerServer.resume()
  let result: (r: RelayResult) => void = () => {}
  const done = new Promise<RelayResult>(r => (result = r))
  const handle = relay(proxyClient, proxyServer, idleMs, r => result(r))
  return { outerClient, outerServer, proxyClient, proxyServer, handle, done }
}

t.test('bytes flow both ways and the counts are reported', async t => {
  const s = await setup()
  const atClient = collect(s.outerClient)
  const atServer: Buffer[] = []
  s.outerServer.on('data', c => atServer.push(c))
  s.outerServer.on('end', () => s.outerServer.end('pong!'))
  s.outerClient.end('ping')
  await once(s.outerServer, 'close')
  t.equal(Buffer.concat(atServer).toString(), 'ping')
  t.equal((await atClient).toString(), 'pong!')
  t.same(await s.done, { received: 5, sent: 4, closedBy: 'client', error: null })
})

t.test('a reset from the client resets the server side', async t => {
  const s = await setup()
  const serverClosed = collect(s.outerServer)
  s.outerServer.on('error', () => {})
  let serverError = null as NodeJS.ErrnoException | null
  s.outerServer.once('error', e => (serverError = e))
  s.outerClient.write('x')
  await once(s.outerServer, 'data')
  s.outerClient.resetAndDestroy()
  await serverClosed
  t.equal(serverError?.code, 'ECONNRESET', 'the upstream sees a reset, not a clean FIN')
  const r = await s.done
  t.equal(r.closedBy, 'client-error')
  t.match(r.error, { code: 'ECONNRESET' })
})

t.test('an error on the server side ends both sides', async t => {
  const s = await setup()
  const clientDone = collect(s.outerClient)
  s.outerServer.resetAndDestroy()
  await clientDone
  const r = await s.done
  t.equal(r.closedBy, 'server-error')
})

t.test('the idle timeout cuts a silent session', async t => {
  const s = await setup(200)
  const started = Date.now()
  const clientDone = collect(s.outerClient)
  await clientDone
  const r = await s.done
  t.equal(r.closedBy, 'timeout')
  t.equal(r.error, null)
  t.ok(Date.now() - started >= 150)
})

t.test('abort() cuts the session with closedBy shutdown, even after a half-close', async t => {
  const s = await setup()
  s.outerClient.end()
  await once(s.outerServer, 'end')
  s.handle.abort()
  const r = await s.done
  t.equal(r.closedBy, 'shutdown')
})
