/**
 * Syslog through a real util-linux `logger` child, received by a real unix
 * datagram socket (test/fixtures/dgram-recv.py: Node cannot bind one), and
 * the JSON rendering of log entries. No mocks; every wait is bounded.
 */
import t, { type Test } from 'tap'
import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable, type Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { MAX_MESSAGE_BYTES, type LogEntry } from '../../lib/log/record.js'
import { FACILITIES, syslogLogger, type SyslogOptions } from '../../lib/log/syslog.js'

const RECV = fileURLToPath(new URL('../fixtures/dgram-recv.py', import.meta.url))
const DIST_SYSLOG = fileURLToPath(new URL('../../dist/log/syslog.js', import.meta.url))
/** The pid we claim; no test process has it, so it cannot be logger's own. */
const PID = 4242
/** `<PRI>Mmm dd hh:mm:ss IDENT[PID]: MESSAGE`, syslog(3)'s local format. */
const WIRE = /^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ([^[]*)\[(\d+)\]: (.*)$/s

/** Resolves once `probe` returns something truthy; rejects after `ms`. */
async function until<T>(what: string, probe: () => T, ms = 5000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = probe()
    if (v) return v as NonNullable<T>
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, 10))
  }
}

function tmp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tcpproxy-syslog-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Feed a process's output line by line to `onLine`. */
function lines(stream: Readable, onLine: (line: string) => void): void {
  let partial = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    partial += chunk
    const parts = partial.split('\n')
    partial = parts.pop() as string
    parts.forEach(onLine)
  })
}

interface Receiver {
  path: string
  /** Every datagram so far, decoded as UTF-8. */
  datagrams: string[]
  /** Kill the receiver and wait until it is gone (its socket closed). */
  stop(): Promise<void>
}

async function receiver(t: Test, dir: string, extra: string[] = []): Promise<Receiver> {
  const path = join(dir, 'log')
  const proc: ChildProcessByStdio<null, Readable, null> = spawn('python3', [RECV, path, ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const datagrams: string[] = []
  let ready = false
  lines(proc.stdout, line => {
    if (line === 'ready') ready = true
    else datagrams.push(Buffer.from(line, 'hex').toString('utf8'))
  })
  const exited = new Promise(resolve => proc.once('exit', resolve))
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill()
    await exited
  }
  t.teardown(stop)
  await until('the receiver', () => ready)
  return { path, datagrams, stop }
}

/** A writable that keeps what is written, at once, as lines. */
function capture(): { stream: Writable; lines: () => string[] } {
  const chunks: Buffer[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk)
      done()
    },
  })
  return { stream, lines: () => Buffer.concat(chunks).toString().split('\n').slice(0, -1) }
}

function open(t: Test, o: Partial<SyslogOptions> & { socketPath: string }) {
  const fallback = capture()
  const logger = syslogLogger({
    facility: FACILITIES['mail'] as number,
    ident: 'tcpproxy',
    pid: PID,
    debug: false,
    fallback: fallback.stream,
    format: 'text',
    ...o,
  })
  t.teardown(() => logger.close())
  return { logger, fallback }
}

/** The pids of our `logger` children, from /proc. */
function loggerChildren(): number[] {
  const pids: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8')
    } catch {
      continue
    }
    const close = stat.lastIndexOf(')')
    const comm = stat.slice(stat.indexOf('(') + 1, close)
    const ppid = Number(stat.slice(close + 2).split(' ')[1])
    if (comm === 'logger' && ppid === process.pid) pids.push(Number(name))
  }
  return pids
}

function wire(datagram: string): { pri: number; ident: string; pid: number; message: string } {
  const m = WIRE.exec(datagram)
  if (m === null) throw new Error(`not a syslog datagram: ${JSON.stringify(datagram)}`)
  return { pri: Number(m[1]), ident: m[2] as string, pid: Number(m[3]), message: m[4] as string }
}

const unreachable = (reason: string): string => `tcpproxy[${PID}]: -ERR: syslog unreachable (${reason}), logging to stderr`

