/**
 * The user and group tcpproxy runs as (`-u USER[.GROUP]`, config `user`;
 * tcpproxy(1), PRIVILEGES).
 *
 * Node has no getpwnam/getgrnam, so /etc/passwd and /etc/group are parsed here
 * (local files only: users known only to LDAP/NIS can still be given by number).
 * Unlike the original, whose group part was ignored, `.GROUP` works.
 */
import fs from 'node:fs'
import { TcpproxyError, errorText } from '../errors.js'

/** The user a root tcpproxy switches to when none is configured. */
export const DEFAULT_USER = 'nobody'
export const PASSWD_FILE = '/etc/passwd'
export const GROUP_FILE = '/etc/group'

/** The largest uid or gid accepted: (uid_t)-1 is "no change" to the kernel. */
const MAX_ID = 0xfffffffe

export interface Identity {
  /**
   * The name used for initgroups: the passwd name of the uid; for a numeric uid
   * without a passwd entry, the number as text (and then dropPrivileges sets
   * the supplementary groups to just `gid`).
   */
  user: string
  uid: number
  gid: number
}

export interface PasswdEntry {
  name: string
  uid: number
  gid: number
}

export interface GroupEntry {
  name: string
  gid: number
}

export interface UserDb {
  passwd: string
  group: string
}

/** A decimal id in range, else undefined. */
function parseId(text: string): number | undefined {
  if (!/^\d{1,10}$/.test(text)) return undefined
  const n = Number(text)
  return n <= MAX_ID ? n : undefined
}

