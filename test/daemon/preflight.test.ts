/**
 * Start-up checks (lib/daemon/preflight.ts): the kernel's permission rules as a
 * pure function over stat results, and, end to end, --check refusing what
 * the serving user could not run or write, with one line that names where,
 * what, and whom.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULT_OPTIONS } from '../../lib/cli/options.js'
import { DEFAULT_GLOBALS, DEFAULT_SETTINGS, type Config, type ServiceDef } from '../../lib/config/config.js'
import {
  checkPidfile,
  checkServices,
  checkStartup,
  directoryProblem,
  fsStat,
  permits,
  programProblem,
  servingAccount,
  type Account,
  type Inode,
} from '../../lib/daemon/preflight.js'
import { BIN, exchange, fixture, reachableDir, startProxy, tcpproxy } from '../fixtures/harness.js'

const nobody: Account = { name: 'nobody', uid: 65534, gid: 65534, groups: [] }
const alice: Account = { name: 'alice', uid: 1000, gid: 1000, groups: [50] }
const root: Account = { name: 'root', uid: 0, gid: 0, groups: [] }
const dir = (mode: number, uid = 0, gid = 0): Inode => ({ mode: 0o040000 | mode, uid, gid, kind: 'directory' })
const file = (mode: number, uid = 0, gid = 0): Inode => ({ mode: 0o100000 | mode, uid, gid, kind: 'file' })
/** A file system of the given inodes; anything else is ENOENT. */
const fsOf = (entries: Record<string, Inode | string>) => (path: string) => entries[path] ?? 'ENOENT'

t.test('permits: owner, then group, then other bits; root reads and writes all, executes with any x bit', async t => {
  t.ok(permits(alice, file(0o700, 1000), 1), 'owner x')
  t.notOk(permits(alice, file(0o077, 1000), 1), 'the owner gets the owner bits only, even when others may')
  t.ok(permits(alice, file(0o070, 0, 50), 1), 'a supplementary group')
  t.ok(permits(alice, file(0o070, 0, 1000), 1), 'the primary group')
  t.notOk(permits(alice, file(0o707, 0, 50), 1), 'a group member gets the group bits only')
  t.ok(permits(nobody, file(0o755), 1), 'other x')
  t.notOk(permits(nobody, file(0o750), 1), 'no other x')
  t.ok(permits(alice, dir(0o003), 3), 'write and search')
  t.notOk(permits(alice, dir(0o005), 3), 'search without write is not enough to create')
  t.ok(permits(root, file(0o000), 4) && permits(root, file(0o000), 2), 'root reads and writes anything')
  t.ok(permits(root, dir(0o000), 1), 'root searches any directory')
  t.notOk(permits(root, file(0o644), 1), 'root executes only with an x bit')
  t.ok(permits(root, file(0o010), 1), 'any x bit will do for root')
})

t.test('programProblem: every directory on the way, then the file itself', async t => {
  const stat = fsOf({
    '/': dir(0o755),
    '/usr': dir(0o755),
    '/usr/bin': dir(0o755),
    '/usr/bin/ok': file(0o755),
    '/usr/bin/plain': file(0o644),
    '/usr/bin/sub': dir(0o755),
    '/root': dir(0o700),
    '/root/h': file(0o755),
    '/etc': file(0o644),
    '/odd': 'ELOOP',
  })
  t.equal(programProblem(nobody, ['/usr/bin/ok'], stat), null)
  t.equal(programProblem(nobody, ['/usr/bin/missing'], stat), 'no such file or directory (ENOENT)')
  t.equal(programProblem(nobody, ['/usr/bin/plain'], stat), 'not executable (mode 0644, owner 0:0)')
  t.equal(programProblem(nobody, ['/usr/bin/sub'], stat), 'not a regular file')
  t.equal(programProblem(nobody, ['/root/h'], stat), 'directory /root is not searchable (mode 0700, owner 0:0)')
  t.equal(programProblem(root, ['/root/h'], stat), null, 'root passes the 0700 directory')
  t.equal(programProblem(nobody, ['/etc/h'], stat), '/etc is not a directory')
  t.equal(programProblem(nobody, ['/odd/h'], stat), '/odd: too many symbolic links encountered (ELOOP)')
  t.equal(programProblem(nobody, ['/usr/bin/ok', '/root/h'], stat), 'directory /root is not searchable (mode 0700, owner 0:0)', 'the target of a link is checked too')
})

