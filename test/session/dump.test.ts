/**
 * lib/session/dump.ts: the `-w` traffic dump in tcpproxy 2.0's format, how its
 * files are created (always new, mode 0600, never through a symbolic link),
 * and a session's dump (cut short when the disk does not keep up).
 */
import t from 'tap'
import { once } from 'node:events'
import { spawnSync } from 'node:child_process'
import { chownSync, closeSync, existsSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { DUMP_NAMES, dumpRecord, escapeBytes, openDump, startDump } from '../../lib/session/dump.js'

/** Write records through openDump and wait until they are on disk; the file's path. */
async function writeAll(base: string, id: string, records: string[]): Promise<string> {
  const { out, path } = openDump(base, id)
  for (const r of records) out.write(r)
  out.end()
  await once(out, 'close')
  return path
}

t.test('escapeBytes keeps printable ASCII and escapes "#", controls, DEL and high bytes as #XX', async t => {
  t.equal(escapeBytes(Buffer.from('HELO example.org <a@b> ~!')), 'HELO example.org <a@b> ~!')
  t.equal(escapeBytes(Buffer.from('#1')), '#231', '"#" itself is escaped, so the dump decodes unambiguously')
  t.equal(escapeBytes(Buffer.from('a\r\nb')), 'a#0D#0Ab')
  t.equal(escapeBytes(Buffer.from([0x00, 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0xff])), '#00#1F ~#7F#80#FF')
  t.equal(escapeBytes(Buffer.from('ü')), '#C3#BC', 'UTF-8 is escaped byte by byte')
  t.equal(escapeBytes(Buffer.alloc(0)), '')
})

t.test('escapeBytes escapes exactly the bytes outside 0x20..0x7e and "#"', async t => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  const out = escapeBytes(all)
  // Decoding the dump gives back every byte.
  const decoded = Buffer.from(out.replace(/#([0-9A-F]{2})|([^#])/g, (_, hex: string | undefined, c: string) => String.fromCharCode(hex ? parseInt(hex, 16) : c.charCodeAt(0))), 'latin1')
  t.same(decoded, all)
  t.equal(out.length, 95 - 1 + (256 - 95 + 1) * 3, '94 printable bytes as is, 162 escaped')
})

t.test('dumpRecord: a header with side, id, local time to the microsecond and length, then the bytes', async t => {
  const epochMs = 1700000000123.4567
  const at = new Date(1700000000123)
  const two = (n: number) => String(n).padStart(2, '0')
  const hms = `${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}`
  t.equal(dumpRecord('CLIENT', '7', epochMs, Buffer.from('HELO #1\r\n')), `--- CLIENT [7] ${hms}.123456 (9):\nHELO #231#0D#0A\n`)
  t.equal(dumpRecord('SERVER', '12', epochMs, Buffer.alloc(0)), `--- SERVER [12] ${hms}.123456 (0):\n\n`, 'an EOF is an empty record')
})

t.test('dumpRecord pads the microseconds: a whole second is .000000, a microsecond .000001', async t => {
  const second = 1700000001000
  const at = new Date(second)
  const two = (n: number) => String(n).padStart(2, '0')
  const hms = `${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}`
  t.equal(dumpRecord('CLIENT', '1', second, Buffer.from('x')), `--- CLIENT [1] ${hms}.000000 (1):\nx\n`)
  // 0.0015 ms past the second: far enough from a double's rounding step at this magnitude.
  t.match(dumpRecord('CLIENT', '1', second + 0.0015, Buffer.from('x')), `${hms}.000001 (1)`)
  t.match(dumpRecord('CLIENT', '1', second + 999.9995, Buffer.from('x')), `${hms}.999999 (1)`, 'the last microsecond stays in its second')
})

t.test('openDump creates BASE.ID.log with mode 0600', async t => {
  const dir = t.testdir({})
  const base = join(dir, 'dump')
  const path = await writeAll(base, '3', ['first\n'])
  t.equal(path, join(dir, 'dump.3.log'))
  t.equal(statSync(path).mode & 0o777, 0o600)
  t.equal(readFileSync(path, 'utf8'), 'first\n')
  t.notOk(existsSync(join(dir, 'dump.4.log')), 'other ids are other files')
})

t.test('openDump never writes into a file already there: a second dump for the same id gets BASE.ID-2.log', async t => {
  // The case of a restart: ids start again at 1.
  const dir = t.testdir({ 'dump.1.log': 'the old session\n' })
  const base = join(dir, 'dump')
  t.equal(await writeAll(base, '1', ['new\n']), join(dir, 'dump.1-2.log'))
  t.equal(await writeAll(base, '1', ['newer\n']), join(dir, 'dump.1-3.log'))
  t.equal(readFileSync(join(dir, 'dump.1.log'), 'utf8'), 'the old session\n', 'the old dump is untouched')
  t.equal(readFileSync(join(dir, 'dump.1-2.log'), 'utf8'), 'new\n')
  t.equal(statSync(join(dir, 'dump.1-3.log')).mode & 0o777, 0o600)
})

t.test(`openDump gives up after ${DUMP_NAMES} names that exist, with EEXIST`, async t => {
  const files: Record<string, string> = { 'dump.1.log': '' }
  for (let n = 2; n <= DUMP_NAMES; n++) files[`dump.1-${n}.log`] = ''
  const dir = t.testdir(files)
  t.throws(() => openDump(join(dir, 'dump'), '1'), { code: 'EEXIST' })
  t.notOk(existsSync(join(dir, `dump.1-${DUMP_NAMES + 1}.log`)))
})

t.test('openDump never follows a symbolic link, even a dangling one: the dump goes to a fresh name', async t => {
  const dir = t.testdir({ 'victim.txt': 'precious\n' })
  symlinkSync(join(dir, 'victim.txt'), join(dir, 'dump.1.log'))
  t.equal(await writeAll(join(dir, 'dump'), '1', ['x\n']), join(dir, 'dump.1-2.log'))
  t.equal(readFileSync(join(dir, 'victim.txt'), 'utf8'), 'precious\n', 'the link target is untouched')
  symlinkSync(join(dir, 'created-by-link.txt'), join(dir, 'dump.2.log'))
  t.equal(await writeAll(join(dir, 'dump'), '2', ['y\n']), join(dir, 'dump.2-2.log'))
  t.notOk(existsSync(join(dir, 'created-by-link.txt')), 'no file is created through a dangling link')
})

t.test('openDump throws the system error for a path that cannot be created', async t => {
  const dir = t.testdir({ file: 'x' })
  t.throws(() => openDump(join(dir, 'missing-dir', 'dump'), '1'), { code: 'ENOENT' })
  t.throws(() => openDump(join(dir, 'file', 'dump'), '1'), { code: 'ENOTDIR' })
})

t.test('openDump does not block on a fifo planted at the path, nor write into it', async t => {
  const dir = t.testdir({})
  const base = join(dir, 'dump')
  t.equal(spawnSync('mkfifo', [`${base}.1.log`]).status, 0)
  const started = Date.now()
  // Opening the fifo for writing would wait for a reader forever, and with it the daemon.
  t.equal(await writeAll(base, '1', ['x\n']), `${base}.1-2.log`)
  t.ok(Date.now() - started < 1000, 'at once')
})

t.test('a file of the same user planted at the path (another process of the serving user) is left alone', async t => {
  const dir = t.testdir({ 'dump.1.log': '' })
  t.equal(await writeAll(join(dir, 'dump'), '1', ['secret traffic\n']), join(dir, 'dump.1-2.log'))
  t.equal(readFileSync(join(dir, 'dump.1.log'), 'utf8'), '', 'nothing written into the planted file')
})

t.test('a file of another user planted at the path is left alone', { skip: process.getuid?.() === 0 ? false : 'needs root to make a file of another user' }, async t => {
  const dir = t.testdir({ 'dump.1.log': '' })
  chownSync(join(dir, 'dump.1.log'), 12345, 12345)
  t.equal(await writeAll(join(dir, 'dump'), '1', ['x\n']), join(dir, 'dump.1-2.log'))
  t.equal(readFileSync(join(dir, 'dump.1.log'), 'utf8'), '', 'nothing written into it')
})

/** startDump with its notes collected. */
function started(base: string, id: string, backlog?: number) {
  const notes: string[] = []
  const dump = startDump(base, id, (event, text) => void notes.push(`${event}: ${text}`), backlog)
  return { dump, notes }
}

t.test('a session\'s dump records both sides and is complete on disk when close() resolves', async t => {
  const base = join(t.testdir({}), 'dump')
  const { dump, notes } = started(base, '3')
  if (dump === null) throw new Error('not opened')
  dump.tap('CLIENT', Buffer.from('HELO'))
  dump.tap('SERVER', Buffer.from('250'))
  await dump.close()
  t.match(readFileSync(`${base}.3.log`, 'utf8'), /^--- CLIENT \[3\] [\d:.]+ \(4\):\nHELO\n--- SERVER \[3\] [\d:.]+ \(3\):\n250\n$/)
  t.same(notes, [])
})

t.test('a dump the disk cannot keep up with is cut short, with one line', async t => {
  const base = join(t.testdir({}), 'dump')
  // A backlog of one byte: the first record already waits for the disk.
  const { dump, notes } = started(base, '1', 1)
  if (dump === null) throw new Error('not opened')
  dump.tap('CLIENT', Buffer.from('first'))
  dump.tap('CLIENT', Buffer.from('second'))
  await dump.close()
  t.match(readFileSync(`${base}.1.log`, 'utf8'), /^--- CLIENT \[1\] [\d:.]+ \(5\):\nfirst\n--- the dump stops here: the disk did not keep up with the traffic\n$/)
  t.same(notes, [`writefile-error: writefile cut short: ${base}.1.log, more than 1 bytes waiting for the disk`])
})

t.test('a dump that cannot be opened is a line and no dump; one whose name is taken is written under the next', async t => {
  const dir = t.testdir({ 'dump.2.log': 'an older run' })
  const missing = started(join(dir, 'nosuch', 'dump'), '1')
  t.equal(missing.dump, null)
  t.same(missing.notes, [`writefile-error: can't open writefile: ${join(dir, 'nosuch', 'dump')}.1.log, error= ENOENT`])
  const renamed = started(join(dir, 'dump'), '2')
  await renamed.dump?.close()
  t.same(renamed.notes, [`writefile-renamed: writefile ${join(dir, 'dump')}.2.log exists, writing ${join(dir, 'dump')}.2-2.log`])
  t.equal(readFileSync(join(dir, 'dump.2.log'), 'utf8'), 'an older run', 'the older dump is kept')
})

t.test('a write that fails is a line; the tap then records nothing more', async t => {
  const base = join(t.testdir({}), 'dump')
  const { dump, notes } = started(base, '1')
  if (dump === null) throw new Error('not opened')
  // Take the file's descriptor away behind the stream's back: its next write fails (EBADF).
  const fd = readdirSync('/proc/self/fd').find(n => {
    try {
      return readlinkSync(`/proc/self/fd/${n}`) === `${base}.1.log`
    } catch {
      return false
    }
  })
  closeSync(Number(fd))
  dump.tap('CLIENT', Buffer.from('lost'))
  const deadline = Date.now() + 5000
  while (notes.length === 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 5))
  dump.tap('CLIENT', Buffer.from('ignored'))
  await dump.close()
  t.same(notes, [`writefile-error: can't write writefile: ${base}.1.log, error= EBADF`])
})