/** Data lines split into fields: no blank lines, comments, or NIS `+`/`-` lines. */
function records(text: string): string[][] {
  return text
    .split('\n')
    .filter(line => line.trim() !== '' && !/^[#+-]/.test(line))
    .map(line => line.replace(/\r$/, '').split(':'))
}

/** The entries of an /etc/passwd text, in file order; malformed lines are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = []
  for (const [name = '', , uidText = '', gidText = ''] of records(text)) {
    const uid = parseId(uidText)
    const gid = parseId(gidText)
    if (name !== '' && uid !== undefined && gid !== undefined) out.push({ name, uid, gid })
  }
  return out
}

/** The entries of an /etc/group text, in file order; malformed lines are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = []
  for (const [name = '', , gidText = ''] of records(text)) {
    const gid = parseId(gidText)
    if (name !== '' && gid !== undefined) out.push({ name, gid })
  }
  return out
}

/** The gid of `spec`, a group name of the /etc/group text or a number (`control-group`); ERR_CONFIG naming `what`. */
export function groupId(spec: string, groupText: string, what: string): number {
  const gid = /^\d+$/.test(spec) ? parseId(spec) : parseGroup(groupText).find(g => g.name === spec)?.gid
  if (gid === undefined) throw new TcpproxyError('ERR_CONFIG', `${what}: unknown group "${spec}"`)
  return gid
}

/**
 * The groups initgroups(3) gives `user` besides its primary group: every
 * group of the /etc/group text that lists it as a member.
 */
export function supplementaryGroups(user: string, groupText: string): number[] {
  const out: number[] = []
  for (const [, , gidText = '', members = ''] of records(groupText)) {
    const gid = parseId(gidText)
    if (gid !== undefined && members.split(',').includes(user)) out.push(gid)
  }
  return out
}

/** Read the passwd and group files (ERR_IO when one cannot be read). */
export function loadUserDb(paths: { passwd?: string; group?: string } = {}): UserDb {
  const read = (file: string): string => {
    try {
      return fs.readFileSync(file, 'utf8')
    } catch (err) {
      throw new TcpproxyError('ERR_IO', `cannot read ${file}: ${errorText(err)}`, { cause: err })
    }
  }
  return { passwd: read(paths.passwd ?? PASSWD_FILE), group: read(paths.group ?? GROUP_FILE) }
}

function configError(spec: string, reason: string): TcpproxyError {
  return new TcpproxyError('ERR_CONFIG', `user "${spec}": ${reason}`)
}

/**
 * Resolve `USER[.GROUP]` or `USER:GROUP`, each part a name or a number.
 *
 * - A user name takes its passwd uid, and its primary gid unless GROUP is given.
 * - A numeric uid takes the passwd name and primary gid of that uid when it has
 *   an entry; without one, a GROUP is required (the gid is not guessed).
 * - Splitting: a `:` always separates; otherwise a spec that is a passwd user
 *   name as a whole (`john.doe`) is just a user, else it splits at the first `.`.
 *
 * Unknown names, ids out of range and empty parts throw ERR_CONFIG.
 */
export function resolveIdentity(spec: string, db: UserDb = loadUserDb()): Identity {
  const users = parsePasswd(db.passwd)
  let userPart = spec
  let groupPart: string | undefined
  const sep = spec.includes(':') ? spec.indexOf(':') : users.some(u => u.name === spec) ? -1 : spec.indexOf('.')
  if (sep >= 0) {
    userPart = spec.slice(0, sep)
    groupPart = spec.slice(sep + 1)
  }
  if (userPart === '') throw configError(spec, 'no user given')
  if (groupPart === '') throw configError(spec, 'no group given after the separator')

  let gid: number | undefined
  if (groupPart !== undefined) {
    if (/^\d+$/.test(groupPart)) {
      gid = parseId(groupPart)
      if (gid === undefined) throw configError(spec, `gid ${groupPart} is out of range`)
    } else {
      const group = parseGroup(db.group).find(g => g.name === groupPart)
      if (group === undefined) throw configError(spec, `unknown group "${groupPart}"`)
      gid = group.gid
    }
  }

  if (/^\d+$/.test(userPart)) {
    const uid = parseId(userPart)
    if (uid === undefined) throw configError(spec, `uid ${userPart} is out of range`)
    const entry = users.find(u => u.uid === uid)
    if (entry !== undefined) return { user: entry.name, uid, gid: gid ?? entry.gid }
    if (gid === undefined) {
      throw configError(spec, `uid ${uid} has no passwd entry: give a group (-u ${uid}.GROUP)`)
    }
    return { user: String(uid), uid, gid }
  }
  const entry = users.find(u => u.name === userPart)
  if (entry === undefined) throw configError(spec, `unknown user "${userPart}"`)
  return { user: entry.name, uid: entry.uid, gid: gid ?? entry.gid }
}

/** The process methods dropPrivileges uses (`process` by default; injectable for tests). */
export interface Credentials
  extends Pick<NodeJS.Process, 'getuid' | 'geteuid' | 'getgid' | 'getegid' | 'setuid' | 'setgid' | 'setgroups'> {
  /** process.initgroups: a Node API (POSIX) that @types/node does not declare. */
  initgroups?: (user: string | number, extraGroup: string | number) => void
}

/**
 * Become `id` for good, when running as root (real or effective uid 0):
 * supplementary groups (initgroups of `id.user` with `id.gid`; just `[gid]`
 * when the user is a bare number, i.e. has no passwd entry), then setgid, then
 * setuid, then verify: real and effective uid and gid equal the target, and,
 * unless the target is root, setuid(0) fails. Any failure throws
 * ERR_PRIVILEGES `cannot switch to USER (uid U, gid G): REASON`.
 *
 * Not root: does nothing and returns false. Returns true when it switched.
 * Configuring uid 0 keeps root, as in the original.
 */
export function dropPrivileges(id: Identity, proc: Credentials = process): boolean {
  const p = proc as Required<Credentials> // defined on every POSIX platform
  if (p.getuid() !== 0 && p.geteuid() !== 0) return false
  const fail = (reason: string, cause?: unknown): TcpproxyError =>
    new TcpproxyError('ERR_PRIVILEGES', `cannot switch to ${id.user} (uid ${id.uid}, gid ${id.gid}): ${reason}`, {
      cause,
    })
  try {
    if (/^\d+$/.test(id.user)) p.setgroups([id.gid])
    else p.initgroups(id.user, id.gid)
    p.setgid(id.gid)
    p.setuid(id.uid)
  } catch (err) {
    throw fail(errorText(err), err)
  }
  const [uid, euid, gid, egid] = [p.getuid(), p.geteuid(), p.getgid(), p.getegid()]
  if (uid !== id.uid || euid !== id.uid) throw fail(`uid is ${uid}, effective uid ${euid} after setuid`)
  if (gid !== id.gid || egid !== id.gid) throw fail(`gid is ${gid}, effective gid ${egid} after setgid`)
  if (id.uid !== 0) {
    let regained = true
    try {
      p.setuid(0)
    } catch {
      regained = false
    }
    if (regained) throw fail('root privileges could be regained with setuid(0)')
  }
  return true
}
