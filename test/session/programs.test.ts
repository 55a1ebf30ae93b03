/**
 * lib/session/programs.ts with real programs: the access control program (exit 0
 * grants, everything else denies) and the handler program (the client
 * socket itself as stdin and stdout, or pipes after a pre-read header).
 */
import t from 'tap'
import { once } from 'node:events'
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import type { Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { spawnSync } from 'node:child_process'
import { ACP_MAX_OUTPUT, HANDLER_KILL_MS, MESSAGE_MAX, oneLine, runAcp, runHandler, type HandlerExit } from '../../lib/session/programs.js'
import { socketPair } from '../fixtures/pair.js'

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))
const PATH = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }
const CLIENT = { ...PATH, PROXY_CLIENT: '192.0.2.7' }
const isRoot = process.getuid?.() === 0

/** Everything a socket reads, and when its EOF came (ms since `since`); it ends its side on EOF. */
function reader(s: Socket, since = performance.now()) {
  const chunks: Buffer[] = []
  let endedAt: number | null = null
  s.on('data', c => chunks.push(c))
  s.on('end', () => {
    endedAt = performance.now() - since
    s.end()
  })
  s.on('error', () => {})
  const closed = new Promise<void>(resolve => s.once('close', () => resolve()))
  return {
    text: () => Buffer.concat(chunks).toString(),
    ended: () => endedAt,
    closed,
    /** Resolves once the text read so far matches `re`; rejects after `ms`. */
    async until(re: RegExp, ms = 5000): Promise<string> {
      const deadline = performance.now() + ms
      while (!re.test(this.text())) {
        if (performance.now() > deadline) throw new Error(`no ${re} within ${ms} ms; got ${JSON.stringify(this.text())}`)
        await new Promise(r => setTimeout(r, 10))
      }
      return this.text()
    },
  }
}

/** What descriptor `fd` of this process is (`socket:[INODE]`, `pipe:[INODE]`, a path). */
const fdTarget = (s: Socket): string => readlinkSync(`/proc/self/fd/${(s as unknown as { _handle: { fd: number } })._handle.fd}`)

