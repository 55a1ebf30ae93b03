import t from 'tap'
import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { closePassed, holdPassed, passedListener } from '../../lib/server/passed.js'
import { fdOf, nativeAddon } from '../../lib/native/addon.js'

const addon = nativeAddon()

/** A listening socket on its own descriptor, which no event loop polls (as systemd passes them). */
async function passedSocket(): Promise<{ fd: number; port: number }> {
  const s = createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const fd = (addon as NonNullable<typeof addon>).dupFd(fdOf(s))
  const { port } = s.address() as { port: number }
  await new Promise(r => s.close(r))
  return { fd, port }
}

/** Connect and wait for the server to send something; resolves with it. */
async function hello(port: number): Promise<string> {
  const c = connect({ port, host: '127.0.0.1' })
  const [d] = (await once(c, 'data')) as [Buffer]
  c.destroy()
  return d.toString()
}

const serve = (server: Server, text: string): Server => server.on('connection', (s: Socket) => s.resume().end(text))

t.test('with the addon: each listener is a duplicate; a spec no passed socket serves is bound instead', { skip: addon === undefined ? 'the addon is not built' : false }, async t => {
  const a = await passedSocket()
  const b = await passedSocket()
  const bound = holdPassed([{ fd: a.fd, name: 'web' }, { fd: b.fd, name: 'spare' }], addon?.dupFd)
  t.same(bound, [{ fd: a.fd, name: 'web', host: '127.0.0.1', port: a.port }, { fd: b.fd, name: 'spare', host: '127.0.0.1', port: b.port }])
  t.equal(passedListener({ address: '127.0.0.1', port: 1 }), null)
  const first = serve(passedListener({ address: '127.0.0.1', port: a.port }) as Server, 'first')
  t.equal(await hello(a.port), 'first')
  await new Promise(r => first.close(r))
  // A reload that brings the spec back: served from the passed socket again.
  const again = serve(passedListener({ address: '127.0.0.1', port: a.port }) as Server, 'again')
  t.equal(await hello(a.port), 'again')
  await new Promise(r => again.close(r))
  closePassed(a.fd)
  closePassed(b.fd)
  const refused = connect({ port: b.port, host: '127.0.0.1' })
  t.equal(((await once(refused, 'error')) as [NodeJS.ErrnoException])[0].code, 'ECONNREFUSED')
})

t.test('without the addon: the one server on the passed socket, handed out once, with what it accepted before', { skip: addon === undefined ? 'needs the addon to make a passed socket' : false }, async t => {
  const a = await passedSocket()
  const b = await passedSocket()
  const bound = holdPassed([{ fd: a.fd, name: 'unknown' }, { fd: b.fd, name: 'unknown' }], undefined)
  t.equal(bound[0]?.port, a.port)
  // Accepted before any owner listens: kept, then replayed.
  const early = connect({ port: a.port, host: '127.0.0.1' })
  await once(early, 'connect')
  await new Promise(r => setTimeout(r, 50))
  const server = serve(passedListener({ address: '127.0.0.1', port: a.port }) as Server, 'owned')
  const [d] = (await once(early, 'data')) as [Buffer]
  t.equal(d.toString(), 'owned', 'the early connection reaches the owner')
  t.equal(await hello(a.port), 'owned')
  t.equal(passedListener({ address: '127.0.0.1', port: a.port }), null, 'handed out once')
  await new Promise(r => server.close(r))
  closePassed(b.fd)
  const refused = connect({ port: b.port, host: '127.0.0.1' })
  t.equal(((await once(refused, 'error')) as [NodeJS.ErrnoException])[0].code, 'ECONNREFUSED')
})
