/**
 * Users and groups: the passwd/group parsers, `-u USER[.GROUP]` resolution, and
 * dropPrivileges, both against an injected credentials object (every branch,
 * in-process) and for real in child processes (test/fixtures/unit-drop.mjs,
 * which imports the compiled dist/daemon/privileges.js): a real switch cannot be
 * undone, so it never happens in the test process itself.
 */
import t, { type Test } from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { TcpproxyError } from '../../lib/errors.js'
import {
  DEFAULT_USER,
  GROUP_FILE,
  PASSWD_FILE,
  dropPrivileges,
  loadUserDb,
  parseGroup,
  groupId,
  parsePasswd,
  resolveIdentity,
  supplementaryGroups,
  type Credentials,
  type Identity,
} from '../../lib/daemon/privileges.js'
// unit-drop.mjs gives up root: its coverage goes where it can write it.
import '../fixtures/coverage.js'

const DROP = fileURLToPath(new URL('../fixtures/unit-drop.mjs', import.meta.url))
const isRoot = process.getuid?.() === 0

const PASSWD = [
  '# a comment',
  '',
  'root:x:0:0:root:/root:/bin/bash',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'john.doe:x:1001:1001:John:/home/john:/bin/sh\r',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
  '+nisuser::::::',
  '-excluded::::::',
  'short:x:12',
  'baduid:x:abc:1::/:/bin/sh',
  'badgid:x:7:-1::/:/bin/sh',
  'toobig:x:4294967295:1::/:/bin/sh',
  ':x:50:50::/:/bin/sh',
  '   ',
].join('\n')

const GROUP = [
  'root:x:0:',
  'daemon:x:1:',
  'staff:x:50:john.doe,daemon',
  '# comment',
  'nogroup:x:65534:',
  'broken',
  'badgid:x:x:',
  ':x:60:',
  'ops.team:x:70:',
].join('\n')

const DB = { passwd: PASSWD, group: GROUP }

t.test('defaults', async t => {
  t.equal(DEFAULT_USER, 'nobody')
  t.equal(PASSWD_FILE, '/etc/passwd')
  t.equal(GROUP_FILE, '/etc/group')
})

t.test('parsePasswd keeps well-formed entries in order', async t => {
  t.same(parsePasswd(PASSWD), [
    { name: 'root', uid: 0, gid: 0 },
    { name: 'daemon', uid: 1, gid: 1 },
    { name: 'john.doe', uid: 1001, gid: 1001 },
    { name: 'nobody', uid: 65534, gid: 65534 },
  ])
  t.same(parsePasswd(''), [])
  t.same(parsePasswd('a:x:4294967294:0'), [{ name: 'a', uid: 4294967294, gid: 0 }], 'the largest id')
})

t.test('parseGroup keeps well-formed entries in order', async t => {
  t.same(parseGroup(GROUP), [
    { name: 'root', gid: 0 },
    { name: 'daemon', gid: 1 },
    { name: 'staff', gid: 50 },
    { name: 'nogroup', gid: 65534 },
    { name: 'ops.team', gid: 70 },
  ])
  t.same(parseGroup('g:x:5'), [{ name: 'g', gid: 5 }], 'no member field')
})

t.test('groupId: a group name or number (control-group), an unknown name refused naming the setting', async t => {
  t.equal(groupId('staff', GROUP, 'control-group'), 50)
  t.equal(groupId('4242', GROUP, 'control-group'), 4242)
  t.throws(() => groupId('wheel', GROUP, 'control-group'), { code: 'ERR_CONFIG', message: 'control-group: unknown group "wheel"' })
  t.throws(() => groupId('99999999999', GROUP, 'control-group'), { message: 'control-group: unknown group "99999999999"' })
})

