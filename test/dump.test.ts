/**
 * lib/dump.ts: the `-w` traffic dump in tcpproxy 2.0's format, and how its
 * files are opened (mode 0600, appended to, never through a symbolic link).
 */
import t from 'tap'
import { once } from 'node:events'
import { spawnSync } from 'node:child_process'
import { chownSync, existsSync, readFileSync, statSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { dumpRecord, escapeBytes, openDump } from '../lib/dump.js'

/** Write records through openDump and wait until they are on disk. */
async function writeAll(base: string, id: string, records: string[]): Promise<void> {
  const out = openDump(base, id)
  for (const r of records) out.write(r)
  out.end()
  await once(out, 'close')
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

t.test('openDump creates BASE.ID.log with mode 0600 and appends records', async t => {
  const dir = t.testdir({})
  const base = join(dir, 'dump')
  await writeAll(base, '3', ['first\n'])
  const path = join(dir, 'dump.3.log')
  t.equal(statSync(path).mode & 0o777, 0o600)
  await writeAll(base, '3', ['second\n', 'third\n'])
  t.equal(readFileSync(path, 'utf8'), 'first\nsecond\nthird\n', 'a second open appends')
  t.notOk(existsSync(join(dir, 'dump.4.log')), 'other ids are other files')
})

t.test('openDump appends to an existing file and leaves its mode', async t => {
  const dir = t.testdir({ 'dump.1.log': 'kept\n' })
  const path = join(dir, 'dump.1.log')
  const before = statSync(path).mode & 0o777
  await writeAll(join(dir, 'dump'), '1', ['added\n'])
  t.equal(readFileSync(path, 'utf8'), 'kept\nadded\n')
  t.equal(statSync(path).mode & 0o777, before)
})

t.test('openDump refuses to follow a symbolic link, even a dangling one', async t => {
  const dir = t.testdir({ 'victim.txt': 'precious\n' })
  symlinkSync(join(dir, 'victim.txt'), join(dir, 'dump.1.log'))
  t.throws(() => openDump(join(dir, 'dump'), '1'), { code: 'ELOOP' })
  t.equal(readFileSync(join(dir, 'victim.txt'), 'utf8'), 'precious\n', 'the link target is untouched')
  symlinkSync(join(dir, 'created-by-link.txt'), join(dir, 'dump.2.log'))
  t.throws(() => openDump(join(dir, 'dump'), '2'), { code: 'ELOOP' })
  t.notOk(existsSync(join(dir, 'created-by-link.txt')), 'no file is created through a dangling link')
})

t.test('openDump throws the system error for a path that cannot be created', async t => {
  const dir = t.testdir({ file: 'x' })
  t.throws(() => openDump(join(dir, 'missing-dir', 'dump'), '1'), { code: 'ENOENT' })
  t.throws(() => openDump(join(dir, 'file', 'dump'), '1'), { code: 'ENOTDIR' })
})

t.test('openDump does not block on a fifo planted at the path: it fails at once', async t => {
  const dir = t.testdir({})
  const base = join(dir, 'dump')
  t.equal(spawnSync('mkfifo', [`${base}.1.log`]).status, 0)
  const started = Date.now()
  // Without O_NONBLOCK the open would wait for a reader forever, and with it the daemon.
  t.throws(() => openDump(base, '1'), { code: 'ENXIO' })
  t.ok(Date.now() - started < 1000, 'at once')
})

t.test('openDump refuses a file another user created at the path (to read the traffic)', { skip: process.getuid?.() === 0 ? false : 'needs root to make a file of another user' }, async t => {
  const dir = t.testdir({ 'dump.1.log': '' })
  chownSync(join(dir, 'dump.1.log'), 12345, 12345)
  t.throws(() => openDump(join(dir, 'dump'), '1'), { message: `owned by uid 12345, not 0` })
  t.equal(readFileSync(join(dir, 'dump.1.log'), 'utf8'), '', 'nothing written into it')
})

t.test('openDump refuses a device planted at the path', { skip: process.getuid?.() === 0 ? false : 'needs root to make a device node' }, async t => {
  const dir = t.testdir({})
  // A copy of /dev/null: it opens without blocking, and is no place for a dump.
  t.equal(spawnSync('mknod', [join(dir, 'dump.1.log'), 'c', '1', '3']).status, 0)
  t.throws(() => openDump(join(dir, 'dump'), '1'), { message: 'not a regular file' })
})
