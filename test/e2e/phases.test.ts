/**
 * End to end, issue #13's rule: from accept to close a session owns an error
 * path on every socket, child process and stream it creates. A real reset
 * (RST) from the client, and one from the upstream, is driven into every
 * phase of a session: PROXY header, reverse lookup, ACP running, ACP
 * output, upstream connect, handler start, handler output, hand-over to the
 * relay thread, relay, `-w`, `--send-proxy`, and the SIGHUP and SIGTERM
 * windows. After each one a session opened before them all must still relay
 * both ways, and the daemon must still be there. With the relay thread and
 * with --no-relay-thread.
 */
import t from 'tap'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { backend, descendants, fixture, freePort, hangingPort, reachableDir, startProxy, tcpproxy, waitGone } from '../fixtures/harness.js'

const HEADER = 'PROXY TCP4 192.0.2.7 127.0.0.1 40000 8025\r\n'
/** A handler whose output is in flight when the client resets. */
const TALKER = fixture('handler-talker.sh')
/** Events after which a session has nothing more to log. */
const FINAL = new Set(['disconnect', 'handler-end', 'handler-error', 'access-denied', 'connection-error', 'proxy-header-error', 'socket-error', 'limit'])

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))
/** Resolves when `s` has closed, whatever error came first. */
/** Resolves with whether `s` connected (a loaded listener's kernel may refuse it). */
const opened = (s: Socket): Promise<boolean> =>
  new Promise(r => {
    s.once('connect', () => r(true))
    s.once('close', () => r(false))
  })
const closed = (s: Socket): Promise<void> => new Promise(r => (s.closed ? r() : s.once('close', () => r())))

/** What the controllable upstream does with its next connections. */
type Mode = 'echo' | 'reset' | 'reset-on-data'

