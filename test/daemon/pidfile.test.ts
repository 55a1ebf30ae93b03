/**
 * The pidfile, with real files in a test directory and real processes: a live
 * "tcpproxy" (a child whose argv contains the word), a live process that is not
 * one, and a dead pid.
 */
import t, { type Test } from 'tap'
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import { join } from 'node:path'
import { DEFAULT_PIDFILE, isTcpproxyProcess, parsePid, writePidfile } from '../../lib/daemon/pidfile.js'
import { TcpproxyError } from '../../lib/errors.js'

/** A live child that sleeps; its argv carries `extra` (e.g. "tcpproxy-test"). Killed at teardown. */
async function sleeper(t: Test, extra: string[] = []): Promise<number> {
  const child: ChildProcess = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', ...extra], {
    stdio: 'ignore',
  })
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', reject)
  })
  return child.pid as number
}

/** The pid of a process that has exited (and been reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' })
  return r.pid
}

function mode(path: string): number {
  return fs.statSync(path).mode & 0o777
}

const ioError = (message: RegExp) => ({ name: 'TcpproxyError', code: 'ERR_IO', message })

t.test('the default path', async t => {
  t.equal(DEFAULT_PIDFILE, '/var/run/tcpproxy.pid')
})

t.test('parsePid: a decimal pid, else garbage', async t => {
  t.equal(parsePid('123\n'), 123)
  t.equal(parsePid('  77  \n'), 77)
  t.equal(parsePid('2147483647'), 2147483647)
  for (const garbage of ['', '\n', 'abc', '12abc\n', '-5\n', '0\n', '2147483648\n', '12345678901\n', '1 2\n', '0x10']) {
    t.equal(parsePid(garbage), null, JSON.stringify(garbage))
  }
})

t.test('isTcpproxyProcess reads /proc/PID/cmdline', async t => {
  t.equal(isTcpproxyProcess(await sleeper(t, ['tcpproxy-test'])), true, 'argv names tcpproxy')
  t.equal(isTcpproxyProcess(await sleeper(t)), false, 'a live process that is not tcpproxy')
  t.equal(isTcpproxyProcess(deadPid()), false, 'a dead pid')
})

t.test('a fresh pidfile holds "%d\\n", mode 0644 whatever the umask', async t => {
  const dir = t.testdir()
  const path = join(dir, 'tcpproxy.pid')
  const old = process.umask(0o077)
  t.teardown(() => {
    process.umask(old)
  })
  const pf = writePidfile(path, 4242)
  t.equal(pf.path, path)
  t.equal(pf.pid, 4242)
  t.equal(fs.readFileSync(path, 'utf8'), '4242\n')
  t.equal(mode(path), 0o644)
  t.ok(fs.lstatSync(path).isFile())
})

t.test('a pidfile naming a live tcpproxy is refused and left alone', async t => {
  const other = await sleeper(t, ['tcpproxy-test'])
  const path = join(t.testdir({ 'tcpproxy.pid': `${other}\n` }), 'tcpproxy.pid')
  const err = t.throws(() => writePidfile(path, process.pid)) as unknown
  t.ok(err instanceof TcpproxyError)
  t.match(err, ioError(new RegExp(`^pidfile ${path}: tcpproxy is already running as pid ${other}$`)))
  t.equal(fs.readFileSync(path, 'utf8'), `${other}\n`, 'untouched')
})

t.test('isTcpproxy can be injected; it is asked about the pid in the file', async t => {
  const path = join(t.testdir({ 'p.pid': '31337\n' }), 'p.pid')
  const asked: number[] = []
  t.throws(
    () =>
      writePidfile(path, 4242, {
        isTcpproxy: pid => {
          asked.push(pid)
          return true
        },
      }),
    ioError(/already running as pid 31337/),
  )
  t.same(asked, [31337])
  writePidfile(path, 4242, { isTcpproxy: () => false })
  t.equal(fs.readFileSync(path, 'utf8'), '4242\n')
})

t.test('a stale pidfile is replaced by a new file, never rewritten in place', async t => {
  const cases: Array<[string, () => Promise<string>]> = [
    ['a dead pid', async () => `${deadPid()}\n`],
    ['a live pid that is not tcpproxy', async () => `${await sleeper(t)}\n`],
    ['garbage', async () => 'hello world\n'],
    ['an empty file', async () => ''],
    ['a huge file (bounded read)', async () => '1'.repeat(1 << 20)],
    ['binary junk', async () => '\u0000\u00ff\u0001\n'],
  ]
  const base = t.testdir()
  for (const [i, [what, content]] of cases.entries()) {
    const dir = join(base, String(i))
    fs.mkdirSync(dir)
    const path = join(dir, 'tcpproxy.pid')
    const old = await content()
    fs.writeFileSync(path, old, { mode: 0o600 })
    // A hard link to the old file: it must keep its content (no truncation in place).
    fs.linkSync(path, join(dir, 'link'))
    const before = fs.statSync(path).ino
    writePidfile(path, 4242)
    t.equal(fs.readFileSync(path, 'utf8'), '4242\n', what)
    t.equal(mode(path), 0o644, `${what}: mode`)
    t.not(fs.statSync(path).ino, before, `${what}: a new file`)
    t.ok(fs.readFileSync(join(dir, 'link')).equals(Buffer.from(old)), `${what}: the old inode is untouched`)
  }
})

t.test('our own pid in the file is a leftover, not a running tcpproxy', async t => {
  const path = join(t.testdir({ 'p.pid': '4242\n' }), 'p.pid')
  writePidfile(path, 4242, { isTcpproxy: () => t.fail('not asked about our own pid') as never })
  t.equal(fs.readFileSync(path, 'utf8'), '4242\n')
})

t.test('a symlink at the path is refused, never followed', async t => {
  const dir = t.testdir({ 'precious': 'keep me\n' })
  const target = join(dir, 'precious')
  const path = join(dir, 'tcpproxy.pid')
  fs.symlinkSync(target, path)
  t.throws(() => writePidfile(path, 4242), ioError(new RegExp(`^refusing pidfile ${path}: it is a symbolic link$`)))
  t.equal(fs.readFileSync(target, 'utf8'), 'keep me\n', 'the target is untouched')
  t.ok(fs.lstatSync(path).isSymbolicLink(), 'the link is left in place')

  // A dangling link: the target must not be created through it.
  const dangling = join(dir, 'dangling.pid')
  fs.symlinkSync(join(dir, 'created-through-link'), dangling)
  t.throws(() => writePidfile(dangling, 4242), ioError(/symbolic link/))
  t.notOk(fs.existsSync(join(dir, 'created-through-link')))
})

t.test('a directory at the path is refused', async t => {
  const dir = t.testdir({ 'tcpproxy.pid': { 'inside': 'x' } })
  const path = join(dir, 'tcpproxy.pid')
  t.throws(() => writePidfile(path, 4242), ioError(new RegExp(`^refusing pidfile ${path}: not a regular file$`)))
  t.equal(fs.readFileSync(join(path, 'inside'), 'utf8'), 'x')
})

const hasMkfifo = spawnSync('sh', ['-c', 'command -v mkfifo']).status === 0
t.test('a fifo at the path is refused', hasMkfifo ? {} : { skip: 'mkfifo(1) is not available' }, async t => {
  const fifo = join(t.testdir(), 'fifo.pid')
  execFileSync('mkfifo', [fifo])
  t.throws(() => writePidfile(fifo, 4242), ioError(/^refusing pidfile .*fifo\.pid: not a regular file$/))
  t.ok(fs.lstatSync(fifo).isFIFO())
})

t.test('a pidfile that cannot be created is an ERR_IO naming the file', async t => {
  const path = join(t.testdir(), 'no-such-dir', 'tcpproxy.pid')
  const err = t.throws(() => writePidfile(path, 4242)) as TcpproxyError
  t.match(err, ioError(new RegExp(`^cannot write pidfile ${path}: ENOENT`)))
  t.equal((err.cause as NodeJS.ErrnoException).code, 'ENOENT')
})

t.test('remove() unlinks our own pidfile, and tolerates its absence', async t => {
  const path = join(t.testdir(), 'tcpproxy.pid')
  const pf = writePidfile(path, 4242)
  pf.remove()
  t.notOk(fs.existsSync(path))
  t.doesNotThrow(() => pf.remove(), 'already gone')
})

t.test('remove() leaves a file that is no longer ours', async t => {
  const dir = t.testdir({ 'precious': 'keep me\n' })
  const path = join(dir, 'tcpproxy.pid')
  const pf = writePidfile(path, 4242)

  // Another instance replaced it with its own pid.
  fs.unlinkSync(path)
  fs.writeFileSync(path, '5151\n')
  pf.remove()
  t.equal(fs.readFileSync(path, 'utf8'), '5151\n', 'their pidfile stays')

  // Garbage is not ours either.
  fs.writeFileSync(path, 'junk')
  pf.remove()
  t.equal(fs.readFileSync(path, 'utf8'), 'junk')

  // A symlink to a file holding our pid: neither the link nor its target is removed.
  fs.unlinkSync(path)
  fs.writeFileSync(join(dir, 'ours-elsewhere'), '4242\n')
  fs.symlinkSync(join(dir, 'ours-elsewhere'), path)
  pf.remove()
  t.ok(fs.lstatSync(path).isSymbolicLink())
  t.equal(fs.readFileSync(join(dir, 'ours-elsewhere'), 'utf8'), '4242\n')

  // A directory.
  fs.unlinkSync(path)
  fs.mkdirSync(path)
  pf.remove()
  t.ok(fs.statSync(path).isDirectory())
})

t.test('remove() reports other failures as ERR_IO', async t => {
  const dir = t.testdir({ sub: {} })
  const path = join(dir, 'sub', 'tcpproxy.pid')
  const pf = writePidfile(path, 4242)
  // Make the directory a symlink loop: every lookup through it fails with ELOOP.
  fs.renameSync(join(dir, 'sub'), join(dir, 'moved'))
  fs.symlinkSync('sub', join(dir, 'sub'))
  const err = t.throws(() => pf.remove()) as TcpproxyError
  t.match(err, ioError(new RegExp(`^cannot remove pidfile ${path}: ELOOP`)))
  t.equal(fs.readFileSync(join(dir, 'moved', 'tcpproxy.pid'), 'utf8'), '4242\n', 'the file is untouched')
})