t.test('text lines go out as mail datagrams with our ident and pid, one per entry, the priority by tag', async t => {
  const r = await receiver(t, tmp(t))
  const { logger, fallback } = open(t, { socketPath: r.path })
  t.equal(logger.debug, false)
  logger.log({ tag: '', event: 'bound', text: 'bound to 127.0.0.1:8025' })
  logger.log({ tag: '+INFO', event: 'connect', id: 7, text: 'connect: client= 127.0.0.1, server= 127.0.0.1:9201, timeout= 60' })
  logger.log({ tag: '+DEBUG', event: 'trace', text: 'not asked for' })
  logger.log({ tag: '-ERR', event: 'error', text: "can't connect" })
  await until('3 datagrams', () => r.datagrams.length >= 3)
  const children = loggerChildren()
  t.equal(children.length, 1, 'one logger child')
  t.notOk(children.includes(PID))
  for (const d of r.datagrams) t.match(d, /^<\d+>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d tcpproxy\[4242\]: /)
  t.same(r.datagrams.map(d => wire(d).pri), [21, 21, 19], 'mail.notice, mail.notice, mail.err')
  t.same(
    r.datagrams.map(d => wire(d).message),
    [
      'bound to 127.0.0.1:8025',
      '+INFO: connect: client= 127.0.0.1, server= 127.0.0.1:9201, timeout= 60, id= 7',
      "-ERR: can't connect",
    ],
    '+DEBUG is left out unless debug is on',
  )
  await logger.close()
  t.equal(r.datagrams.length, 3)
  t.same(fallback.lines(), [])
})

t.test('facility, ident and debug follow the options', async t => {
  const r = await receiver(t, tmp(t))
  const local0 = open(t, { socketPath: r.path, facility: FACILITIES['local0'] as number, ident: 'relay', debug: true })
  t.equal(local0.logger.debug, true)
  local0.logger.log({ tag: '+DEBUG', event: 'trace', id: 1, text: 'visible' })
  await local0.logger.close()
  // User space cannot claim the kernel's facility: logger makes kern user.
  const kern = open(t, { socketPath: r.path, facility: FACILITIES['kern'] as number })
  kern.logger.log({ tag: '+OK', event: 'disconnect', text: 'as user' })
  await kern.logger.close()
  await until('2 datagrams', () => r.datagrams.length >= 2)
  t.same(
    r.datagrams.map(wire),
    [
      { pri: 16 * 8 + 5, ident: 'relay', pid: PID, message: '+DEBUG: visible, id= 1' },
      { pri: 1 * 8 + 5, ident: 'tcpproxy', pid: PID, message: '+OK: as user' },
    ],
  )
  t.equal(FACILITIES['mail'], 2)
  t.equal(Object.keys(FACILITIES).length, 20, 'kern..ftp and local0..local7')
})

t.test('json lines go out one object per datagram, with the fields', async t => {
  const r = await receiver(t, tmp(t))
  const { logger, fallback } = open(t, { socketPath: r.path, format: 'json' })
  const before = Date.now()
  logger.log({
    tag: '+OK',
    event: 'disconnect',
    id: 3,
    text: 'disconnect: client= 127.0.0.1, server= 127.0.0.1:9201, received= 5, send= 6, duration= 0.250, closed-by= client',
    fields: { client: '127.0.0.1', server: '127.0.0.1:9201', received: 5, sent: 6, duration: 0.25, closedBy: 'client' },
  })
  logger.log({ tag: '-ERR', event: 'timeout', text: 'connection timed out' })
  await until('2 datagrams', () => r.datagrams.length >= 2)
  await logger.close()
  const [a, b] = r.datagrams.map(d => wire(d))
  t.equal(a?.pri, 21)
  t.equal(a?.ident, 'tcpproxy')
  const obj = JSON.parse(a?.message as string) as Record<string, unknown>
  t.same(Object.keys(obj), ['time', 'level', 'event', 'id', 'client', 'server', 'received', 'sent', 'duration', 'closedBy', 'message'])
  const time = Date.parse(obj['time'] as string)
  t.ok(time >= before - 1 && time <= Date.now(), 'time is now')
  t.match(obj, {
    level: 'info',
    event: 'disconnect',
    id: 3,
    client: '127.0.0.1',
    server: '127.0.0.1:9201',
    received: 5,
    sent: 6,
    duration: 0.25,
    closedBy: 'client',
    message: 'disconnect: client= 127.0.0.1, server= 127.0.0.1:9201, received= 5, send= 6, duration= 0.250, closed-by= client',
  })
  t.match(JSON.parse(b?.message as string), { level: 'err', event: 'timeout', message: 'connection timed out' })
  t.same(fallback.lines(), [])
})

