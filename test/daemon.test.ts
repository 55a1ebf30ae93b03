import t from 'tap'
import { fileURLToPath } from 'node:url'
import { launchDetached } from '../lib/daemon.js'

const child = fileURLToPath(new URL('./fixtures/unit-daemon-child.mjs', import.meta.url))

t.test('the launcher learns that the daemon is ready', async t => {
  const r = await launchDetached(process.execPath, [child, 'ok'], process.env)
  t.match(r, { ok: true, pid: Number })
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
