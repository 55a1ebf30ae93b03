/**
 * lib/session/end-lines.ts: the lines that end a relayed session, byte for
 * byte as the original wrote them, with their JSON fields.
 */
import t from 'tap'
import { endLines } from '../../lib/session/end-lines.js'

const who = { client: '192.0.2.1', clientPort: 5000, service: '*:25', pid: 7 }
const base = { received: 12, sent: 3, error: null }

t.test('a plain end: one disconnect line, who closed first, the duration to the millisecond', async t => {
  const [d, ...rest] = endLines({ ...base, closedBy: 'client' }, '192.0.2.1', '10.0.0.5:25', 1.23456)
  t.same(rest, [])
  t.same([d?.tag, d?.event], ['+OK', 'disconnect'])
  t.equal(d?.text, 'disconnect: client= 192.0.2.1, server= 10.0.0.5:25, received= 12, send= 3, duration= 1.235, closed-by= client')
  t.match(d?.fields(who), { client: '192.0.2.1', client_port: 5000, server: '10.0.0.5:25', received: 12, sent: 3, duration: 1.235, closed_by: 'client' })
})

t.test('a timeout, and an error on either side, come first', async t => {
  const timeout = endLines({ ...base, closedBy: 'timeout' }, '192.0.2.1', '10.0.0.5:25', 60)
  t.same(timeout.map(l => [l.tag, l.text]), [
    ['-ERR', 'connection timed out: client= 192.0.2.1, server= 10.0.0.5:25'],
    ['+OK', 'disconnect: client= 192.0.2.1, server= 10.0.0.5:25, received= 12, send= 3, duration= 60.000, closed-by= timeout'],
  ])
  t.match(timeout[0]?.fields(who), { server: '10.0.0.5:25' })
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' })
  for (const [closedBy, side] of [['client-error', 'client'], ['server-error', 'server']] as const) {
    const [e] = endLines({ ...base, closedBy, error: reset }, '192.0.2.1', '10.0.0.5:25', 1)
    t.same([e?.tag, e?.event], ['-INFO', 'socket-error'])
    t.match(e?.text, new RegExp(`^${side} close\\(\\) detected, error= `))
    t.same(e?.fields(who), { client: '192.0.2.1', client_port: 5000, service: '*:25', pid: 7 })
  }
})
