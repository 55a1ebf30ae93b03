/** lib/control/server.ts over real UNIX sockets, with an in-memory backend. */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, lstatSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
import { createConnection, type Socket } from 'node:net'
import { join } from 'node:path'
import { answerLine } from '../../lib/control/answer.js'
import { ControlServer } from '../../lib/control/server.js'
import { FakeBackend, SESSION, openControl, socketDir } from '../fixtures/control.js'

const dir = socketDir
const open = openControl

/** Connect, send `text` (then half-close when `end`), and read until the server closes or `answers` answers came. */
async function talk(path: string, text: string, opts: { end?: boolean; answers?: number } = {}): Promise<string> {
  const c = createConnection(path)
  c.setEncoding('utf8')
  let got = ''
  const done = new Promise<void>(resolve => {
    c.on('data', (d: string) => {
      got += d
      if (opts.answers !== undefined && got.split('\n\n').length > opts.answers) resolve()
    })
    c.on('close', () => resolve())
  })
  c.on('error', () => {})
  c.write(text)
  if (opts.end === true) c.end()
  await done
  c.destroy()
  return got
}

t.test('mode 0600, several commands on one connection, removed at close', async t => {
  const { path, server } = await open(t)
  const st = lstatSync(path)
  t.ok(st.isSocket())
  t.equal(st.mode & 0o777, 0o600)
  t.equal(st.uid, process.getuid?.())
  t.same(readdirSync(join(path, '..')), ['ctl'], 'nothing else left in the directory')
  const got = await talk(path, 'show stats\nkill session 7\n', { answers: 2 })
  t.match(got, /^services +servers .*\n +1 +1 .*\n\nsession 7 killed\n\n$/)
  await server.close()
  t.notOk(existsSync(path), 'the socket is gone')
})

t.test('with a group: mode 0660, the group is the given gid', async t => {
  const { path } = await open(t, { gid: 1 })
  const st = lstatSync(path)
  t.equal(st.mode & 0o777, 0o660)
  t.equal(st.gid, 1)
})