/** A handler's exit, or a rejection after `ms` (a broken handler fails the test instead of hanging it). */
function within(p: Promise<HandlerExit>, ms = 5000): Promise<HandlerExit> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no exit within ${ms} ms`)), ms)))
  return Promise.race([p, limit]).finally(() => clearTimeout(timer))
}

/** Wait (bounded) until `cond` holds. */
async function until(cond: () => boolean, ms = 2000): Promise<boolean> {
  const deadline = performance.now() + ms
  while (!cond() && performance.now() < deadline) await new Promise(r => setTimeout(r, 10))
  return cond()
}

/** The live processes of process group `pgid` (/proc/PID/stat field 5). */
function groupMembers(pgid: number): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(Number(name))
    } catch {
      // Gone meanwhile.
    }
  }
  return out
}

t.test('oneLine turns runs of control characters (C0, DEL, C1) into one blank', async t => {
  t.equal(oneLine('line one\r\nline two'), 'line one line two')
  t.equal(oneLine('a\u0000b\u0007c\u001b[31md'), 'a b c [31md')
  t.equal(oneLine('del\u007fnel\u0085csi\u009bend'), 'del nel csi end')
  t.equal(oneLine('no\u00a0break, ünïcödé'), 'no\u00a0break, ünïcödé', 'printable non-ASCII stays')
})

t.test('oneLine trims the ends', async t => {
  t.equal(oneLine('  \t padded \r\n'), 'padded')
  t.equal(oneLine('\n\n'), '')
})

t.test('oneLine cuts at MESSAGE_MAX characters and marks the cut with "..."', async t => {
  t.equal(MESSAGE_MAX, 512)
  t.equal(oneLine('x'.repeat(512)), 'x'.repeat(512), 'exactly the limit is not cut')
  t.equal(oneLine('x'.repeat(513)), 'x'.repeat(512) + '...')
  t.equal(oneLine(' ' + 'x'.repeat(512) + '\n'), 'x'.repeat(512), 'the limit applies after trimming')
  t.equal(oneLine('abcdef', 3), 'abc...')
})

t.test('an ACP that exits 0 grants; its stderr is the message', async t => {
  const r = await runAcp([fixture('acp-allow.sh')], CLIENT, 5000)
  t.same(r, { granted: true, rc: '0', message: 'welcome 192.0.2.7', output: Buffer.alloc(0) })
})

t.test('an ACP that exits non-zero denies; its stdout is kept for the client', async t => {
  const r = await runAcp([fixture('acp-deny.sh')], CLIENT, 5000)
  t.same(r, {
    granted: false,
    rc: '3',
    message: 'client 192.0.2.7 is not on the list',
    output: Buffer.from('554 no service for 192.0.2.7\r\n'),
  })
})

t.test('an ACP that says nothing gets "access granted" or "access denied" as its message', async t => {
  t.same(await runAcp([fixture('unit-acp.sh'), 'exit', '0'], PATH, 5000), {
    granted: true,
    rc: '0',
    message: 'access granted',
    output: Buffer.alloc(0),
  })
  t.same(await runAcp([fixture('unit-acp.sh'), 'exit', '5'], PATH, 5000), {
    granted: false,
    rc: '5',
    message: 'access denied',
    output: Buffer.alloc(0),
  })
})

t.test('an ACP message is one bounded line', async t => {
  const multi = await runAcp([fixture('unit-acp.sh'), 'say', 'line one\\nline two\\r\\n\\tend\\n', '1'], PATH, 5000)
  t.same([multi.granted, multi.rc, multi.message], [false, '1', 'line one line two end'])
  const long = await runAcp([fixture('unit-acp.sh'), 'say', 'y'.repeat(2000)], PATH, 5000)
  t.same([long.granted, long.message], [true, 'y'.repeat(MESSAGE_MAX) + '...'])
})

t.test('an ACP killed by a signal denies, with the signal as rc', async t => {
  t.same(await runAcp([fixture('acp-crash.sh')], PATH, 5000), {
    granted: false,
    rc: 'SIGSEGV',
    message: 'access denied',
    output: Buffer.alloc(0),
  })
})

t.test('an ACP running past the timeout is killed and denies, within about the timeout', async t => {
  const start = performance.now()
  const r = await runAcp([fixture('acp-slow.sh')], PATH, 300)
  const ms = performance.now() - start
  t.same([r.granted, r.rc, r.message], [false, 'timeout', 'access denied'])
  t.ok(ms >= 250 && ms < 3000, `denied after ${Math.round(ms)} ms (the program sleeps 30 s)`)
})

t.test('an ACP that cannot be started denies, with the error code as rc', async t => {
  t.same(await runAcp(['/nonexistent/acp', 'arg'], PATH, 5000), {
    granted: false,
    rc: 'ENOENT',
    message: 'access denied',
    output: Buffer.alloc(0),
  })
  // A file without the execute bit.
  const r = await runAcp([fixture('pair.ts')], PATH, 5000)
  t.same([r.granted, r.rc, r.message], [false, 'EACCES', 'access denied'])
})

t.test('an ACP flooding stdout beyond ACP_MAX_OUTPUT is stopped and denies', async t => {
  t.equal(ACP_MAX_OUTPUT, 64 * 1024)
  const start = performance.now()
  const r = await runAcp([fixture('unit-acp.sh'), 'flood'], PATH, 10_000)
  const ms = performance.now() - start
  t.same([r.granted, r.rc], [false, 'too much output'])
  t.notMatch(r.message, /\n/, `the message is what it said on stderr, if anything: ${r.message}`)
  t.ok(r.output.length <= ACP_MAX_OUTPUT, `kept ${r.output.length} bytes at most`)
  t.ok(ms < 5000, `stopped after ${Math.round(ms)} ms, long before the timeout`)
})

t.test('an ACP gets exactly the environment given, nothing inherited', async t => {
  const parse = (out: Buffer): Record<string, string> =>
    Object.fromEntries(
      out
        .toString()
        .split('\n')
        .filter(l => l !== '')
        .map(l => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    )
  // tap's process tracking adds its own variables to every spawn, whatever
  // the caller passes: what an empty environment shows is that, not tcpproxy.
  const injected = parse((await runAcp(['/usr/bin/env'], {}, 5000)).output)
  t.notOk('PATH' in injected || 'HOME' in injected, 'the runner adds neither PATH nor HOME')
  t.ok(process.env['PATH'] !== undefined, 'the test process has a PATH to leak')
  const env = { PROXY_CLIENT: '192.0.2.7', PROXY_PORT: '8025', ODD: 'a b=c' }
  const r = await runAcp(['/usr/bin/env'], env, 5000)
  t.equal(r.rc, '0')
  const got = parse(r.output)
  t.same(Object.fromEntries(Object.entries(got).filter(([k]) => !(k in injected))), env)
  t.notOk('PATH' in got || 'HOME' in got, 'PATH and HOME of the proxy are not passed')
})

t.test('an ACP has no stdin: it reads /dev/null', async t => {
  const r = await runAcp(['/usr/bin/readlink', '/proc/self/fd/0'], {}, 5000)
  t.same([r.rc, r.output.toString()], ['0', '/dev/null\n'])
})

t.test('an ACP runs as the given user and group', { skip: isRoot ? false : 'needs root' }, async t => {
  const r = await runAcp(['/usr/bin/id', '-u', '-g'].slice(0, 2), {}, 5000, { uid: 65534, gid: 65534 })
  t.same([r.rc, r.output.toString()], ['0', '65534\n'])
  const g = await runAcp(['/usr/bin/id', '-g'], {}, 5000, { uid: 65534, gid: 65534 })
  t.equal(g.output.toString(), '65534\n')
})

t.test('an ACP command with a NUL byte (possible in a configuration file) denies instead of throwing', async t => {
  const inProgram = await runAcp(['/bin/true\u0000x'], PATH, 5000).catch((err: Error) => err)
  t.match(inProgram, { granted: false, rc: 'ERR_INVALID_ARG_VALUE' })
  const inArgument = await runAcp(['/bin/true', 'a\u0000b'], PATH, 5000).catch((err: Error) => err)
  t.match(inArgument, { granted: false })
})

t.test('a handler gets the client socket itself as stdin and stdout; the proxy keeps no copy', async t => {
  const [peer, client] = await socketPair()
  t.teardown(() => peer.destroy())
  const mine = fdTarget(client)
  t.match(mine, /^socket:\[\d+\]$/)
  const start = performance.now()
  const got = reader(peer, start)
  const lines: string[] = []
  const h = runHandler([fixture('unit-handler.sh'), '3'], PATH, client, null, l => lines.push(l))
  t.ok(client.destroyed, 'the proxy\'s copy is destroyed right after the spawn')
  t.type(h.pid, 'number')
  await got.until(/fd1=/)
  await new Promise(r => setTimeout(r, 300))
  t.equal(got.ended(), null, 'no EOF while the handler runs, though the proxy closed its copy')
  peer.write('hello handler\n')
  t.same(await within(h.exited), { rc: '3', started: true })
  await got.closed
  const [fd0, fd1, answer] = got.text().split('\n')
  t.equal(fd0, `fd0=${mine}`, 'stdin is the client socket itself')
  t.equal(fd1, `fd1=${mine}`, 'and so is stdout')
  t.equal(answer, 'got: hello handler')
  t.ok((got.ended() as number) >= 300, `EOF came when the handler exited (${Math.round(got.ended() as number)} ms)`)
  t.ok(await until(() => lines.length === 2))
  t.same(lines, ['first line', 'bell and [31mescape'], 'stderr line by line, control characters flattened')
})

t.test('a handler killed by a signal reports the signal', async t => {
  const [peer, client] = await socketPair()
  t.teardown(() => peer.destroy())
  const got = reader(peer)
  const h = runHandler([fixture('acp-crash.sh')], PATH, client, null, () => {})
  t.same(await within(h.exited), { rc: 'SIGSEGV', started: true })
  await got.closed
  t.not(got.ended(), null, 'the client sees EOF')
})

t.test('kill() ends a handler with SIGTERM and the client sees EOF', async t => {
  const [peer, client] = await socketPair()
  t.teardown(() => peer.destroy())
  const got = reader(peer)
  const h = runHandler([fixture('acp-slow.sh')], PATH, client, null, () => {})
  await new Promise(r => setTimeout(r, 100))
  t.equal(got.ended(), null, 'still running')
  h.kill()
  t.same(await within(h.exited), { rc: 'SIGTERM', started: true })
  await got.closed
  t.not(got.ended(), null)
})

t.test('a handler that cannot be started is reported as not started, and the client is closed', async t => {
  const [peer, client] = await socketPair()
  t.teardown(() => peer.destroy())
  const got = reader(peer)
  const lines: string[] = []
  const h = runHandler(['/nonexistent/handler', 'arg'], PATH, client, null, l => lines.push(l))
  t.equal(h.pid, undefined)
  h.kill()
  t.same(await within(h.exited), { rc: 'ENOENT', started: false })
  await got.closed
  t.equal(got.text(), '')
  t.same(lines, [])
})

t.test('a handler runs as the given user and group', { skip: isRoot ? false : 'needs root' }, async t => {
  const [peer, client] = await socketPair()
  t.teardown(() => peer.destroy())
  const got = reader(peer)
  const h = runHandler(['/usr/bin/id', '-u'], PATH, client, null, () => {}, { uid: 65534, gid: 65534 })
  t.same(await within(h.exited), { rc: '0', started: true })
  await got.closed
  t.equal(got.text(), '65534\n')
})

t.test('a handler command with a NUL byte is reported as not started instead of throwing', async t => {
  const [peer, client] = await socketPair()
  t.teardown(() => peer.destroy())
  let h: ReturnType<typeof runHandler> | Error
  try {
    h = runHandler(['/bin/true\u0000x'], PATH, client, null, () => {})
  } catch (err) {
    h = err as Error
  }
  t.notOk(h instanceof Error, 'no exception')
  if (!(h instanceof Error)) t.match(await within(h.exited), { started: false })
  client.destroy()
})

t.test('with pre-read bytes the handler gets pipes: those bytes first, then the client\'s', async t => {
  const [peer, client] = await socketPair()
  t.teardown(() => peer.destroy())
  const got = reader(peer)
  const lines: string[] = []
  const mine = fdTarget(client)
  const h = runHandler([fixture('unit-handler.sh')], PATH, client, Buffer.from('PRE '), l => lines.push(l))
  t.notOk(client.destroyed, 'the proxy relays, so it keeps the socket')
  await got.until(/fd1=/)
  peer.write('and the rest\n')
  t.same(await within(h.exited), { rc: '0', started: true })
  await got.until(/got: /)
  t.ok(await until(() => got.ended() !== null), 'the handler\'s EOF is passed on')
  const [fd0, fd1, answer] = got.text().split('\n')
  // Node's stdio "pipes" are socket pairs: what matters is that they are not the client's socket.
  t.match(fd0, /^fd0=(socket|pipe):\[\d+\]$/)
  t.match(fd1, /^fd1=(socket|pipe):\[\d+\]$/)
  t.not(fd0, `fd0=${mine}`, 'stdin is not the client socket')
  t.not(fd1, `fd1=${mine}`, 'nor is stdout')
  t.equal(answer, 'got: PRE and the rest')
  t.ok(await until(() => lines.length === 2))
  t.same(lines, ['first line', 'bell and [31mescape'])
  peer.end()
  await got.closed
})

t.test('with pre-read bytes, a client EOF already seen ends the handler\'s stdin after them', async t => {
  const [peer, client] = await socketPair()
  t.teardown(() => peer.destroy())
  // The proxy read everything up to the client's EOF (a header and a line).
  peer.end()
  client.resume()
  await once(client, 'end')
  t.ok(client.readableEnded)
  const got = reader(peer)
  const h = runHandler(['/bin/cat'], PATH, client, Buffer.from('early line\n'), () => {})
  t.same(await within(h.exited), { rc: '0', started: true }, 'cat saw EOF after the pre-read bytes')
  await got.closed
  t.equal(got.text(), 'early line\n')
})

t.test('with pre-read bytes, a client reset cuts the pipes: the handler sees EOF', async t => {
  const [peer, client] = await socketPair()
  const got = reader(peer)
  const h = runHandler(['/bin/cat'], PATH, client, Buffer.from('echo me\n'), () => {})
  await got.until(/echo me\n/)
  peer.resetAndDestroy()
  t.same(await within(h.exited), { rc: '0', started: true })
  t.ok(await until(() => client.destroyed), 'the client socket is closed')
})

t.test('with pre-read bytes, a client reset while the handler\'s output is blocked ends the handler', async t => {
  const [peer, client] = await socketPair()
  // The client never reads: the handler's output fills the socket and then its pipe.
  peer.pause()
  peer.on('error', () => {})
  const h = runHandler(['/bin/sh', '-c', 'head -c 30000000 /dev/zero; exec cat'], PATH, client, Buffer.from('x'), () => {})
  t.teardown(() => h.kill())
  await new Promise(r => setTimeout(r, 300))
  peer.resetAndDestroy()
  // Its stdout pipe is closed: `head` dies of SIGPIPE (the shell reports 141), `cat` never runs.
  t.match(await within(h.exited), { rc: /^(141|SIGPIPE)$/, started: true }, 'the handler ended without a kill')
  t.ok(client.destroyed, 'the client socket is closed')
})

t.test('with pre-read bytes, a handler that closes its stdin unread still gets its output to the client', async t => {
  const [peer, client] = await socketPair()
  t.teardown(() => peer.destroy())
  const got = reader(peer)
  const h = runHandler([fixture('unit-closed-stdin.sh')], PATH, client, Buffer.from('PROXY-ish header rest'), () => {})
  t.teardown(() => h.kill())
  await got.until(/closed\n/, 2000).catch(() => {})
  t.equal(got.text(), 'closed\n', 'the handler\'s output reached the client')
  t.equal(got.ended(), null, 'the connection stays open while the handler runs')
  h.kill()
  t.same(await within(h.exited), { rc: 'SIGTERM', started: true })
})

t.test('without pre-read bytes, a handler that closes its stdin still talks to the client', async t => {
  const [peer, client] = await socketPair()
  t.teardown(() => peer.destroy())
  const got = reader(peer)
  const h = runHandler([fixture('unit-closed-stdin.sh')], PATH, client, null, () => {})
  await got.until(/closed\n/)
  await new Promise(r => setTimeout(r, 100))
  t.equal(got.ended(), null, 'the connection stays open while the handler runs')
  h.kill()
  t.same(await within(h.exited), { rc: 'SIGTERM', started: true })
  await got.closed
  t.equal(got.text(), 'closed\n')
})

t.test('no shell: metacharacters in a command line or the environment are plain bytes to the program', async t => {
  const dir = t.testdir({})
  const mark = join(dir, 'mark')
  // As the configuration parser splits it (splitCommand): words on blanks, nothing else.
  const words = ['/bin/echo', `$(touch`, `${mark})`, ';', 'touch', mark, '|', `\`touch`, `${mark}\``, '&&', '*', '>', mark]
  const r = await runAcp(words, { PROXY_CLIENTNAME: `x;touch ${mark}`, PATH: '/usr/bin:/bin' }, 5000)
  t.equal(r.output.toString(), `${words.slice(1).join(' ')}\n`, 'echo got every word as it was')
  const [peer, client] = await socketPair()
  t.teardown(() => peer.destroy())
  const echoed: Buffer[] = []
  peer.on('data', d => echoed.push(d))
  const h = runHandler(words, { PATH: '/usr/bin:/bin' }, client, null, () => {})
  t.equal((await h.exited).rc, '0')
  await new Promise(r => (peer.readableEnded ? r(null) : peer.once('end', r)))
  t.equal(Buffer.concat(echoed).toString(), `${words.slice(1).join(' ')}\n`, 'the handler too')
  t.notOk(existsSync(mark), 'nothing was run by a shell of ours')
})