t.test('directoryProblem: a directory the user can search and write', async t => {
  const stat = fsOf({ '/': dir(0o755), '/var': dir(0o755), '/var/dump': dir(0o1777), '/var/ro': dir(0o755), '/var/f': file(0o666) })
  t.equal(directoryProblem(nobody, '/var/dump', stat), null)
  t.equal(directoryProblem(nobody, '/var/ro', stat), 'directory /var/ro is not writable (mode 0755, owner 0:0)')
  t.equal(directoryProblem(root, '/var/ro', stat), null)
  t.equal(directoryProblem(nobody, '/var/none', stat), '/var/none: no such file or directory (ENOENT)')
  t.equal(directoryProblem(nobody, '/var/f', stat), '/var/f is not a directory')
  t.equal(directoryProblem(nobody, '/', stat), 'directory / is not writable (mode 0755, owner 0:0)')
  t.equal(directoryProblem(nobody, '/nope/x', stat), '/nope: no such file or directory (ENOENT)')
})

const service = (s: Partial<ServiceDef>): ServiceDef => ({
  ...DEFAULT_SETTINGS,
  servers: [{ host: 'h', port: 1 }],
  port: 8025,
  iface: null,
  ifaceText: '*',
  source: { file: 'f.conf', line: 3 },
  ...s,
})

t.test('checkServices names the file and line or the option, the program, the user and why', async t => {
  const stat = fsOf({ '/': dir(0o755), '/srv': dir(0o700), '/srv/h': file(0o755), '/bin': dir(0o755), '/bin/h': file(0o755) })
  const fails = (s: ServiceDef, message: string): void => {
    t.throws(() => checkServices([s], nobody, stat, '/'), { code: 'ERR_CONFIG', message }, message)
  }
  fails(
    service({ servers: null, exec: ['/srv/h', 'arg'] }),
    'f.conf:3: service * port 8025: handler /srv/h cannot be run by user nobody (uid 65534): directory /srv is not searchable (mode 0700, owner 0:0)',
  )
  fails(
    service({ acp: ['/srv/h'], source: { file: 'command line', line: 0 } }),
    'option -a: access control program /srv/h cannot be run by user nobody (uid 65534): directory /srv is not searchable (mode 0700, owner 0:0)',
  )
  fails(
    service({ servers: null, exec: ['./h'], source: { file: 'server argument', line: 0 } }),
    'server argument: handler ./h cannot be run by user nobody (uid 65534): no such file or directory (ENOENT)',
  )
  fails(
    service({ writefile: '/srv/dump' }),
    'f.conf:3: service * port 8025: writefile /srv/dump: user nobody (uid 65534) cannot create its files: directory /srv is not writable (mode 0700, owner 0:0)',
  )
  t.doesNotThrow(() => checkServices([service({ servers: null, exec: ['/bin/h'], acp: ['h'] })], nobody, stat, '/bin'), 'a relative program from the working directory')
  t.doesNotThrow(() => checkServices([service({ exec: ['/srv/h'], writefile: '/srv/dump' })], root, stat, '/'))
  t.throws(() => checkPidfile('/run/tp.pid', root, stat, '/'), { message: 'pidfile /run/tp.pid: root cannot write it: /run: no such file or directory (ENOENT)' })
  t.doesNotThrow(() => checkPidfile(null, root, stat))
})