for (const relay of ['the relay thread', '--no-relay-thread']) {
  t.test(`client and upstream resets in every phase of a session, ${relay}`, async t => {
    const echo = await backend(s => {
      s.on('error', () => {})
      s.pipe(s)
    })
    let mode: Mode = 'echo'
    const ctrl = await backend(s => {
      s.on('error', () => {})
      if (mode === 'reset') return void s.resetAndDestroy()
      if (mode === 'reset-on-data') return void s.once('data', () => s.resetAndDestroy())
      s.pipe(s)
    })
    t.teardown(() => [echo, ctrl].forEach(s => s.close()))
    const hole = await hangingPort(t, 60_000)
    // The worker runs as nobody: it writes the dumps.
    const dir = reachableDir(t)
    const conf = join(dir, 'tcpproxy.conf')
    const pidfile = join(dir, 'tcpproxy.pid')
    const names = ['long', 'plain', 'header', 'acp', 'acpOut', 'hole', 'headerHole', 'handler', 'handlerHeader', 'handlerAcp', 'dump', 'sendProxy', 'slowAcp', 'pipeline'] as const
    const port = Object.fromEntries(await Promise.all(names.map(async n => [n, await freePort()]))) as Record<(typeof names)[number], number>
    const service = (p: number, lines: string[]): string => [`port ${p}`, 'interface 127.0.0.1', ...lines].join('\n')
    const up = (p: number): string => `server 127.0.0.1:${p}`
    writeFileSync(
      conf,
      [
        'timeout 60',
        'connect-timeout 2',
        'acp-timeout 10',
        service(port.long, [up(echo.port)]),
        service(port.plain, [up(ctrl.port)]),
        service(port.header, [up(ctrl.port), 'accept-proxy 127.0.0.1']),
        service(port.acp, [up(ctrl.port), `acp ${fixture('acp-late.sh')} 0.3`]),
        service(port.acpOut, [up(ctrl.port), `acp ${fixture('acp-late.sh')} 0.3 204800`]),
        service(port.hole, [up(hole)]),
        service(port.headerHole, [up(hole), 'accept-proxy 127.0.0.1']),
        service(port.handler, [`exec ${TALKER}`]),
        service(port.handlerHeader, [`exec ${TALKER}`, 'accept-proxy 127.0.0.1']),
        service(port.handlerAcp, [`exec ${TALKER}`, `acp ${fixture('acp-late.sh')} 0.2`]),
        service(port.dump, [up(ctrl.port), `writefile ${join(dir, 'dump')}`]),
        service(port.sendProxy, [up(ctrl.port), 'send-proxy v2']),
        // Grants after the SIGTERM's grace period is over (the shutdown window of an ACP).
        service(port.slowAcp, [`exec ${TALKER}`, `acp ${fixture('acp-late.sh')} 4`]),
        service(port.pipeline, [`exec ${fixture('handler-pipeline.sh')}`]),
        '',
      ].join('\n'),
    )
    const extra = relay === '--no-relay-thread' ? ['--no-relay-thread'] : []
    const p = await startProxy(() => ['-d', '--log-format', 'json', '--grace', '2', '--pidfile', pidfile, ...extra, '-c', conf])
    t.teardown(p.stop)
    const events = (): Array<{ event: string; id?: number; message: string }> => p.lines.flatMap(l => (l.startsWith('{') ? [JSON.parse(l)] : []))

    /** The session opened before everything else; it must keep relaying both ways. */
    const long = connect({ port: port.long, host: '127.0.0.1' })
    long.on('error', () => {})
    let longGot = ''
    long.on('data', d => (longGot += d))
    let turn = 0
    const stillRelaying = async (what: string): Promise<void> => {
      const token = `<${++turn}:${what}>`
      long.write(token)
      const deadline = Date.now() + 5000
      while (!longGot.endsWith(token) && Date.now() < deadline) await sleep(5)
      t.ok(longGot.endsWith(token), `after ${what}: the earlier session still relays both ways`)
      t.equal(p.proc.exitCode, null, `after ${what}: the daemon is alive`)
    }
    await stillRelaying('start')

    /** Connect to `to`, send `first`, reset after `ms` (on connect for 0). Resolves with the client's port once closed (0: it never connected). */
    const resetAfter = async (to: number, ms: number, first = ''): Promise<number> => {
      const c: Socket = connect({ port: to, host: '127.0.0.1' })
      c.on('error', () => {})
      c.resume()
      if (!(await opened(c))) return 0
      const local = c.localPort as number
      if (first !== '') c.write(first)
      if (ms > 0) await sleep(ms)
      c.resetAndDestroy()
      await closed(c)
      return local
    }
    /**
     * Wait (bounded) until the session of the client on `local` has logged
     * its last line. A client that reset before the proxy looked at its
     * socket never became a session (no address left to log): after a
     * moment without a "connected" line, that is what happened.
     */
    let dropped = 0
    const ended = async (local: number, what: string): Promise<void> => {
      const start = Date.now()
      let done = false
      while (!done && Date.now() - start < 4000) {
        const all = events()
        const id = all.find(e => e.event === 'connected' && e.message.endsWith(`client= 127.0.0.1:${local}`))?.id
        if (id === undefined && Date.now() - start > 200) {
          dropped++
          return
        }
        done = id !== undefined && all.some(e => e.id === id && FINAL.has(e.event))
        if (!done) await sleep(20)
      }
      t.ok(done, `${what}: the session ended with its line`)
    }
    /** A client reset into one phase: `times` connections. */
    const clientReset = async (what: string, to: number, ms: number, first = '', times = 1): Promise<void> => {
      for (let i = 0; i < times; i++) await ended(await resetAfter(to, ms, first), what)
      await stillRelaying(`a client reset in ${what}`)
    }
    /** The upstream resets (on accept, or on the first data) while a client talks through `to`. */
    const upstreamReset = async (what: string, how: Mode, to: number, first = 'data', times = 1): Promise<void> => {
      mode = how
      for (let i = 0; i < times; i++) {
        const c = connect({ port: to, host: '127.0.0.1' })
        c.on('error', () => {})
        c.resume()
        if (!(await opened(c))) continue
        const local = c.localPort as number
        c.write(first)
        await closed(c)
        await ended(local, what)
      }
      mode = 'echo'
      await stillRelaying(`an upstream reset in ${what}`)
    }

    await clientReset('the PROXY header', port.header, 30, 'PROXY TCP4 192.0')
    // Complete headers, then a reset (issue #13 item 2): Node reads on after the header.
    await clientReset('the moment after a complete PROXY header', port.header, 0, `${HEADER}x`, 10)
    await clientReset('the upstream connect after a PROXY header', port.headerHole, 100, HEADER)
    await upstreamReset('the PROXY header\'s upstream', 'reset', port.header, HEADER)
    await clientReset('the reverse lookup', port.acp, 0)
    await clientReset('the ACP run', port.acp, 100)
    await upstreamReset('the connect after an ACP', 'reset', port.acp)
    await clientReset('the ACP output', port.acpOut, 150)
    await clientReset('the upstream connect', port.hole, 100, 'x')
    await upstreamReset('the upstream connect', 'reset', port.plain, 'x', 10)
    await clientReset('the handler start', port.handler, 0, 'x')
    await clientReset('the handler output', port.handler, 100)
    await clientReset('a piped handler\'s output (after a PROXY header)', port.handlerHeader, 100, `${HEADER}x`)
    await clientReset('the ACP of a handler service', port.handlerAcp, 100)
    // The hand-over to the relay thread: the connect completes, the client's data is still in Node.
    await clientReset('the hand-over to the relay', port.plain, 0, 'x', 10)
    await clientReset('the relay', port.plain, 50, 'some data')
    await upstreamReset('the relay', 'reset-on-data', port.plain)
    await clientReset('the relay with -w', port.dump, 50, 'dumped data')
    await upstreamReset('the relay with -w', 'reset-on-data', port.dump)
    await clientReset('--send-proxy', port.sendProxy, 50, 'after the header')
    await upstreamReset('--send-proxy (on the header)', 'reset', port.sendProxy)

    // The SIGHUP window: a reload while connections in several phases are reset.
    p.proc.kill('SIGHUP')
    mode = 'reset-on-data'
    await Promise.all([
      resetAfter(port.header, 0, `${HEADER}x`),
      resetAfter(port.acp, 50),
      resetAfter(port.handler, 20),
      resetAfter(port.plain, 0, 'x'),
      resetAfter(port.dump, 10, 'x'),
    ])
    await p.waitFor(/"event":"reload"/)
    mode = 'echo'
    await stillRelaying('resets in the SIGHUP window')

    // The SIGTERM window: an ACP still running for a handler service when the
    // grace period ends (issue #13 item 4), resets during the grace period.
    const slow = connect({ port: port.slowAcp, host: '127.0.0.1' })
    slow.on('error', () => {})
    slow.resume()
    const deadline = Date.now() + 5000
    while (!descendants(p.proc.pid as number).some(d => d.argv.join(' ').includes('acp-late.sh 4')) && Date.now() < deadline) await sleep(20)
    // A handler whose children do the work: the shutdown must end them too.
    const piped = connect({ port: port.pipeline, host: '127.0.0.1' })
    piped.on('error', () => {})
    piped.resume()
    let cats: number[] = []
    for (let i = 0; i < 250 && cats.length < 2; i++) {
      cats = descendants(p.proc.pid as number).filter(d => d.argv.join(' ') === 'cat').map(d => d.pid)
      if (cats.length < 2) await sleep(20)
    }
    t.equal(cats.length, 2, 'the pipeline handler runs its two cats')
    const established = connect({ port: port.plain, host: '127.0.0.1' })
    established.on('error', () => {})
    established.resume()
    established.write('x')
    await sleep(100)
    p.proc.kill('SIGTERM')
    await p.waitFor(/"event":"signal"/)
    established.resetAndDestroy()
    await stillRelaying('a reset in the SIGTERM window')
    const code = await Promise.race([p.exited, sleep(10_000).then(() => 'still running')])
    t.equal(code, 0, 'the daemon stopped cleanly')
    t.notOk(existsSync(pidfile), 'and removed its pidfile')
    t.notOk(events().some(e => e.event === 'starting' && e.id !== undefined && events().some(c => c.id === e.id && c.message.includes(`:${port.slowAcp},`))), 'no handler started for the ACP cut by the shutdown')
    const leftover = readdirSync('/proc').filter(n => {
      try {
        const cmd = readFileSync(`/proc/${n}/cmdline`, 'utf8')
        return cmd.includes(fixture('acp-late.sh')) || cmd.startsWith('head\0-c\x003000000')
      } catch {
        return false
      }
    })
    t.same(leftover, [], 'no ACP or handler left running')
    t.ok((await Promise.all(cats.map(waitGone))).every(Boolean), 'nor the pipeline handler\'s cats')
    t.notOk(p.lines.some(l => /uncaught|TypeError|ERR_INVALID|worker-exit|is not iterable/i.test(l)), 'no crash on the way')
    t.comment(`${dropped} connection(s) reset before the proxy looked at them`)
    long.destroy()
  })
}

