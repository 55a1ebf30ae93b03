/**
 * lib/session/outgoing-header.ts: the send-proxy header a session sends
 * first, for either version and for mixed address families.
 */
import t from 'tap'
import { outgoingHeader } from '../../lib/session/outgoing-header.js'

t.test('no version, no header', async t => {
  t.equal(outgoingHeader(null, { address: '192.0.2.1', port: 1 }, { address: '192.0.2.2', port: 2 }), null)
})

t.test('v1 names the client and the destination', async t => {
  t.equal(outgoingHeader('v1', { address: '192.0.2.1', port: 40000 }, { address: '192.0.2.2', port: 25 })?.toString(), 'PROXY TCP4 192.0.2.1 192.0.2.2 40000 25\r\n')
  t.equal(outgoingHeader('v1', { address: '2001:db8::1', port: 40000 }, { address: '::1', port: 25 })?.toString(), 'PROXY TCP6 2001:db8::1 ::1 40000 25\r\n')
})

t.test('mixed families cannot be expressed: v1 says UNKNOWN, v2 LOCAL', async t => {
  t.equal(outgoingHeader('v1', { address: '192.0.2.1', port: 40000 }, { address: '::1', port: 25 })?.toString(), 'PROXY UNKNOWN\r\n')
  const v2 = outgoingHeader('v2', { address: '::1', port: 40000 }, { address: '192.0.2.2', port: 25 }) as Buffer
  t.equal(v2[12], 0x20, 'version 2, command LOCAL')
  t.equal(v2[13], 0x00, 'no family')
})

t.test('v2 carries the addresses in binary', async t => {
  const v2 = outgoingHeader('v2', { address: '192.0.2.1', port: 40000 }, { address: '192.0.2.2', port: 25 }) as Buffer
  t.equal(v2[12], 0x21, 'version 2, command PROXY')
  t.equal(v2[13], 0x11, 'TCP over IPv4')
  t.same([...v2.subarray(16, 24)], [192, 0, 2, 1, 192, 0, 2, 2])
  t.same([v2.readUInt16BE(24), v2.readUInt16BE(26)], [40000, 25])
})