t.test('control characters never reach the wire: no forged lines', async t => {
  const r = await receiver(t, tmp(t))
  const { logger } = open(t, { socketPath: r.path, ident: 'tcp\nproxy\u0000' })
  logger.log({
    tag: '-INFO',
    event: 'connect-failed',
    id: 2,
    text: "can't connect to server evil\r\n<21>Nov 23 06:04:20 tcpproxy[1]: +OK: forged\u001b[31m\u2028\u0085\u007f!",
  })
  logger.log({ tag: '+INFO', event: 'next', text: 'next' })
  await until('2 datagrams', () => r.datagrams.length >= 2)
  await logger.close()
  t.equal(r.datagrams.length, 2, 'one datagram per entry')
  t.same(wire(r.datagrams[0] as string), {
    pri: 20,
    ident: 'tcpproxy',
    pid: PID,
    message: "-INFO: can't connect to server evil<21>Nov 23 06:04:20 tcpproxy[1]: +OK: forged[31m!, id= 2",
  })
})

t.test('long messages and idents are cut to a bounded size', async t => {
  const r = await receiver(t, tmp(t))
  const { logger } = open(t, { socketPath: r.path, ident: 'x'.repeat(100) })
  logger.log({ tag: '+INFO', event: 'connect', id: 12, text: 'a'.repeat(5000) })
  // 2-byte characters: the cut falls between characters, never inside one.
  logger.log({ tag: '+INFO', event: 'connect', text: 'é'.repeat(1000) })
  logger.log({ tag: '', event: 'ready', text: 'ready' })
  await until('3 datagrams', () => r.datagrams.length >= 3)
  await logger.close()
  t.equal(r.datagrams.length, 3, 'logger did not split any line')
  const [long, wide] = r.datagrams.map(wire)
  t.equal(long?.ident, 'x'.repeat(32), 'the ident is cut to 32 bytes (RFC 3164 TAG)')
  t.equal(Buffer.byteLength(long?.message as string), MAX_MESSAGE_BYTES)
  t.match(long?.message, /^\+INFO: a+, id= 12$/, 'the id survives the cut')
  t.equal(wide?.message, '+INFO: ' + 'é'.repeat(476))
  for (const d of r.datagrams) t.ok(Buffer.byteLength(d) <= 1024, 'RFC 3164: at most 1024 bytes')
})

t.test('a missing socket: one notice on the fallback, then the lines there', async t => {
  const dir = tmp(t)
  const path = join(dir, 'missing')
  const { logger, fallback } = open(t, { socketPath: path })
  logger.log({ tag: '', event: 'bound', text: 'bound to 127.0.0.1:8025' })
  logger.log({ tag: '+INFO', event: 'connect', id: 1, text: 'connect: client= 127.0.0.1' })
  await until('the notice', () => fallback.lines().length >= 3)
  logger.log({ tag: '+OK', event: 'disconnect', id: 1, text: 'disconnect' })
  await logger.close()
  t.same(fallback.lines(), [
    unreachable(`socket ${path}: No such file or directory`),
    'tcpproxy[4242]: bound to 127.0.0.1:8025',
    'tcpproxy[4242]: +INFO: connect: client= 127.0.0.1, id= 1',
    'tcpproxy[4242]: +OK: disconnect, id= 1',
  ])
})

t.test('the json fallback stays json', async t => {
  const { logger, fallback } = open(t, { socketPath: join(tmp(t), 'missing'), format: 'json' })
  logger.log({ tag: '+INFO', event: 'connect', id: 1, text: 'connect', fields: { client: '::1' } })
  await until('2 lines', () => fallback.lines().length >= 2)
  await logger.close()
  const [notice, line, ...rest] = fallback.lines().map(l => JSON.parse(l) as Record<string, unknown>)
  t.match(notice, { level: 'err', event: 'syslog-unreachable', message: /^syslog unreachable \(socket .*: No such file or directory\), logging to stderr$/ })
  t.match(line, { level: 'info', event: 'connect', id: 1, client: '::1', message: 'connect' })
  t.same(rest, [])
})