t.test('servingAccount: the configured identity with its groups, else this process', async t => {
  const self = servingAccount(null)
  t.equal(self.uid, process.getuid?.())
  t.same(self.groups, process.getgroups?.())
  t.same(servingAccount({ user: '4242', uid: 4242, gid: 77 }), { name: '4242', uid: 4242, gid: 77, groups: [77] }, 'a bare uid gets only its gid')
  const r = servingAccount({ user: 'root', uid: 0, gid: 0 })
  t.equal(r.name, 'root')
  t.ok(Array.isArray(r.groups))
  t.has(fsStat('/'), { kind: 'directory' })
  t.equal(fsStat('/nonexistent/x'), 'ENOENT')
  t.has(fsStat('/dev/null'), { kind: 'other' })
})

t.test('checkStartup: the facility and the user are checked, root or not', async t => {
  const config: Config = { ports: [1], globals: { ...DEFAULT_GLOBALS }, services: [service({})] }
  t.throws(() => checkStartup({ ...DEFAULT_OPTIONS, syslogFacility: 'bogus' }, config, config.services, 1000), { message: /unknown facility "bogus"/ })
  t.throws(() => checkStartup({ ...DEFAULT_OPTIONS, user: 'nosuchuser' }, { ...config, globals: { ...DEFAULT_GLOBALS, user: 'nosuchuser' } }, config.services, 1000), {
    code: 'ERR_CONFIG',
    message: 'option -u: user "nosuchuser": unknown user "nosuchuser"',
  })
  t.throws(() => checkStartup({ ...DEFAULT_OPTIONS, config: 'x.conf' }, { ...config, globals: { ...DEFAULT_GLOBALS, user: 'nosuchuser' } }, config.services, 1000), {
    message: 'x.conf: user "nosuchuser": unknown user "nosuchuser"',
  })
  t.throws(() => checkStartup(DEFAULT_OPTIONS, { ...config, globals: { ...DEFAULT_GLOBALS, user: 'nosuchuser' } }, config.services, 1000), {
    message: '/etc/tcpproxy.conf: user "nosuchuser": unknown user "nosuchuser"',
  })
  t.equal(checkStartup({ ...DEFAULT_OPTIONS, syslogFacility: 'local3' }, config, config.services, 1000), null, 'not root: nobody to become')
  t.match(checkStartup(DEFAULT_OPTIONS, config, config.services, 0), { user: 'nobody' }, 'root: the configured user, by default nobody')
})