t.test('descriptors run out while ACPs and handlers start (ulimit -n 96, 150 connections at once): the daemon keeps serving', async t => {
  const port = await freePort()
  const run = tcpproxy(['-d', '--log-format', 'json', '--max-programs', '1000', '-a', fixture('acp-allow.sh'), '-b', `127.0.0.1:${port}`, '/bin/cat'], {
    prefix: ['/bin/sh', '-c', 'ulimit -n 96 && exec "$0" "$@"'],
  })
  t.teardown(() => run.proc.kill('SIGKILL'))
  await run.waitFor(/"event":"ready"/, 10_000)
  const burst = Array.from({ length: 150 }, () => {
    const c = connect({ port, host: '127.0.0.1' })
    c.on('error', () => {})
    c.resume()
    c.end('x')
    return closed(c)
  })
  await Promise.race([Promise.all(burst), sleep(20_000)])
  t.ok(run.lines.some(l => /"event":"resource-error"/.test(l)), 'running out was logged')
  // Once the burst is over, descriptors are free again: the next client is served.
  let echoed = ''
  for (let i = 0; i < 20 && echoed !== 'after'; i++) {
    const c = connect({ port, host: '127.0.0.1' })
    c.on('error', () => {})
    let got = ''
    c.on('data', d => (got += d))
    c.end('after')
    await closed(c)
    echoed = got
    if (echoed !== 'after') await sleep(200)
  }
  t.equal(echoed, 'after', 'a later client gets its handler')
  t.equal(run.proc.exitCode, null, 'the daemon is alive')
  t.notOk(run.lines.some(l => /"event":"worker-exit"|is not iterable|uncaught/i.test(l)), 'no worker died')
  run.proc.kill('SIGTERM')
  t.equal(await run.exited, 0)
})
