/**
 * lib/session/connect-lines.ts: the lines of an upstream connect, byte for
 * byte as the original wrote them, with their JSON fields.
 */
import t from 'tap'
import { connectFailedLine, connectionErrorLine, connectLine } from '../../lib/session/connect-lines.js'

const who = { client: '192.0.2.1', clientPort: 5000, service: '*:25', pid: 7 }
const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:25'), { code: 'ECONNREFUSED', syscall: 'connect' })
const fields = { server: '10.0.0.5:25', client: '192.0.2.1', client_port: 5000, service: '*:25', pid: 7 }

t.test('a failed attempt: -INFO connect-failed, the server and the error', async t => {
  const l = connectFailedLine('10.0.0.5:25', refused)
  t.same([l.tag, l.event, l.text], ['-INFO', 'connect-failed', "can't connect to server 10.0.0.5:25, error= connect ECONNREFUSED 10.0.0.5:25"])
  t.same(l.fields(who), fields)
})

t.test('every attempt failed: -ERR connection-error, the client, the last server and its error', async t => {
  const l = connectionErrorLine('192.0.2.1', '10.0.0.5:25', refused)
  t.same([l.tag, l.event, l.text], ['-ERR', 'connection-error', 'connection error: client= 192.0.2.1, server= 10.0.0.5:25, error= connect ECONNREFUSED 10.0.0.5:25'])
  t.same(l.fields(who), fields)
})

t.test('connected: +INFO connect, the client, the server and the idle timeout as configured', async t => {
  const l = connectLine('192.0.2.1', '[2001:db8::5]:25', 3600)
  t.same([l.tag, l.event, l.text], ['+INFO', 'connect', 'connect: client= 192.0.2.1, server= [2001:db8::5]:25, timeout= 3600'])
  t.same(l.fields(who), { ...fields, server: '[2001:db8::5]:25' })
})