const root0 = process.getuid?.() === 0
t.test('--check as root refuses what nobody cannot run or write, exit status 2', { skip: !root0 && 'needs root' }, async t => {
  const shared = reachableDir(t)
  chmodSync(shared, 0o755)
  const closed = join(shared, 'closed')
  mkdirSync(closed, { mode: 0o700 })
  chmodSync(closed, 0o700)
  const handler = join(closed, 'h.sh')
  writeFileSync(handler, '#!/bin/sh\n', { mode: 0o755 })
  const plain = join(shared, 'plain.sh')
  writeFileSync(plain, '#!/bin/sh\n', { mode: 0o644 })
  const conf = join(shared, 't.conf')
  writeFileSync(conf, `port 8025\ninterface *\nserver 127.0.0.1:25\n\nport 8026\ninterface 127.0.0.1\nexec ${handler} x\n`)
  const check = (...args: string[]) => spawnSync(process.execPath, [BIN, '--check', ...args], { encoding: 'utf8', cwd: shared })
  const cases: Array<[string[], string]> = [
    [['-c', conf], `${conf}:6: service 127.0.0.1 port 8026: handler ${handler} cannot be run by user nobody (uid 65534): directory ${closed} is not searchable (mode 0700, owner 0:0)`],
    [['-b', '8025', plain], `server argument: handler ${plain} cannot be run by user nobody (uid 65534): not executable (mode 0644, owner 0:0)`],
    [['-a', '/nonexistent/acp', '-b', '8025', 'h'], 'option -a: access control program /nonexistent/acp cannot be run by user nobody (uid 65534): /nonexistent: no such file or directory (ENOENT)'],
    [['-w', join(closed, 'dump'), '-b', '8025', 'h'], `option -w: writefile ${join(closed, 'dump')}: user nobody (uid 65534) cannot create its files: directory ${closed} is not writable (mode 0700, owner 0:0)`],
    [['-w', '/nonexistent/dump', '-b', '8025', 'h'], 'option -w: writefile /nonexistent/dump: user nobody (uid 65534) cannot create its files: /nonexistent: no such file or directory (ENOENT)'],
    [['-u', 'nosuchuser', '-b', '8025', 'h'], 'option -u: user "nosuchuser": unknown user "nosuchuser"'],
    [['--syslog-facility', 'bogus', '-b', '8025', 'h'], 'option --syslog-facility: unknown facility "bogus"'],
    [['--pidfile', '/nonexistent/tp.pid', '-b', '8025', 'h'], 'pidfile /nonexistent/tp.pid: root cannot write it: /nonexistent: no such file or directory (ENOENT)'],
    [['-b', '99999', 'h'], 'option -b: port 99999 is out of range (1-65535)'],
  ]
  for (const [args, line] of cases) {
    const r = check(...args)
    t.equal(r.status, 2, args.join(' '))
    t.equal(r.stderr.split('\n').length, 2, 'one line')
    t.ok(r.stderr.startsWith(`tcpproxy: ${line}`), `${r.stderr.trim()}\n    starts with\ntcpproxy: ${line}`)
  }
  // A link is checked where it is and where it leads.
  symlinkSync(handler, join(shared, 'link'))
  const viaLink = check('-b', '8025', join(shared, 'link'))
  t.equal(viaLink.stderr, `tcpproxy: server argument: handler ${join(shared, 'link')} cannot be run by user nobody (uid 65534): directory ${closed} is not searchable (mode 0700, owner 0:0)\n`)
  // -u root serves as root: the handler in the 0700 directory is fine then.
  const asRoot = check('-u', 'root', '-c', conf)
  t.equal(asRoot.status, 0, asRoot.stderr)
})

t.test('the start refuses it too (exit 2), and a reload keeps the old configuration', { skip: !root0 && 'needs root' }, async t => {
  const shared = reachableDir(t)
  const closed = join(shared, 'closed')
  mkdirSync(closed, { mode: 0o700 })
  chmodSync(closed, 0o700)
  const hidden = join(closed, 'h.sh')
  writeFileSync(hidden, '#!/bin/sh\necho hidden\n', { mode: 0o755 })
  const start = tcpproxy(['-d', '-b', '127.0.0.1:1', hidden])
  t.equal(await start.exited, 2)
  t.same(start.lines, [`tcpproxy: server argument: handler ${hidden} cannot be run by user nobody (uid 65534): directory ${closed} is not searchable (mode 0700, owner 0:0)`])

  const conf = join(shared, 'r.conf')
  const p = await startProxy(port => {
    writeFileSync(conf, `port ${port}\ninterface 127.0.0.1\nexec ${fixture('echo-handler.sh')}\n`)
    return ['-d', '-c', conf]
  })
  t.teardown(p.stop)
  writeFileSync(conf, `port ${p.port}\ninterface 127.0.0.1\nexec ${hidden}\n`)
  p.proc.kill('SIGHUP')
  t.match(
    await p.waitFor(/reload failed/),
    `-ERR: reload failed, keeping the old configuration: ${conf}:2: service 127.0.0.1 port ${p.port}: handler ${hidden} cannot be run by user nobody (uid 65534): directory ${closed} is not searchable`,
  )
  t.equal((await exchange(p.port, 'still\n')).data.toString(), 'you said: still\n', 'the old handler still serves')
  t.notOk(p.lines.some(l => /can't execute/.test(l)))
})