t.test('loadUserDb reads the system files, or injected paths', async t => {
  const db = loadUserDb()
  t.equal(db.passwd, fs.readFileSync('/etc/passwd', 'utf8'))
  t.equal(db.group, fs.readFileSync('/etc/group', 'utf8'))

  const dir = t.testdir({ passwd: PASSWD, group: GROUP })
  t.same(loadUserDb({ passwd: join(dir, 'passwd'), group: join(dir, 'group') }), DB)
  t.same(loadUserDb({ passwd: join(dir, 'passwd') }).group, db.group, 'one path given, the other defaults')

  const missing = join(dir, 'nope')
  const err = t.throws(() => loadUserDb({ group: missing })) as TcpproxyError
  t.ok(err instanceof TcpproxyError)
  t.match(err, { code: 'ERR_IO', message: new RegExp(`^cannot read ${missing}: ENOENT`) })
})

t.test('resolveIdentity: names and numbers, with and without a group', async t => {
  const cases: Array<[string, Identity]> = [
    ['nobody', { user: 'nobody', uid: 65534, gid: 65534 }],
    ['nobody.staff', { user: 'nobody', uid: 65534, gid: 50 }],
    ['nobody:staff', { user: 'nobody', uid: 65534, gid: 50 }],
    ['nobody.7', { user: 'nobody', uid: 65534, gid: 7 }],
    ['nobody:ops.team', { user: 'nobody', uid: 65534, gid: 70 }],
    ['john.doe', { user: 'john.doe', uid: 1001, gid: 1001 }],
    ['john.doe:staff', { user: 'john.doe', uid: 1001, gid: 50 }],
    ['1', { user: 'daemon', uid: 1, gid: 1 }],
    ['1.staff', { user: 'daemon', uid: 1, gid: 50 }],
    ['0', { user: 'root', uid: 0, gid: 0 }],
    ['1234.staff', { user: '1234', uid: 1234, gid: 50 }],
    ['1234:99', { user: '1234', uid: 1234, gid: 99 }],
    ['4294967294.4294967294', { user: '4294967294', uid: 4294967294, gid: 4294967294 }],
  ]
  for (const [spec, want] of cases) t.same(resolveIdentity(spec, DB), want, spec)
})

t.test('resolveIdentity: errors name the user or group', async t => {
  const cases: Array<[string, string]> = [
    ['ghost', 'user "ghost": unknown user "ghost"'],
    ['ghost.staff', 'user "ghost.staff": unknown user "ghost"'],
    ['nobody.ghosts', 'user "nobody.ghosts": unknown group "ghosts"'],
    ['1234', 'user "1234": uid 1234 has no passwd entry: give a group (-u 1234.GROUP)'],
    ['.staff', 'user ".staff": no user given'],
    ['', 'user "": no user given'],
    ['nobody.', 'user "nobody.": no group given after the separator'],
    ['nobody:', 'user "nobody:": no group given after the separator'],
    ['4294967295', 'user "4294967295": uid 4294967295 is out of range'],
    ['nobody.99999999999', 'user "nobody.99999999999": gid 99999999999 is out of range'],
  ]
  for (const [spec, message] of cases) {
    const err = t.throws(() => resolveIdentity(spec, DB), spec) as TcpproxyError
    t.ok(err instanceof TcpproxyError)
    t.match(err, { code: 'ERR_CONFIG', message: new RegExp(`^${message.replace(/[.()]/g, '\\$&')}$`) }, spec)
  }
})

t.test('resolveIdentity reads /etc/passwd and /etc/group by default', async t => {
  t.same(resolveIdentity('root'), { user: 'root', uid: 0, gid: 0 })
  t.same(resolveIdentity('0.0'), { user: 'root', uid: 0, gid: 0 })
})

