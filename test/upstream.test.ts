import t from 'tap'
import { connectFirst, connectOne, type FailedAttempt } from '../lib/upstream.js'
import { backend, freePort, hangingPort } from './fixtures/harness.js'

t.test('connectOne gives a half-open capable socket', async t => {
  const up = await backend(s => s.on('error', () => {}).end('hi'))
  t.teardown(() => up.close())
  const s = await connectOne('127.0.0.1', up.port, 1000)
  t.equal(s.allowHalfOpen, true)
  s.destroy()
})

t.test('connectFirst tries the list in order and reports each failure', async t => {
  const dead1 = await freePort()
  const dead2 = await freePort()
  const up = await backend(s => s.on('error', () => {}).end())
  t.teardown(() => up.close())
  const failed: FailedAttempt[] = []
  const c = await connectFirst(
    [{ host: '127.0.0.1', port: dead1 }, { host: '127.0.0.1', port: null }, { host: 'localhost', port: up.port }],
    dead2,
    1000,
    f => failed.push(f),
  )
  t.same(failed.map(f => [f.port, (f.error as NodeJS.ErrnoException).code]), [[dead1, 'ECONNREFUSED'], [dead2, 'ECONNREFUSED']])
  t.equal(c.host, 'localhost')
  t.equal(c.port, up.port)
  c.socket.destroy()
})

t.test('connectFirst rejects with the last failure when none accepts', async t => {
  const dead = await freePort()
  const err = await connectFirst([{ host: '127.0.0.1', port: dead }], 1, 1000, () => {}).catch((e: unknown) => e)
  t.match(err, { port: dead, error: { code: 'ECONNREFUSED' } })
})

t.test('a connect that hangs is abandoned after the timeout', async t => {
  const port = await hangingPort(t, 8000)
  const start = Date.now()
  await t.rejects(connectOne('127.0.0.1', port, 300), { code: 'ETIMEDOUT', message: 'connect timed out after 0.3 s' })
  t.ok(Date.now() - start < 2000)
})