t.test('the socket removed while running: nothing lost, nothing twice', async t => {
  const r = await receiver(t, tmp(t))
  const { logger, fallback } = open(t, { socketPath: r.path })
  const line = (n: string): LogEntry => ({ tag: '+INFO', event: 'test', text: n })
  logger.log(line('one'))
  await until('one', () => r.datagrams.length >= 1)
  // logger's socket is connected: unlinking the path alone does not stop it.
  unlinkSync(r.path)
  logger.log(line('two'))
  await until('two', () => r.datagrams.length >= 2)
  // The daemon goes away: the next send fails, and so does the reconnect.
  await r.stop()
  logger.log(line('three'))
  logger.log(line('four'))
  await until('the fallback', () => fallback.lines().length >= 3)
  logger.log(line('five'))
  await logger.close()
  t.same(r.datagrams.map(d => wire(d).message), ['+INFO: one', '+INFO: two'])
  t.same(fallback.lines(), [
    unreachable(`socket ${r.path}: No such file or directory`),
    'tcpproxy[4242]: +INFO: three',
    'tcpproxy[4242]: +INFO: four',
    'tcpproxy[4242]: +INFO: five',
  ])
})

t.test('close() sends what is pending, ends the child and resolves', async t => {
  const r = await receiver(t, tmp(t))
  const { logger, fallback } = open(t, { socketPath: r.path })
  for (let i = 0; i < 5; i++) logger.log({ tag: '+INFO', event: 'test', text: `line ${i}` })
  const children = await until('the logger child', () => {
    const pids = loggerChildren()
    return pids.length > 0 ? pids : null
  })
  const closing = logger.close()
  t.equal(logger.close(), closing, 'close() twice is one close')
  await closing
  await until('5 datagrams', () => r.datagrams.length >= 5)
  t.same(
    r.datagrams.map(d => wire(d).message),
    [0, 1, 2, 3, 4].map(i => `+INFO: line ${i}`),
  )
  for (const pid of children) t.notOk(existsSync(`/proc/${pid}`), `logger ${pid} is gone`)
  t.same(loggerChildren(), [])
  logger.log({ tag: '+INFO', event: 'late', text: 'after close' })
  t.same(fallback.lines(), ['tcpproxy[4242]: +INFO: after close'], 'lines after close() go to the fallback, without a notice')
})

t.test('logger cannot be started', async t => {
  const path = join(tmp(t), 'no-such-logger')
  const { logger, fallback } = open(t, { socketPath: '/dev/log', loggerPath: path })
  logger.log({ tag: '', event: 'ready', text: 'ready' })
  await logger.close()
  logger.log({ tag: '+INFO', event: 'after', text: 'after' })
  t.same(fallback.lines(), [unreachable(`cannot run ${path}: ENOENT`), 'tcpproxy[4242]: ready', 'tcpproxy[4242]: +INFO: after'])
})

t.test('logger exits by itself', async t => {
  // `false` takes logger's arguments and exits 1 without a word.
  const { logger, fallback } = open(t, { socketPath: '/dev/log', loggerPath: 'false' })
  logger.log({ tag: '', event: 'ready', text: 'ready' })
  await until('the notice', () => fallback.lines().length >= 2)
  t.same(fallback.lines(), [unreachable('logger exited with status 1'), 'tcpproxy[4242]: ready'])
})

t.test('logger killed', async t => {
  const r = await receiver(t, tmp(t))
  const { logger, fallback } = open(t, { socketPath: r.path })
  logger.log({ tag: '+INFO', event: 'test', text: 'one' })
  await until('one', () => r.datagrams.length >= 1)
  const [pid] = loggerChildren()
  process.kill(pid as number, 'SIGKILL')
  await until('the notice', () => fallback.lines().length >= 1)
  logger.log({ tag: '+INFO', event: 'test', text: 'two' })
  t.same(fallback.lines(), [unreachable('logger killed by SIGKILL'), 'tcpproxy[4242]: +INFO: two'])
})

