/**
 * lib/daemon/standalone.ts through bin/tcpproxy in the foreground (one
 * process): ready, then the signals: TERM lets an open session finish
 * within --grace and exits 0 with the pidfile removed. (Reloads, the second
 * signal and the supervisor: test/e2e/daemon.test.ts, relay.test.ts.)
 */
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { backend, startProxy } from '../fixtures/harness.js'

const root = process.getuid?.() === 0

for (const grace of ['5', '0.5']) t.test(`SIGTERM with an open session and --grace ${grace}: logged, drained or cut at the grace, exit 0`, async t => {
  // An upstream that answers once the client has finished.
  const up = await backend(s => {
    s.on('error', () => {})
    s.on('end', () => s.end('bye'))
    s.resume()
  })
  t.teardown(() => up.close())
  const pidfile = join(t.testdir({}), 'tcpproxy.pid')
  const p = await startProxy(port => ['-d', ...(root ? ['-u', 'root'] : []), '--grace', grace, '--pidfile', pidfile, '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.teardown(p.stop)
  t.equal(readFileSync(pidfile, 'utf8'), `${p.proc.pid}\n`)
  const c = connect({ port: p.port, host: '127.0.0.1' }).on('error', () => {})
  t.teardown(() => c.destroy())
  let got = ''
  c.on('data', d => (got += d))
  await p.waitFor(/\+INFO: connect:/)
  const start = Date.now()
  p.proc.kill('SIGTERM')
  t.match(await p.waitFor(/caught SIGTERM/), '+INFO: caught SIGTERM, stopping')
  if (grace === '5') {
    // The session is let finish: the client ends it and gets its answer.
    await new Promise(r => setTimeout(r, 300))
    t.equal(p.proc.exitCode, null, 'still draining')
    c.end()
    t.equal(await p.exited, 0)
    t.equal(got, 'bye', 'the open session finished normally')
  } else {
    t.equal(await p.exited, 0, 'the grace ran out: cut, still a normal stop')
    const took = Date.now() - start
    t.ok(took >= 400 && took < 5000, `stopped after the grace (${took} ms)`)
  }
  t.notOk(existsSync(pidfile), 'the pidfile is removed')
})
