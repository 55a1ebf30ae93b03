/** lib/control/client.ts against real UNIX sockets: answers, and each way of not getting one. */
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { isErrorAnswer, request } from '../../lib/control/client.js'
import { openControl, socketDir } from '../fixtures/control.js'

const dir = socketDir

/** A socket server at a fresh path that does `serve` with each connection. */
async function raw(t: Test, serve: (c: Socket) => void): Promise<string> {
  const path = join(dir(t), 'ctl')
  const s = createServer(serve)
  await new Promise<void>(r => s.listen(path, r))
  t.teardown(() => s.close())
  return path
}

t.test('an answer, read up to its empty line; errors are marked', async t => {
  const { path } = await openControl(t)
  t.same(await request(path, 'kill session 7'), { text: 'session 7 killed\n\n', error: false })
  t.same(await request(path, 'kill session 9'), { text: 'error: no session 9\n\n', error: true })
  t.same(await request(path, 'kill session 9 json'), { text: '{"error":"no session 9"}\n\n', error: true })
  t.match((await request(path, 'show sessions')).text, /^id .*\n 7 .*\n\n$/)
})

t.test('an answer that comes in pieces is read whole', async t => {
  const path = await raw(t, c => {
    c.write('a  b\n')
    setTimeout(() => c.end('1  2\n\n'), 30)
  })
  t.same(await request(path, 'show stats'), { text: 'a  b\n1  2\n\n', error: false })
})

t.test('one line naming the path for a missing, refused, dead or silent socket', async t => {
  const d = dir(t)
  await t.rejects(request(join(d, 'none'), 'help'), { code: 'ERR_IO', message: `control socket ${d}/none: no such file` })
  // The socket file of a process that died.
  const stale = join(d, 'stale')
  spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`])
  await t.rejects(request(stale, 'help'), { message: `control socket ${stale}: connection refused (no tcpproxy serves it)` })
  writeFileSync(join(d, 'file'), '')
  await t.rejects(request(join(d, 'file', 'x'), 'help'), { message: new RegExp(`^control socket ${d}/file/x: .*ENOTDIR`) })
  const closing = await raw(t, c => c.end('half an answer\n'))
  await t.rejects(request(closing, 'help'), { message: `control socket ${closing}: closed before the answer ended` })
  const silent = await raw(t, () => {})
  await t.rejects(request(silent, 'help', 100), { message: `control socket ${silent}: no answer within 0.1 s` })
})

t.test('isErrorAnswer: error text or JSON error, nothing else', async t => {
  t.equal(isErrorAnswer('error: x\n\n'), true)
  t.equal(isErrorAnswer('{"error":"x"}\n\n'), true)
  t.equal(isErrorAnswer('{"ok":"x"}\n\n'), false)
  t.equal(isErrorAnswer('id  service\n\n'), false)
})