/** A credentials object that records calls; `opts` bend it to fail in the ways a switch can. */
function fakeProc(
  opts: {
    uid?: number
    euid?: number
    /** The setter that throws. */
    failing?: 'initgroups' | 'setgroups' | 'setgid' | 'setuid'
    /** The getter that keeps reporting the old id after the switch. */
    stale?: 'getuid' | 'geteuid' | 'getgid' | 'getegid'
    /** setuid(0) succeeds after the switch. */
    regain?: boolean
  } = {},
): { proc: Credentials; calls: string[] } {
  const calls: string[] = []
  let uid = opts.uid ?? 0
  let euid = opts.euid ?? uid
  let gid = 0
  let egid = 0
  const set = (name: NonNullable<typeof opts.failing>, args: unknown, fn: () => void = () => {}) => {
    calls.push(`${name} ${String(args)}`)
    if (opts.failing === name) throw new Error('EPERM, Operation not permitted')
    fn()
  }
  const get = (name: string, value: number) => (opts.stale === name ? 0 : value)
  const proc = {
    getuid: () => get('getuid', uid),
    geteuid: () => get('geteuid', euid),
    getgid: () => get('getgid', gid),
    getegid: () => get('getegid', egid),
    initgroups: (user: string | number, extra: string | number) => set('initgroups', `${user} ${extra}`),
    setgroups: (groups: readonly (string | number)[]) => set('setgroups', groups.join(',')),
    setgid: (id: number | string) =>
      set('setgid', id, () => {
        gid = egid = Number(id)
      }),
    setuid: (id: number | string) =>
      set('setuid', id, () => {
        if (Number(id) === 0 && euid !== 0 && !opts.regain) throw new Error('EPERM, Operation not permitted')
        uid = euid = Number(id)
      }),
  }
  return { proc: proc as Credentials, calls }
}

const NOBODY: Identity = { user: 'nobody', uid: 65534, gid: 65534 }

t.test('dropPrivileges does nothing unless root', async t => {
  const { proc, calls } = fakeProc({ uid: 1000 })
  t.equal(dropPrivileges(NOBODY, proc), false)
  t.same(calls, [])
})

t.test('dropPrivileges: initgroups, setgid, setuid, then setuid(0) must fail', async t => {
  const { proc, calls } = fakeProc()
  t.equal(dropPrivileges(NOBODY, proc), true)
  t.same(calls, ['initgroups nobody 65534', 'setgid 65534', 'setuid 65534', 'setuid 0'])
  t.equal(proc.getuid!(), 65534)
  t.equal(proc.getegid!(), 65534)
})

t.test('dropPrivileges runs when only the effective uid is root', async t => {
  const { proc, calls } = fakeProc({ uid: 1000, euid: 0 })
  t.equal(dropPrivileges(NOBODY, proc), true)
  t.equal(calls[0], 'initgroups nobody 65534')
})

t.test('dropPrivileges: a uid without a passwd entry gets just its gid as groups', async t => {
  const { proc, calls } = fakeProc()
  t.equal(dropPrivileges({ user: '4242', uid: 4242, gid: 4343 }, proc), true)
  t.same(calls, ['setgroups 4343', 'setgid 4343', 'setuid 4242', 'setuid 0'])
})

t.test('dropPrivileges to root keeps root and does not probe setuid(0)', async t => {
  const { proc, calls } = fakeProc()
  t.equal(dropPrivileges({ user: 'root', uid: 0, gid: 0 }, proc), true)
  t.same(calls, ['initgroups root 0', 'setgid 0', 'setuid 0'])
})

