/** lib/control/local.ts against a real forwarder: its sessions as rows, kill, and what it does not do yet. */
import t from 'tap'
import { connect } from 'node:net'
import { DEFAULT_SETTINGS } from '../../lib/config/config.js'
import { hydrateService } from '../../lib/config/resolve.js'
import { localBackend } from '../../lib/control/local.js'
import type { LogEntry } from '../../lib/log/logger.js'
import { Forwarder } from '../../lib/server/forwarder.js'
import { backend, freePort } from '../fixtures/harness.js'

t.test('show sessions lists the open session; kill ends it; no such session: false', async t => {
  const up = await backend(s => s.on('error', () => {}).resume())
  t.teardown(() => up.close())
  const port = await freePort()
  const entries: LogEntry[] = []
  const service = hydrateService({
    ...DEFAULT_SETTINGS,
    port,
    iface: '127.0.0.1',
    ifaceText: '127.0.0.1',
    addresses: ['127.0.0.1'],
    servers: [{ host: '127.0.0.1', port: up.port }],
    source: { file: 'test', line: 1 },
  })
  const programs = { baseEnv: {}, envPrefix: 'PROXY_', pid: 1, proxyName: 'tcpproxy', logName: 'tcpproxy', resolveNames: false, runAs: {} }
  const proxy = new Forwarder([service], { logger: { debug: false, log: e => void entries.push(e) }, programs })
  await proxy.listen()
  t.teardown(() => proxy.close(0))
  const now = performance.now() + 2500
  const b = localBackend(proxy, () => now)
  t.same(await b.sessions(), [])
  const c = connect({ port, host: '127.0.0.1' }).on('error', () => {})
  const closed = new Promise(r => c.on('close', r))
  await new Promise(r => c.on('connect', r))
  for (let i = 0; i < 200 && (await b.sessions())[0]?.state !== 'relaying'; i++) await new Promise(r => setTimeout(r, 10))
  const [row] = await b.sessions()
  t.same(row, { id: 1, service: `127.0.0.1:${port}`, client: '127.0.0.1', client_port: c.localPort, server: null, received: 0, sent: 0, age: 2, state: 'relaying' })
  t.same(b.total(), { services: {} })
  t.equal((await localBackend(proxy).sessions())[0]?.age, 0, 'the clock defaults to performance.now')
  t.equal(await b.kill(2), false)
  t.equal(await b.kill(1), true)
  await closed
  for (let i = 0; i < 200 && proxy.sessions > 0; i++) await new Promise(r => setTimeout(r, 10))
  t.same(await b.sessions(), [])
  await t.rejects(b.disable('127.0.0.1:9'), { code: 'ERR_NOT_SUPPORTED' })
  await t.rejects(b.enable('127.0.0.1:9'), { code: 'ERR_NOT_SUPPORTED' })
})
