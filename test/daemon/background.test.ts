import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { PassThrough } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { launchDetached } from '../../lib/daemon/background.js'

const child = fileURLToPath(new URL('../fixtures/unit-daemon-child.mjs', import.meta.url))

t.test('the launcher learns that the daemon is ready, and prints what it wrote to stderr meanwhile', async t => {
  const stderr = new PassThrough()
  let said = ''
  stderr.on('data', d => (said += d))
  const r = await launchDetached(process.execPath, [child, 'ok'], process.env, stderr)
  t.match(r, { ok: true, pid: Number })
  t.equal(said, 'first words\nsecond words\nno newline\n', 'in order, line by line; nothing after the report')
})

t.test('the launcher gets the daemon\'s exit code and one-line message', async t => {
  t.same(await launchDetached(process.execPath, [child, 'err'], process.env), { ok: false, code: 3, message: 'cannot bind something' })
})

t.test('a daemon that dies without a word is a failure', async t => {
  t.same(await launchDetached(process.execPath, [child, 'silent'], process.env), {
    ok: false,
    code: 1,
    message: 'the daemon exited before it was ready',
  })
})

t.test('a second report after the pipe is closed is dropped', async t => {
  t.match(await launchDetached(process.execPath, [child, 'twice'], process.env), { ok: true })
})

t.test('a launcher that has gone away: the daemon\'s words and report are dropped, the daemon goes on', async t => {
  const p = spawn(process.execPath, [child, 'gone'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], env: { ...process.env, TCPPROXY_STATUS_FD: '3' } })
  ;(p.stdio[3] as NodeJS.ReadableStream & { destroy(): void }).destroy()
  let err = ''
  p.stderr?.on('data', d => (err += d))
  const [code] = await once(p, 'exit')
  t.equal(code, 0)
  t.equal(err, '', 'no EPIPE, no stack trace')
})