t.test('a syslog that stops reading: too many lines waiting switches to the fallback', async t => {
  const r = await receiver(t, tmp(t), ['--stop-after', '3'])
  const { logger, fallback } = open(t, { socketPath: r.path, maxPending: 20 })
  const text = (n: number): string => `line ${n} ${'x'.repeat(800)}`
  const log = (n: number): void => logger.log({ tag: '+INFO', event: 'test', text: text(n) })
  // Three lines while syslog still reads: logger is up and has sent them.
  for (let i = 0; i < 3; i++) log(i)
  await until('3 datagrams', () => r.datagrams.length >= 3)
  // Their echoes left logger right after the sends; let them in.
  await new Promise(resolve => setTimeout(resolve, 50))
  let n = 3
  while (fallback.lines().length === 0 && n < 5000) {
    log(n++)
    // Let logger's echoes in between, as a running proxy would.
    if (n % 4 === 0) await new Promise(resolve => setImmediate(resolve))
  }
  const [notice, ...rest] = fallback.lines()
  t.equal(notice, unreachable('not accepting messages, 20 lines waiting'))
  // What did not go out is on the fallback, in order, up to the last line.
  const first = n - rest.length
  t.ok(first >= 3, `${first} lines went out before syslog stalled`)
  t.same(
    rest,
    Array.from({ length: rest.length }, (_, i) => `tcpproxy[4242]: +INFO: ${text(first + i)}`),
  )
  t.equal(rest.length, 21, 'the 20 waiting and the one that found them')
  t.equal(r.datagrams.length, 3)
  await logger.close()
  t.same(loggerChildren(), [], 'the stuck logger was ended')
})

t.test('close() gives up on a stuck syslog after closeTimeoutMs, and loses nothing', async t => {
  const r = await receiver(t, tmp(t), ['--stop-after', '0'])
  const { logger, fallback } = open(t, { socketPath: r.path, closeTimeoutMs: 300 })
  const text = (n: number): string => `line ${n} ${'x'.repeat(800)}`
  // More than the socket's queue (max_dgram_qlen, 10 by default) and send buffer hold.
  for (let i = 0; i < 400; i++) logger.log({ tag: '+INFO', event: 'test', text: text(i) })
  const started = Date.now()
  await logger.close()
  t.ok(Date.now() - started >= 250, 'waited for logger')
  const [notice, ...rest] = fallback.lines()
  t.equal(notice, unreachable('logger did not finish within 300 ms'))
  const first = 400 - rest.length
  t.ok(rest.length > 0, `${first} went out, ${rest.length} on the fallback`)
  t.same(
    rest,
    Array.from({ length: rest.length }, (_, i) => `tcpproxy[4242]: +INFO: ${text(first + i)}`),
  )
  t.same(loggerChildren(), [])
})

t.test('the logger child does not keep the process alive', async t => {
  const r = await receiver(t, tmp(t))
  const script = `
    import { syslogLogger } from ${JSON.stringify(DIST_SYSLOG)}
    const l = syslogLogger({ socketPath: ${JSON.stringify(r.path)}, facility: 2, ident: 'tp', pid: ${PID},
      debug: false, fallback: process.stderr, format: 'text' })
    l.log({ tag: '', event: 'ready', text: 'ready' })
  `
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'inherit', 'inherit'] })
  t.teardown(() => void proc.kill())
  const code = await Promise.race([
    new Promise(resolve => proc.once('exit', resolve)),
    new Promise(resolve => setTimeout(() => resolve('still running'), 5000)),
  ])
  t.equal(code, 0, 'exits without close()')
  await until('the line', () => r.datagrams.length >= 1)
  t.equal(wire(r.datagrams[0] as string).message, 'ready', 'logger still sent what it had')
})

t.test('syslog unreachable and a fallback whose reader went away: lines are dropped, nothing throws', async t => {
  let writes = 0
  const fallback = new Writable({
    write(_chunk, _encoding, done) {
      writes++
      done(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))
    },
  })
  const logger = syslogLogger({ socketPath: '/dev/log', facility: 2, ident: 'tcpproxy', pid: 4242, debug: false, fallback, format: 'text', loggerPath: join(tmp(t), 'no-such-logger') })
  logger.log({ tag: '', event: 'ready', text: 'ready' })
  await logger.close()
  await new Promise(r => setImmediate(r))
  const before = writes
  t.ok(before >= 1, 'the first fallback write failed')
  logger.log({ tag: '+INFO', event: 'after', text: 'after' })
  await new Promise(r => setImmediate(r))
  t.equal(writes, before, 'nothing more is written to the dead fallback')
})
