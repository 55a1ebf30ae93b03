import { SocketAddress } from 'node:net'
import t from 'tap'
import { TcpproxyError } from '../../lib/errors.js'
import type { ProxyAddresses } from '../../lib/protocol/header.js'
import { canonicalIPv6, checkIPv4, checkIPv6, checkPort, sendableEndpoint } from '../../lib/protocol/ip-text.js'
import { formatProxyV1 } from '../../lib/protocol/v1.js'
import { formatProxyV2 } from '../../lib/protocol/v2.js'
import { v4, v6 } from '../fixtures/proxy-headers.js'

t.test('bad input is a caller bug, reported as a TcpproxyError', async t => {
  const bad: ProxyAddresses[] = [
    v4('1.2.3', 1, '5.6.7.8', 2),
    v4('1.2.3.4', 1, '::1', 2),
    v6('1.2.3.4', 1, '::1', 2),
    v6('::1', 1, 'fe80::1::2', 2),
    v4('1.2.3.4', 65536, '5.6.7.8', 2),
    v4('1.2.3.4', 1, '5.6.7.8', -1),
    v4('1.2.3.4', 1.5, '5.6.7.8', 2),
  ]
  for (const a of bad) {
    for (const format of [formatProxyV1, (x: ProxyAddresses) => formatProxyV2(x)]) {
      t.throws(() => format(a), { name: 'TcpproxyError', code: 'ERR_RUNTIME', message: /^cannot format a PROXY header: invalid / })
    }
  }
  t.ok(new TcpproxyError('ERR_RUNTIME', 'x') instanceof Error)
})

t.test('the checks take prefixes as well as whole fields', async t => {
  t.equal(checkPort('65535'), null)
  t.equal(checkPort('0'), null)
  t.equal(checkPort('01'), 'leading zero in port')
  t.equal(checkIPv4('192.0.2.', false), null, 'a prefix of an address')
  t.equal(checkIPv4('192.0.2.', true), 'IPv4 address needs 4 octets')
  t.equal(checkIPv6('2001:db8:', false), null, 'a prefix of an address')
  t.equal(checkIPv6('2001:db8:', true), 'IPv6 address ends with a single ":"')
  t.equal(checkIPv6('::ffff:192.0.2.1', true), null, 'a dotted IPv4 tail')
})

t.test('canonical IPv6 text is what Node reports', async t => {
  for (const text of ['::', '::1', '1::', 'FE80:0:0:0:0:0:0:1', '::ffff:192.0.2.1', '::192.0.2.1', '2001:db8:0:0:1:0:0:1']) {
    t.equal(canonicalIPv6(text), new SocketAddress({ address: text, family: 'ipv6' }).address, text)
  }
})

t.test('a sendable endpoint: canonical text and network-order bytes, zone index dropped', async t => {
  t.same(sendableEndpoint('IPv4', '192.0.2.1', 80), { text: '192.0.2.1', bytes: Buffer.from([192, 0, 2, 1]) })
  const { text, bytes } = sendableEndpoint('IPv6', 'FE80::1%eth0', 443)
  t.equal(text, 'fe80::1')
  t.equal(bytes.toString('hex'), 'fe800000000000000000000000000001')
})
