/**
 * The foreground stream logger of -d.
 */
import t from 'tap'
import { PassThrough, Writable } from 'node:stream'
import { keepAlive, streamLogger } from '../../lib/log/logger.js'


/** Lines are written once per event-loop turn: wait for it. */
const turn = (): Promise<void> => new Promise(resolve => setImmediate(resolve))

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough()
  const chunks: Buffer[] = []
  stream.on('data', (c: Buffer) => chunks.push(c))
  return { stream, text: () => Buffer.concat(chunks).toString() }
}

t.test('streamLogger writes ident[pid]: lines, one per entry', async t => {
  const out = capture()
  const logger = streamLogger(out.stream, 'tcpproxy', 4242, false)
  t.equal(logger.debug, false)
  logger.log({ tag: '', event: 'bound', text: 'bound to 127.0.0.1:8025' })
  logger.log({ tag: '+INFO', event: 'connect', text: 'connect: client= 127.0.0.1', id: 1 })
  t.equal(out.text(), '', 'nothing is written before the turn ends')
  await turn()
  t.equal(out.text(), 'tcpproxy[4242]: bound to 127.0.0.1:8025\ntcpproxy[4242]: +INFO: connect: client= 127.0.0.1, id= 1\n')
})

t.test('streamLogger drops +DEBUG entries unless debug is on', async t => {
  const quiet = capture()
  const q = streamLogger(quiet.stream, 'tp', 1, false)
  q.log({ tag: '+DEBUG', event: 'trace', text: 'hidden' })
  q.log({ tag: '-INFO', event: 'close', text: 'shown' })
  await turn()
  t.equal(quiet.text(), 'tp[1]: -INFO: shown\n')

  const loud = capture()
  const l = streamLogger(loud.stream, 'tp', 2, true)
  t.equal(l.debug, true)
  l.log({ tag: '+DEBUG', event: 'trace', text: 'visible', id: 3 })
  await turn()
  t.equal(loud.text(), 'tp[2]: +DEBUG: visible, id= 3\n')
})

t.test('streamLogger with format json writes one bare JSON object per line', async t => {
  const out = capture()
  const before = Date.now()
  const logger = streamLogger(out.stream, 'tcpproxy', 4242, false, 'json')
  logger.log({ tag: '+OK', event: 'disconnect', id: 5, text: 'disconnect: client= ::1', fields: { client: '::1', received: 3, sent: 4 } })
  logger.log({ tag: '+DEBUG', event: 'trace', text: 'hidden' })
  logger.log({ tag: '', event: 'ready', text: 'ready' })
  await turn()
  const lines = out.text().split('\n')
  t.equal(lines.pop(), '', 'every line ends with a newline')
  t.equal(lines.length, 2, '+DEBUG is left out unless debug is on')
  const [first, second] = lines.map(l => JSON.parse(l) as Record<string, unknown>)
  t.same(Object.keys(first ?? {}), ['time', 'level', 'event', 'id', 'client', 'received', 'sent', 'message'])
  t.match(first, { level: 'info', event: 'disconnect', id: 5, client: '::1', received: 3, sent: 4, message: 'disconnect: client= ::1' })
  t.ok(Date.parse(first?.['time'] as string) >= before - 1, 'time is now')
  t.match(second, { level: 'notice', event: 'ready', message: 'ready' })

  const loud = capture()
  streamLogger(loud.stream, 'tp', 1, true, 'json').log({ tag: '+DEBUG', event: 'trace', text: 'visible' })
  await turn()
  t.match(JSON.parse(loud.text()), { level: 'debug', event: 'trace', message: 'visible' })
})

t.test('streamLogger with format text is the default', async t => {
  const a = capture()
  const b = capture()
  streamLogger(a.stream, 'tp', 1, false, 'text').log({ tag: '+INFO', event: 'x', text: 'same', id: 2 })
  streamLogger(b.stream, 'tp', 1, false).log({ tag: '+INFO', event: 'x', text: 'same', id: 2 })
  await turn()
  t.equal(a.text(), 'tp[1]: +INFO: same, id= 2\n')
  t.equal(b.text(), a.text())
})

t.test('streamLogger writes the lines of one turn with one write; flush() writes them at once', async t => {
  const writes: string[] = []
  const stream = new PassThrough()
  stream.on('data', (c: Buffer) => writes.push(c.toString()))
  const logger = streamLogger(stream, 'tp', 1, false)
  logger.log({ tag: '+INFO', event: 'a', text: 'one' })
  logger.log({ tag: '+INFO', event: 'b', text: 'two' })
  await turn()
  t.same(writes, ['tp[1]: +INFO: one\ntp[1]: +INFO: two\n'])
  logger.log({ tag: '-ERR', event: 'c', text: 'three' })
  logger.flush()
  logger.flush()
  await turn()
  t.same(writes.slice(1), ['tp[1]: -ERR: three\n'], 'flushed once, and the scheduled write finds nothing left')
})

/** A stream whose reader is gone: every write fails with EPIPE. */
function brokenPipe(): Writable & { writes: number } {
  const stream = new Writable({
    write(_chunk, _encoding, done) {
      stream.writes++
      done(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))
    },
  }) as Writable & { writes: number }
  stream.writes = 0
  return stream
}

t.test('a log stream whose reader went away: the error is taken, later lines are dropped, nothing throws', async t => {
  const stream = brokenPipe()
  const logger = streamLogger(stream, 'tcpproxy', 1, false)
  logger.log({ tag: '+INFO', event: 'x', text: 'first' })
  await turn()
  await turn()
  t.equal(stream.writes, 1)
  logger.log({ tag: '+INFO', event: 'x', text: 'second' })
  await turn()
  t.equal(stream.writes, 1, 'not written to again')
})

t.test('keepAlive: a stream is alive until it fails or is destroyed', async t => {
  const ok = new PassThrough()
  const alive = keepAlive(ok)
  t.ok(alive())
  ok.destroy()
  t.notOk(alive())
})
