import t from 'tap'
import { createServer } from 'node:net'
import type { ListenSpec } from '../../lib/config/address.js'
import { bindListener, boundAddress, closeListener, configureServer, parseKey, reconcileListeners, specKey } from '../../lib/server/listeners.js'
import { loadNative, nativeAvailable } from '../../lib/native/addon.js'
import { probeTransparent } from '../../lib/transparent/sockets.js'
import { freePort } from '../fixtures/harness.js'

t.test('keys name listen specs and read back', async t => {
  for (const [spec, key] of [
    [{ address: null, port: 25 }, '*:25'],
    [{ address: '127.0.0.1', port: 8025 }, '127.0.0.1:8025'],
    [{ address: '::1', port: 80 }, '[::1]:80'],
    [{ address: null, port: 8082, transparent: true }, '*:8082 (transparent)'],
    [{ address: '::1', port: 8082, transparent: true }, '[::1]:8082 (transparent)'],
  ] as Array<[ListenSpec, string]>) {
    t.equal(specKey(spec), key)
    t.same(parseKey(key), spec)
  }
})

t.test('configureServer gives any server the relay\'s accept options', async t => {
  const s = configureServer(createServer()) as unknown as Record<string, boolean>
  t.same([s['allowHalfOpen'], s['pauseOnConnect'], s['noDelay']], [true, true, true])
})

t.test('bindListener binds, boundAddress shows it, a busy port names the reason', async t => {
  const port = await freePort()
  const s = await bindListener({ address: '127.0.0.1', port })
  t.equal(boundAddress(s), `127.0.0.1:${port}`)
  await t.rejects(bindListener({ address: '127.0.0.1', port }), { code: 'ERR_BIND', message: `cannot bind 127.0.0.1:${port}: EADDRINUSE` })
  await closeListener(s)
  const any = await bindListener({ address: null, port })
  t.equal(boundAddress(any), `[::]:${port}`)
  await closeListener(any)
})

/** Record what reconcileListeners asks for; `failOn` makes that bind throw. */
function recorder(failOn?: string) {
  const calls: string[] = []
  return {
    calls,
    ops: {
      bind: async (key: string) => {
        calls.push(`bind ${key}`)
        if (key === failOn) throw new Error(`cannot bind ${key}`)
      },
      unbind: async (key: string) => void calls.push(`unbind ${key}`),
    },
  }
}

t.test('reconcile keeps unchanged listeners, binds new ones, then drops old ones', async t => {
  const r = recorder()
  await reconcileListeners(['*:25', '127.0.0.1:80'], [{ address: null, port: 25 }, { address: null, port: 110 }], r.ops)
  t.same(r.calls, ['bind *:110', 'unbind 127.0.0.1:80'])
})

t.test('a port taken over by a different address is freed first', async t => {
  const r = recorder()
  await reconcileListeners(['*:25'], [{ address: '10.0.0.1', port: 25 }], r.ops)
  t.same(r.calls, ['unbind *:25', 'bind 10.0.0.1:25'])
})

t.test('a failed bind undoes the call and restores what was freed early', async t => {
  const r = recorder('[::1]:26')
  await t.rejects(
    reconcileListeners(['*:25'], [{ address: '10.0.0.1', port: 25 }, { address: '::1', port: 26 }], r.ops),
    { message: 'cannot bind [::1]:26' },
  )
  t.same(r.calls, ['unbind *:25', 'bind 10.0.0.1:25', 'bind [::1]:26', 'unbind 10.0.0.1:25', 'bind *:25'])
})

t.test('a transparent listener is bound with IP_TRANSPARENT, or not at all', { skip: nativeAvailable() ? false : 'the native addon is not built' }, async t => {
  const port = await freePort()
  const spec = { address: '127.0.0.1', port, transparent: true }
  let privileged = true
  try {
    probeTransparent(4)
  } catch {
    privileged = false
  }
  if (privileged) {
    const s = await bindListener(spec)
    t.equal(boundAddress(s), `127.0.0.1:${port}`)
    await closeListener(s)
  }
  // Whatever this process may do: without the addon loaded the option cannot be set.
  loadNative('/nonexistent/tcpproxy_native.node')
  t.teardown(() => void loadNative())
  await t.rejects(bindListener(spec), { code: 'ERR_NOT_SUPPORTED', message: new RegExp(`^cannot bind 127\\.0\\.0\\.1:${port} \\(transparent\\): transparent proxying needs the native addon`) })
  // The port was released: a plain listener gets it.
  const again = await bindListener({ address: '127.0.0.1', port })
  await closeListener(again)
})
