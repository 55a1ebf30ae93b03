/**
 * lib/relay/event-loop.ts in process: two real socket pairs joined by the relay.
 * outerClient <-> proxyClient ==relay== proxyServer <-> outerServer
 */
import t from 'tap'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import { PROBE_MS, relay, type RelayResult, type Tap } from '../../lib/relay/event-loop.js'
import { collect, pingAfterFin, resetFromClient, socketPair } from '../fixtures/pair.js'

async function setup(idleMs = 0, tap: Tap | null = null) {
  const [outerClient, proxyClient] = await socketPair()
  const [proxyServer, outerServer] = await socketPair()
  outerServer.resume()
  let result: (r: RelayResult) => void = () => {}
  const done = new Promise<RelayResult>(r => (result = r))
  const handle = relay(proxyClient, proxyServer, idleMs, r => result(r), tap)
  return { outerClient, outerServer, proxyClient, proxyServer, handle, done }
}

t.test('bytes flow both ways and the counts are reported', async t => {
  const s = await setup()
  t.same(await pingAfterFin(s.outerClient, s.outerServer), { atServer: 'ping', atClient: 'pong!' })
  t.same(await s.done, { received: 5, sent: 4, closedBy: 'client', error: null })
})

t.test('a reset from the client resets the server side', async t => {
  const s = await setup()
  const serverError = await resetFromClient(s.outerClient, s.outerServer)
  t.equal(serverError?.code, 'ECONNRESET', 'the upstream sees a reset, not a clean FIN')
  const r = await s.done
  t.equal(r.closedBy, 'client-error')
  t.match(r.error, { code: 'ECONNRESET' })
})

/** `p`, or a rejection after `ms` (a relay that never reports must fail the test, not hang it). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms).unref())])
}

/** Whether `s` has been reset by its peer: a write to it fails (a FIN alone lets it succeed). */
async function wasReset(s: Socket): Promise<string> {
  const failed = once(s, 'error').then(([e]) => (e as NodeJS.ErrnoException).code as string)
  s.write('probe')
  return within(failed, 2000, 'no error on a write to the peer')
}

t.test('an error on one side while the FIN passed to the other is in flight ends both, with a reset', async t => {
  const s = await setup()
  const proxyServerErrors: string[] = []
  s.proxyServer.on('error', e => proxyServerErrors.push(e.message))
  // Node's own reaction to a failed write, in the same turn as the client's
  // EOF (this listener runs right after the relay's, which passed the FIN on).
  s.proxyClient.once('end', () => s.proxyClient.destroy(Object.assign(new Error('write EPIPE'), { code: 'EPIPE', syscall: 'write' })))
  s.outerClient.on('error', () => {})
  s.outerClient.end()
  const r = await within(s.done, 3000, 'the relay did not report')
  t.equal(r.closedBy, 'client-error')
  t.match(r.error, { code: 'EPIPE' })
  t.same(proxyServerErrors, [], 'no "reset EINVAL"')
  t.equal(s.proxyServer.destroyed, true)
  await once(s.outerServer, 'end')
  t.match(await wasReset(s.outerServer), /^(ECONNRESET|EPIPE)$/, 'the upstream got the FIN, then a reset')
})

t.test('a client that half-closes and then resets is noticed while the server stays silent', async t => {
  const s = await setup()
  s.outerClient.on('error', () => {})
  s.outerClient.end('bye')
  await once(s.outerServer, 'end')
  const started = Date.now()
  s.outerClient.resetAndDestroy()
  const r = await within(s.done, PROBE_MS * 5, 'the reset was not noticed')
  t.equal(r.closedBy, 'client-error')
  t.match(r.error, { syscall: 'write' })
  t.ok(Date.now() - started < PROBE_MS * 3, `noticed after ${Date.now() - started} ms`)
  t.match(await wasReset(s.outerServer), /^(ECONNRESET|EPIPE)$/, 'and passed on to the server as a reset')
})

t.test('a half-closed session that stays healthy is probed without a byte being sent', async t => {
  const s = await setup()
  const atServer: Buffer[] = []
  s.outerServer.on('data', c => atServer.push(c))
  const atClient = collect(s.outerClient)
  s.outerClient.end('one')
  await new Promise(r => setTimeout(r, PROBE_MS * 2.5))
  s.outerServer.end('late reply')
  t.equal((await within(atClient, 3000, 'the reply did not arrive')).toString(), 'late reply')
  t.equal(Buffer.concat(atServer).toString(), 'one')
  t.same(await s.done, { received: 10, sent: 3, closedBy: 'client', error: null })
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
  t.same(s.handle.counts(), { received: 0, sent: 0, halfClosed: false }, 'counts: nothing moved yet')
  s.outerClient.write('abc')
  await once(s.outerServer, 'data')
  s.outerClient.end()
  await once(s.outerServer, 'end')
  t.same(s.handle.counts(), { received: 0, sent: 3, halfClosed: true }, 'counts: live, and half-closed once one side ended')
  s.handle.abort()
  const r = await s.done
  t.equal(r.closedBy, 'shutdown')
  t.equal(s.handle.counts().halfClosed, false, 'a cut is not a half-close')
})