t.test('an ACP timed out is killed with its whole process group: a shell script\'s sleep does not hold the client', async t => {
  const start = performance.now()
  let pgid = 0
  const poll = setInterval(() => {
    for (const d of readdirSync('/proc').filter(n => /^\d+$/.test(n))) {
      try {
        if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('acp-sleep-child.sh')) pgid = Number(d)
      } catch {
        // Gone meanwhile.
      }
    }
  }, 20)
  const r = await runAcp([fixture('acp-sleep-child.sh')], PATH, 400).finally(() => clearInterval(poll))
  const ms = performance.now() - start
  t.same([r.granted, r.rc], [false, 'timeout'])
  t.ok(ms < 3000, `denied after ${Math.round(ms)} ms, not when its sleep 15 ends`)
  t.ok(pgid > 0, 'the ACP was seen running')
  t.ok(await until(() => groupMembers(pgid).length === 0), 'nothing of its group is left')
})

t.test('a handler stopped with kill() takes its whole group along (sh -c "cat | cat")', async t => {
  const [peer, client] = await socketPair()
  t.teardown(() => peer.destroy())
  const got = reader(peer)
  const h = runHandler(['/bin/sh', '-c', 'cat | cat'], PATH, client, null, () => {})
  const pgid = h.pid as number
  t.ok(await until(() => groupMembers(pgid).length >= 3), 'sh and its two cats run in a group of their own')
  const start = performance.now()
  h.kill()
  h.kill()
  t.same(await within(h.exited), { rc: 'SIGTERM', started: true })
  t.ok(performance.now() - start < HANDLER_KILL_MS, 'SIGTERM was enough')
  t.ok(await until(() => groupMembers(pgid).length === 0), 'no cat is left running')
  await got.closed
})

