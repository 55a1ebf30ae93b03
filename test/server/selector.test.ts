/**
 * Selection of the service for a connection, and the listening plan.
 */
import t from 'tap'
import { buildSelector, planListeners, type Selectable } from '../../lib/server/selector.js'

interface Svc extends Selectable {
  name: string
}
const svc = (name: string, port: number, addresses: string[] | null, ifaceText = addresses?.join(' ') ?? '*'): Svc => ({
  name,
  port,
  addresses,
  ifaceText,
})

t.test('an exact interface beats the wildcard, whichever comes first', async t => {
  const wildFirst = buildSelector([svc('wild', 25, null), svc('lo', 25, ['127.0.0.1'])])
  const wildLast = buildSelector([svc('lo', 25, ['127.0.0.1']), svc('wild', 25, null)])
  for (const select of [wildFirst, wildLast]) {
    t.equal(select('127.0.0.1', 25)?.name, 'lo')
    t.equal(select('127.0.0.2', 25)?.name, 'wild')
    t.equal(select('::1', 25)?.name, 'wild')
  }
})

t.test('the wildcard of one port does not answer on another', async t => {
  const select = buildSelector([svc('wild25', 25, null), svc('wild80', 80, null), svc('lo8025', 8025, ['127.0.0.1'])])
  t.equal(select('10.0.0.1', 25)?.name, 'wild25')
  t.equal(select('10.0.0.1', 80)?.name, 'wild80')
  t.equal(select('127.0.0.1', 8025)?.name, 'lo8025')
})

t.test('no matching service gives undefined', async t => {
  const select = buildSelector([svc('lo', 25, ['127.0.0.1']), svc('wild', 80, null)])
  t.equal(select('127.0.0.2', 25), undefined, 'another address on an exact-only port')
  t.equal(select('127.0.0.1', 26), undefined, 'another port')
  t.equal(buildSelector([])('127.0.0.1', 25), undefined, 'no services')
})

t.test('a service with several addresses answers on each', async t => {
  const select = buildSelector([svc('host', 25, ['127.0.0.1', '::1'], 'localhost'), svc('other', 25, ['127.0.0.2'])])
  t.equal(select('127.0.0.1', 25)?.name, 'host')
  t.equal(select('::1', 25)?.name, 'host')
  t.equal(select('127.0.0.2', 25)?.name, 'other')
})

t.test('a service listing one address twice is not a conflict with itself', async t => {
  const select = buildSelector([svc('twice', 25, ['127.0.0.1', '127.0.0.1'], 'localhost')])
  t.equal(select('127.0.0.1', 25)?.name, 'twice')
})

t.test('two interfaces meaning the same address on a port is an error naming both', async t => {
  t.throws(() => buildSelector([svc('a', 25, ['127.0.0.1', '::1'], 'localhost'), svc('b', 25, ['::1'], '[::1]')]), {
    name: 'ConfigError',
    code: 'ERR_CONFIG',
    message: 'configuration: interfaces "localhost" and "[::1]" both mean ::1 on port 25',
  })
  const b = { ...svc('b', 25, ['::1'], '[::1]'), source: { file: '/etc/tcpproxy.conf', line: 7 } }
  t.throws(() => buildSelector([svc('a', 25, ['127.0.0.1', '::1'], 'localhost'), b]), {
    message: '/etc/tcpproxy.conf:7: interfaces "localhost" and "[::1]" both mean ::1 on port 25',
  })
})

t.test('the same address on different ports is no conflict', async t => {
  const select = buildSelector([svc('a', 25, ['127.0.0.1']), svc('b', 26, ['127.0.0.1'])])
  t.equal(select('127.0.0.1', 25)?.name, 'a')
  t.equal(select('127.0.0.1', 26)?.name, 'b')
})

t.test('planListeners binds the only service of a port to each of its addresses', async t => {
  t.same(planListeners([svc('host', 8025, ['127.0.0.1', '::1'])]), [
    { address: '127.0.0.1', port: 8025 },
    { address: '::1', port: 8025 },
  ])
})

t.test('planListeners uses one wildcard listener for a wildcard service', async t => {
  t.same(planListeners([svc('wild', 8025, null)]), [{ address: null, port: 8025 }])
})

t.test('planListeners uses one wildcard listener for a port with several services', async t => {
  t.same(planListeners([svc('a', 8025, ['127.0.0.1']), svc('b', 8025, ['127.0.0.2'])]), [{ address: null, port: 8025 }])
  t.same(planListeners([svc('a', 8025, ['127.0.0.1']), svc('w', 8025, null)]), [{ address: null, port: 8025 }])
})

t.test('planListeners lists ports in the order they first appear', async t => {
  t.same(
    planListeners([
      svc('a', 9000, ['127.0.0.1']),
      svc('b', 25, null),
      svc('c', 9000, ['127.0.0.2']),
      svc('d', 8025, ['::1']),
    ]),
    [
      { address: null, port: 9000 },
      { address: null, port: 25 },
      { address: '::1', port: 8025 },
    ],
  )
  t.same(planListeners([]), [])
})

t.test('a port with a transparent service gets a transparent listener', async t => {
  const tp = (s: Svc): Svc => ({ ...s, transparent: true })
  t.same(planListeners([tp(svc('a', 8082, null))]), [{ address: null, port: 8082, transparent: true }])
  t.same(planListeners([tp(svc('a', 8082, ['10.0.0.1']))]), [{ address: '10.0.0.1', port: 8082, transparent: true }])
  t.same(planListeners([svc('a', 8082, ['127.0.0.1']), tp(svc('w', 8082, null))]), [{ address: null, port: 8082, transparent: true }], 'shared: transparent when one needs it')
  t.same(planListeners([{ ...svc('a', 25, null), transparent: false }]), [{ address: null, port: 25 }])
})
