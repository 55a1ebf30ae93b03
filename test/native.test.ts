/** lib/native.ts: loading the addon, and the descriptors handed to it. */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { once } from 'node:events'
import { createServer, Socket } from 'node:net'
import { NATIVE_PATH, fdOf, loadNative, nativeAddon, nativeAvailable, nativeLoadFailure } from '../lib/native.js'
import { ROOT } from './fixtures/harness.js'
import { socketPair } from './fixtures/pair.js'

t.test('the addon loads from where npm builds it, or says why not', async t => {
  const built = existsSync(NATIVE_PATH)
  t.equal(nativeAvailable(), built, `the addon ${built ? 'is' : 'is not'} built at ${NATIVE_PATH}`)
  if (built) {
    const names = Object.keys(nativeAddon() as object)
    for (const name of ['originalDst', 'transparentSocket', 'relayInit', 'relayAdd', 'relayAbort']) t.ok(names.includes(name), `it exports ${name}`)
  }
  t.equal(loadNative('/nonexistent/tcpproxy_native.node'), false)
  t.equal(nativeAvailable(), false)
  t.equal(nativeAddon(), undefined)
  t.match(nativeLoadFailure(), /^Cannot find module '\/nonexistent\/tcpproxy_native\.node'$/, 'one line, without the require stack')
  t.equal(loadNative(), built, 'the default path loads again')
  if (built) t.equal(nativeLoadFailure(), '', 'no failure to report once it loaded')
})

t.test('fdOf: the descriptor of an open socket or listener, an error for a closed one', async t => {
  const [a, b] = await socketPair()
  t.ok(fdOf(a) > 2 && fdOf(b) > 2 && fdOf(a) !== fdOf(b))
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.ok(fdOf(server) > 2)
  server.close()
  a.destroy()
  b.destroy()
  await once(b, 'close')
  t.throws(() => fdOf(b), { code: 'ERR_RUNTIME', message: 'the socket has no file descriptor (not open, or already closed)' })
  t.throws(() => fdOf(new Socket()), { code: 'ERR_RUNTIME' })
})

t.test('TCPPROXY_NATIVE (a test and debug hook) names the build to load', async t => {
  const script = `import('./dist/native.js').then(n => console.log(JSON.stringify([n.NATIVE_PATH, n.nativeAvailable(), n.nativeLoadFailure()])))`
  const run = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, env: { ...process.env, TCPPROXY_NATIVE: '/nonexistent/asan.node' }, encoding: 'utf8' })
  t.same(JSON.parse(run.stdout), ['/nonexistent/asan.node', false, "Cannot find module '/nonexistent/asan.node'"])
})