t.test('the tap sees every chunk and an empty chunk at each EOF, in order, with side names', async t => {
  const seen: [string, string][] = []
  const s = await setup(0, (from, chunk) => void seen.push([from, chunk.toString('latin1')]))
  const atClient: Buffer[] = []
  s.outerClient.on('data', c => atClient.push(c))
  const atServer: Buffer[] = []
  s.outerServer.on('data', c => atServer.push(c))
  // One step at a time, each waited for, so that every write is one read.
  s.outerClient.write('one')
  await once(s.outerServer, 'data')
  s.outerClient.write(Buffer.from([0, 0xff, 0x23]))
  await once(s.outerServer, 'data')
  s.outerServer.write('three')
  await once(s.outerClient, 'data')
  s.outerClient.end()
  await once(s.outerServer, 'end')
  s.outerServer.end()
  await once(s.outerClient, 'end')
  const r = await s.done
  t.same(seen, [
    ['CLIENT', 'one'],
    ['CLIENT', '\x00\xff#'],
    ['SERVER', 'three'],
    ['CLIENT', ''],
    ['SERVER', ''],
  ])
  t.equal(Buffer.concat(atServer).toString('latin1'), 'one\x00\xff#', 'the tapped bytes still reach the server unchanged')
  t.equal(Buffer.concat(atClient).toString(), 'three')
  t.same(r, { received: 5, sent: 6, closedBy: 'client', error: null })
})

t.test('the tap sees the server\'s EOF first when the server closes first', async t => {
  const seen: string[] = []
  const s = await setup(0, (from, chunk) => void seen.push(`${from}:${chunk.length}`))
  s.outerClient.resume()
  s.outerServer.end('bye')
  await once(s.outerClient, 'end')
  s.outerClient.end()
  await once(s.outerServer, 'end')
  t.same(seen, ['SERVER:3', 'SERVER:0', 'CLIENT:0'])
  t.equal((await s.done).closedBy, 'server')
})

t.test('with the tap, a slow reader still pauses the sender, and every byte is tapped once', async t => {
  const tapped = { CLIENT: 0, SERVER: 0 }
  const s = await setup(0, (from, chunk) => void (tapped[from] += chunk.length))
  s.outerServer.pause()
  const big = Buffer.alloc(16 * 1024 * 1024, 'x')
  s.outerClient.end(big)
  // The server reads nothing for a while: the relay must stop reading the client.
  await new Promise(r => setTimeout(r, 300))
  t.ok(s.proxyClient.isPaused(), 'the client side is paused while the server side is full')
  t.ok(s.proxyClient.bytesRead < big.length, `only ${s.proxyClient.bytesRead} of ${big.length} bytes taken from the client so far`)
  let got = 0
  s.outerServer.on('data', c => (got += c.length))
  s.outerServer.resume()
  await once(s.outerServer, 'end')
  s.outerServer.end()
  const r = await s.done
  t.equal(got, big.length)
  t.same(tapped, { CLIENT: big.length, SERVER: 0 })
  t.equal(r.sent, big.length)
})

t.test('a slow reader pauses the sender, and every byte arrives once it reads again', async t => {
  const s = await setup()
  s.outerServer.pause()
  const big = Buffer.alloc(16 * 1024 * 1024, 'y')
  s.outerClient.end(big)
  await new Promise(r => setTimeout(r, 300))
  t.ok(s.proxyClient.isPaused(), 'the client side is paused while the server side is full')
  let got = 0
  s.outerServer.on('data', c => (got += c.length))
  s.outerServer.resume()
  await once(s.outerServer, 'end')
  s.outerServer.end()
  t.equal(got, big.length)
  t.equal((await s.done).sent, big.length)
})

t.test("a client's EOF consumed before the relay started is still passed on", async t => {
  const [outerClient, proxyClient] = await socketPair()
  const [proxyServer, outerServer] = await socketPair()
  outerClient.end('all I had')
  // Read to the end first, as a PROXY header reader may.
  const early: Buffer[] = []
  proxyClient.on('data', c => early.push(c))
  proxyClient.resume()
  await once(proxyClient, 'end')
  proxyClient.removeAllListeners('data')
  proxyClient.pause()
  const atServer = collect(outerServer)
  outerServer.resume()
  proxyServer.write(Buffer.concat(early))
  const done = new Promise<RelayResult>(resolve => relay(proxyClient, proxyServer, 0, resolve))
  outerClient.resume()
  t.equal((await atServer).toString(), 'all I had', 'the server got the bytes and then EOF')
  t.equal((await done).closedBy, 'client')
})