t.test('a handler that ignores SIGTERM gets SIGKILL (its group) HANDLER_KILL_MS later', async t => {
  const [peer, client] = await socketPair()
  t.teardown(() => peer.destroy())
  const got = reader(peer)
  const h = runHandler(['/bin/sh', '-c', 'trap "" TERM; echo ready; sleep 30 & wait; wait'], PATH, client, null, () => {})
  await got.until(/ready/)
  const start = performance.now()
  h.kill()
  t.same(await within(h.exited, HANDLER_KILL_MS + 5000), { rc: 'SIGKILL', started: true })
  const ms = performance.now() - start
  t.ok(ms >= HANDLER_KILL_MS - 100, `killed after ${Math.round(ms)} ms`)
  t.ok(await until(() => groupMembers(h.pid as number).length === 0), 'its sleep went too')
  await got.closed
})

t.test('out of descriptors (EMFILE) while starting an ACP or a handler: reported as such, nothing thrown', async t => {
  const r = spawnSync('/bin/sh', ['-c', `ulimit -n 64 && exec "${process.execPath}" "${fixture('unit-emfile.mjs')}" programs`], { encoding: 'utf8', timeout: 20_000 })
  t.equal(r.status, 0, `the process did not crash: ${r.stderr}`)
  const got = JSON.parse(r.stdout) as Record<string, unknown>
  t.same(got, {
    filled: true,
    acp: 'EMFILE',
    direct: { rc: 'EMFILE', started: false },
    piped: { rc: 'EMFILE', started: false },
    closed: [true, true],
  })
})

t.test('with pre-read bytes, the client socket is closed when the handler ends, though the client stays', async t => {
  const [peer, client] = await socketPair()
  t.teardown(() => peer.destroy())
  const got = reader(peer)
  const h = runHandler(['/bin/sh', '-c', 'head -c 4; echo " bye"'], PATH, client, Buffer.from('PRE!'), () => {})
  t.same(await within(h.exited), { rc: '0', started: true })
  t.ok(client.destroyed, 'the socket is destroyed by the time the handler is reported ended')
  await got.closed
  t.equal(got.text(), 'PRE! bye\n', 'its last output reached the client first')
})

t.test('an ACP whose session was stopped before it started is killed at once and denies', async t => {
  const start = performance.now()
  const r = await runAcp([fixture('acp-slow.sh')], PATH, 10_000, {}, AbortSignal.abort())
  t.same([r.granted, r.rc], [false, 'aborted'])
  t.ok(performance.now() - start < 3000, 'at once, not after its 30 s')
})