t.test('dropPrivileges: every failure is an ERR_PRIVILEGES naming user, uid, gid and reason', async t => {
  const prefix = 'cannot switch to nobody \\(uid 65534, gid 65534\\): '
  const cases: Array<[Parameters<typeof fakeProc>[0], string]> = [
    [{ failing: 'initgroups' }, 'EPERM, Operation not permitted'],
    [{ failing: 'setgid' }, 'EPERM, Operation not permitted'],
    [{ failing: 'setuid' }, 'EPERM, Operation not permitted'],
    [{ stale: 'getuid' }, 'uid is 0, effective uid 65534 after setuid'],
    [{ stale: 'geteuid' }, 'uid is 65534, effective uid 0 after setuid'],
    [{ stale: 'getgid' }, 'gid is 0, effective gid 65534 after setgid'],
    [{ stale: 'getegid' }, 'gid is 65534, effective gid 0 after setgid'],
    [{ regain: true }, 'root privileges could be regained with setuid\\(0\\)'],
  ]
  for (const [opts, reason] of cases) {
    const { proc } = fakeProc(opts)
    const err = t.throws(() => dropPrivileges(NOBODY, proc), JSON.stringify(opts)) as TcpproxyError
    t.ok(err instanceof TcpproxyError)
    t.match(err, { code: 'ERR_PRIVILEGES', message: new RegExp(`^${prefix}${reason}$`) }, JSON.stringify(opts))
  }
  const { proc } = fakeProc({ failing: 'setgroups' })
  t.throws(() => dropPrivileges({ user: '4242', uid: 4242, gid: 4242 }, proc), {
    code: 'ERR_PRIVILEGES',
    message: 'cannot switch to 4242 (uid 4242, gid 4242): EPERM, Operation not permitted',
  })
})

// ---- real switches, in child processes ----

interface DropResult {
  calls: Array<{ spec: string; id?: Identity; switched?: boolean; error?: { code: string; message: string } }>
  /** real, effective, saved, filesystem */
  uid: number[]
  gid: number[]
  groups: number[]
  regained: boolean
}

/**
 * The child runs without tap's instrumentation: tap's child_process wrapper puts
 * its hooks into NODE_OPTIONS of everything the test spawns, and once the child
 * is nobody those hooks (and V8 coverage) could not write their files under
 * .tap/, which root owns. So `env -u` strips them for the node process itself.
 * Its code paths are covered in-process, through fakeProc.
 */
function drop(t: Test, ...specs: string[]): DropResult {
  const r = spawnSync('env', ['-u', 'NODE_OPTIONS', '-u', 'NODE_V8_COVERAGE', process.execPath, DROP, ...specs], {
    encoding: 'utf8',
    timeout: 30000,
  })
  t.equal(r.status, 0, 'child exits 0')
  t.equal(r.stderr, '', 'child writes nothing to stderr')
  return JSON.parse(r.stdout) as DropResult
}

const sorted = (a: number[]) => [...new Set(a)].sort((x, y) => x - y)

/** `id -G USER`: the primary and supplementary gids the system gives USER. */
function idGroups(user: string): number[] {
  return sorted(execFileSync('id', ['-G', user], { encoding: 'utf8' }).trim().split(/\s+/).map(Number))
}

const rootOnly = isRoot ? {} : { skip: 'needs root to switch users' }
const system = { passwd: parsePasswd(fs.readFileSync(PASSWD_FILE, 'utf8')), group: parseGroup(fs.readFileSync(GROUP_FILE, 'utf8')) }
const nobody = system.passwd.find(u => u.name === 'nobody')
const hasNobody = nobody !== undefined ? {} : { skip: 'no user nobody in /etc/passwd' }

t.test('a real switch to nobody', { ...rootOnly, ...hasNobody }, async t => {
  const want = nobody!
  const r = drop(t, 'nobody')
  t.same(r.calls, [{ spec: 'nobody', id: { user: 'nobody', uid: want.uid, gid: want.gid }, switched: true }])
  t.same(r.uid, [want.uid, want.uid, want.uid, want.uid], 'real, effective, saved and fs uid')
  t.same(r.gid, [want.gid, want.gid, want.gid, want.gid], 'real, effective, saved and fs gid')
  t.same(sorted(r.groups), idGroups('nobody'), 'supplementary groups as `id -G nobody`')
  t.equal(r.regained, false, 'setuid(0) fails afterwards')
})