t.test('a stale socket (its tcpproxy died) is replaced', async t => {
  const path = join(dir(t), 'ctl')
  // A process that binds the socket and dies without removing it.
  const r = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`])
  t.equal(r.signal, 'SIGKILL')
  t.ok(lstatSync(path).isSocket(), 'left behind')
  const cx = { backend: new FakeBackend(), disabled: new Set<string>(), now: () => 0 }
  const server = await ControlServer.open({ path, gid: null, answer: line => answerLine(line, cx), umask: m => process.umask(m) })
  t.teardown(() => server.close())
  t.match(await talk(path, 'help\n', { answers: 1 }), /^show sessions/)
})

t.test('a live one is refused, naming the path; a file that is not a socket is left alone', async t => {
  const { path } = await open(t)
  const again = (p: string) => ControlServer.open({ path: p, gid: null, answer: async () => ({ text: '\n\n', error: false }), umask: m => process.umask(m) })
  await t.rejects(again(path), { code: 'ERR_RUNTIME', message: `control socket ${path}: in use by a running tcpproxy` })
  t.ok(lstatSync(path).isSocket(), 'the live socket stays')
  const file = join(dir(t), 'file')
  writeFileSync(file, 'mine')
  await t.rejects(again(file), { message: `control socket ${file}: exists and is not a socket` })
  t.ok(existsSync(file))
  await t.rejects(again(join(file, 'x')), { message: new RegExp(`^control socket ${file}/x: .*ENOTDIR`) })
  await t.rejects(again(join(dir(t), 'no', 'such')), { message: /^control socket .*\/no\/such: listen E/ })
  // A datagram socket on the path: connect fails otherwise than refused; not ours to remove.
  const dgram = join(dir(t), 'dgram')
  const py = spawn('python3', ['-c', `import socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(${JSON.stringify(dgram)}); print(1, flush=True); sys.stdin.read()`], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => py.kill())
  await once(py.stdout, 'data')
  await t.rejects(again(dgram), { message: new RegExp(`^control socket ${dgram}: .*EPROTOTYPE`) })
  t.ok(existsSync(dgram))
})

t.test('a socket replaced by a newer daemon is not removed by the older one', async t => {
  const { path, server } = await open(t)
  const newer = `${path}.newer`
  writeFileSync(newer, 'newer')
  renameSync(newer, path)
  await server.close()
  t.ok(existsSync(path))
  server.removeSync()
})

t.test('a line too long ends its connection; a long command line gets its error', async t => {
  const { path } = await open(t)
  t.equal(await talk(path, 'x'.repeat(5000)), 'error: command too long (over 1024 characters)\n\n')
  t.equal(await talk(path, `${'y'.repeat(1100)}\nhelp\n`, { answers: 2 }).then(s => s.split('\n')[0]), 'error: command too long (over 1024 characters)')
})

t.test('the client half-closes: its last line (even without a newline) is answered, then the server closes', async t => {
  const { path } = await open(t)
  t.match(await talk(path, 'show sessions', { end: true }), /^id .*\n 7 .*relaying\n\n$/)
  t.equal(await talk(path, '', { end: true }), '')
})

t.test('lines that arrive while an answer is pending are answered in order', async t => {
  const backend = new FakeBackend()
  let release!: () => void
  backend.gate = new Promise(r => (release = r))
  const { path } = await open(t, {}, backend)
  const c = createConnection(path)
  c.setEncoding('utf8')
  let got = ''
  c.on('data', (d: string) => (got += d))
  c.write('show sessions\n')
  await new Promise(r => setTimeout(r, 50))
  c.write('kill session 7\n')
  c.end('help')
  await new Promise(r => setTimeout(r, 50))
  t.equal(got, '', 'nothing yet')
  release()
  await once(c, 'close')
  const answers = got.split('\n\n')
  t.equal(answers.length, 4)
  t.match(answers[0], /^id /)
  t.equal(answers[1], 'session 7 killed')
  t.match(answers[2], /^show sessions/)
})

t.test('at most maxClients connections; the next one is told and closed', async t => {
  const { path } = await open(t, { maxClients: 2 })
  const held: Socket[] = []
  for (let i = 0; i < 2; i++) {
    const c = createConnection(path).on('error', () => {})
    await once(c, 'connect')
    held.push(c)
  }
  // The server has counted both once they answer.
  for (const c of held) {
    c.write('help\n')
    await once(c, 'data')
  }
  t.equal(await talk(path, 'help\n'), 'error: too many control connections (2)\n\n')
  held[0]!.destroy()
  await new Promise(r => setTimeout(r, 50))
  t.match(await talk(path, 'help\n', { answers: 1 }), /^show sessions/, 'a slot is free again')
  for (const c of held) c.destroy()
})

t.test('an idle connection is closed, freeing its slot', async t => {
  const { path, server } = await open(t, { idleMs: 100, maxClients: 1 })
  const c = createConnection(path).on('error', () => {})
  const closed = once(c, 'close')
  c.resume().write('help\n')
  await closed
  for (let i = 0; i < 50 && server.connections > 0; i++) await new Promise(r => setTimeout(r, 10))
  t.equal(server.connections, 0)
  t.match(await talk(path, 'help\n', { answers: 1 }), /^show sessions/)
})

t.test('a client that never reads is cut; the others are served meanwhile', async t => {
  const backend = new FakeBackend()
  backend.rows = Array.from({ length: 2000 }, (_, i) => ({ ...SESSION, id: i + 1 }))
  const { path, server } = await open(t, { maxPending: 64 * 1024 }, backend)
  const c = createConnection(path)
  c.on('error', () => {})
  c.pause()
  t.teardown(() => c.destroy())
  c.write('show sessions\n'.repeat(50))
  const answer = (await talk(path, 'show sessions\n', { answers: 1 })).length
  t.ok(answer > 100_000, `one answer is ${answer} bytes: 50 do not fit in the socket buffers`)
  for (let i = 0; i < 100 && server.connections > 0; i++) await new Promise(r => setTimeout(r, 20))
  t.equal(server.connections, 0, 'the client that does not read is cut')
})
