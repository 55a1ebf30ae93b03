// lib/server/disabled.ts: the servers `disable server` takes out of rotation.
import t from 'tap'
import { DisabledServers } from '../../lib/server/disabled.js'
import type { ResolvedService } from '../../lib/config/resolve.js'

const svc = (port: number, servers: { host: string; port: number | null }[] | null) => ({ port, servers }) as unknown as ResolvedService

t.test('disable and enable a server by host:port; new sessions skip it', async t => {
  const a = svc(80, [{ host: '10.0.0.1', port: 8080 }, { host: '::1', port: null }])
  const handler = svc(81, null)
  const d = new DisabledServers()
  t.equal(d.usable(a), a.servers, 'nothing disabled: the service\'s own list')
  t.equal(d.disable('10.0.0.9:8080', [handler, a]), false, 'no service has it')
  t.equal(d.disable('10.0.0.1:8080', [handler, a]), true)
  t.same(d.usable(a), [{ host: '::1', port: null }])
  t.equal(d.usable(handler), null, 'a handler service: its null, not a refusal')
  const other = svc(82, [{ host: '10.0.0.2', port: 1 }])
  t.equal(d.usable(other), other.servers, 'a service without a disabled server keeps its own list')
  t.equal(d.disable('[::1]:80', [a]), true, 'a server without a port is named with the service\'s')
  t.same(d.usable(a), [], 'every server disabled: none')
  t.equal(d.enable('[::1]:80'), true)
  t.equal(d.enable('[::1]:80'), false, 'not disabled any more')
  t.same(d.usable(a), [{ host: '::1', port: null }])
})