const otherGroup = system.group.find(g => g.gid !== nobody?.gid && g.gid !== 0)
t.test(
  'a real switch to nobody.GROUP takes that group',
  { ...rootOnly, ...hasNobody, ...(otherGroup ? {} : { skip: "no group other than root and nobody's own" }) },
  async t => {
    const group = otherGroup!
    const r = drop(t, `nobody.${group.name}`)
    t.same(r.calls[0]?.id, { user: 'nobody', uid: nobody!.uid, gid: group.gid })
    t.same(r.gid, [group.gid, group.gid, group.gid, group.gid])
    t.same(r.uid, [nobody!.uid, nobody!.uid, nobody!.uid, nobody!.uid])
    t.ok(r.groups.includes(group.gid), 'the group is among the groups')
    t.equal(r.regained, false)
  },
)

t.test('a real switch to a uid without a passwd entry', rootOnly, async t => {
  let uid = 4242
  while (system.passwd.some(u => u.uid === uid)) uid++
  const r = drop(t, `${uid}.${uid}`)
  t.same(r.calls[0]?.id, { user: String(uid), uid, gid: uid })
  t.same(r.uid, [uid, uid, uid, uid])
  t.same(r.gid, [uid, uid, uid, uid])
  t.same(r.groups, [uid], 'supplementary groups: just the gid')
  t.equal(r.regained, false)
})

// A user listed as a member of some group, else (root with useradd) one made for the test.
const memberNames = fs
  .readFileSync(GROUP_FILE, 'utf8')
  .split('\n')
  .flatMap(line => (line.split(':')[3] ?? '').split(',').filter(n => n !== ''))
const memberUser = memberNames.find(name => system.passwd.some(u => u.name === name && u.uid !== 0))
const canAddUsers = ['useradd', 'groupadd', 'userdel', 'groupdel'].every(
  tool => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0,
)
const suppSkip =
  memberUser !== undefined || canAddUsers
    ? {}
    : { skip: 'no user with supplementary groups, and no useradd/groupadd to make one' }

t.test("a real switch brings the user's supplementary groups", { ...rootOnly, ...suppSkip }, async t => {
  let user = memberUser
  if (user === undefined) {
    const tag = `${process.pid % 100000}${Date.now() % 100000}`
    const group = `tcpxg${tag}`
    const made = `tcpxu${tag}`
    execFileSync('groupadd', [group])
    t.teardown(() => {
      spawnSync('groupdel', [group])
    })
    execFileSync('useradd', ['-M', '-N', '-s', '/usr/sbin/nologin', '-G', group, made])
    t.teardown(() => {
      spawnSync('userdel', [made])
    })
    user = made
  }
  const want = idGroups(user)
  t.ok(want.length > 1, `${user} has supplementary groups (${want.join(' ')})`)
  const r = drop(t, user)
  t.equal(r.calls[0]?.switched, true)
  t.same(sorted(r.groups), want, `groups as \`id -G ${user}\``)
  t.equal(r.regained, false)
})

t.test('once switched, a second dropPrivileges does nothing; failures are reported', { ...rootOnly, ...hasNobody }, async t => {
  const r = drop(t, 'nobody', 'root', 'no-such-user-tcpproxy')
  t.equal(r.calls[0]?.switched, true)
  t.equal(r.calls[1]?.switched, false, 'not root any more: ids left alone')
  t.same(r.calls[2]?.error, {
    code: 'ERR_CONFIG',
    message: 'user "no-such-user-tcpproxy": unknown user "no-such-user-tcpproxy"',
  })
  t.equal(r.uid[0], nobody!.uid)
})

t.test('supplementaryGroups: the groups that list the user as a member', async t => {
  const text = `${GROUP}\nno-members:x:80`
  t.same(supplementaryGroups('daemon', text), [50])
  t.same(supplementaryGroups('john.doe', text), [50])
  t.same(supplementaryGroups('root', text), [], 'a primary group alone is not listed')
  t.same(supplementaryGroups('john', text), [], 'whole names only')
})
