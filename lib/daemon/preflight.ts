/**
 * What would fail per connection, found at start-up (and before a reload
 * takes effect): a handler or access control program that the serving user
 * cannot execute, a `writefile` directory that user cannot write, a pidfile
 * directory that does not exist. Started as root the serving user is
 * another one (`user`, default nobody), so "can I?" is not the question:
 * the checks apply the kernel's rules for that user to what stat(2) says
 * (uid, gid and groups against each file's owner, group and mode bits, and
 * the search permission of every directory on the way). POSIX ACLs and
 * capabilities other than root's are not considered.
 *
 * The rules are pure functions over stat results (`Inode`); `checkServing`
 * feeds them the file system's.
 */
import { realpathSync, statSync } from 'node:fs'
import { userInfo } from 'node:os'
import { dirname, resolve } from 'node:path'
import { ConfigError, errnoText } from '../errors.js'
import type { CliOptions } from '../cli/options.js'
import type { Config, ServiceDef } from '../config/config.js'
import { parseFacility } from '../log/open.js'
import { DEFAULT_CONFIG_FILE } from '../cli/settings.js'
import { DEFAULT_USER, loadUserDb, resolveIdentity, supplementaryGroups, type Identity } from './privileges.js'

/** The user programs run as and dump files are written by. */
export interface Account {
  name: string
  uid: number
  gid: number
  /** Supplementary groups (the primary gid need not be listed). */
  groups: readonly number[]
}

/** What the checks need of a stat(2) result. */
export interface Inode {
  mode: number
  uid: number
  gid: number
  kind: 'file' | 'directory' | 'other'
}

/** stat(2) of a path (following symbolic links), or the errno code of its failure. */
export type StatFn = (path: string) => Inode | string

const WRITE = 2
const EXEC = 1

/**
 * Linux's permission check of one access for `who`: the owner bits when
 * `who` owns the file, else the group bits when the file's group is one of
 * `who`'s, else the other bits. Root may read and write anything, search
 * any directory, and execute a file that has any execute bit.
 */
export function permits(who: Account, st: Inode, want: number): boolean {
  if (who.uid === 0) return want !== EXEC || st.kind === 'directory' || (st.mode & 0o111) !== 0
  const shift = who.uid === st.uid ? 6 : who.gid === st.gid || who.groups.includes(st.gid) ? 3 : 0
  return ((st.mode >> shift) & want) === want
}

/** `mode 0700, owner 0:0`: what an admin needs to see to fix it. */
const modeText = (st: Inode): string => `mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}, owner ${st.uid}:${st.gid}`

/** Every directory that must be searched to reach the absolute `path`: `/`, `/a`, `/a/b` for `/a/b/c`. */
function directoriesAbove(path: string): string[] {
  const out = [dirname(path)]
  while (out[0] !== '/') out.unshift(dirname(out[0] as string))
  return out
}

/** Why `who` cannot reach `path` (a directory above it is missing or not searchable), or null. */
function unreachable(who: Account, path: string, stat: StatFn): string | null {
  for (const dir of directoriesAbove(path)) {
    const st = stat(dir)
    if (typeof st === 'string') return `${dir}: ${errnoText(st)}`
    if (st.kind !== 'directory') return `${dir} is not a directory`
    if (!permits(who, st, EXEC)) return `directory ${dir} is not searchable (${modeText(st)})`
  }
  return null
}

/** Why `who` cannot execute the program at the absolute `path` (each of `paths`: as written and resolved), or null. */
export function programProblem(who: Account, paths: readonly string[], stat: StatFn): string | null {
  for (const path of paths) {
    const above = unreachable(who, path, stat)
    if (above !== null) return above
  }
  const path = paths[0] as string
  const st = stat(path)
  if (typeof st === 'string') return errnoText(st)
  if (st.kind !== 'file') return 'not a regular file'
  if (!permits(who, st, EXEC)) return `not executable (${modeText(st)})`
  return null
}

/** Why `who` cannot create files in the directory `dir` (absolute), or null. */
export function directoryProblem(who: Account, dir: string, stat: StatFn): string | null {
  const above = dir === '/' ? null : unreachable(who, dir, stat)
  if (above !== null) return above
  const st = stat(dir)
  if (typeof st === 'string') return `${dir}: ${errnoText(st)}`
  if (st.kind !== 'directory') return `${dir} is not a directory`
  if (!permits(who, st, WRITE | EXEC)) return `directory ${dir} is not writable (${modeText(st)})`
  return null
}

/** stat(2) of the file system, as an Inode or an errno code. */
export function fsStat(path: string): Inode | string {
  try {
    const st = statSync(path)
    return { mode: st.mode, uid: st.uid, gid: st.gid, kind: st.isFile() ? 'file' : st.isDirectory() ? 'directory' : 'other' }
  } catch (err) {
    // stat(2) failures always carry an errno code.
    return (err as NodeJS.ErrnoException).code as string
  }
}

/** `path` with its symbolic links resolved (as root may see them), or null when it cannot be. */
function realpath(path: string): string | null {
  try {
    return realpathSync(path)
  } catch {
    return null
  }
}

/** The process's ids: defined on every POSIX platform, the only ones tcpproxy runs on. */
const posix = process as Required<Pick<NodeJS.Process, 'getuid' | 'getgid' | 'getgroups'>>

/**
 * The account that serves: `identity` (started as root), else the
 * process's own user.
 */
export function servingAccount(identity: Identity | null): Account {
  if (identity !== null) {
    const groups = /^\d+$/.test(identity.user) ? [identity.gid] : supplementaryGroups(identity.user, loadUserDb().group)
    return { name: identity.user, uid: identity.uid, gid: identity.gid, groups }
  }
  return { name: userInfo().username, uid: posix.getuid(), gid: posix.getgid(), groups: posix.getgroups() }
}

/** `FILE:LINE: service IFACE port P: ...` for a file's service, `OPTION: ...` for the command line's. */
function serviceError(s: ServiceDef, option: string, reason: string): ConfigError {
  if (s.source.line > 0) return new ConfigError(s.source.file, s.source.line, `service ${s.ifaceText} port ${s.port}: ${reason}`)
  return new ConfigError(option, 0, reason)
}

/**
 * Refuse services whose programs `who` cannot execute or whose dump
 * directory `who` cannot write: one ConfigError naming the file and line
 * (or option), the program or directory, the user, and why.
 */
export function checkServices(services: readonly ServiceDef[], who: Account, stat: StatFn = fsStat, cwd = process.cwd()): void {
  const user = `user ${who.name} (uid ${who.uid})`
  for (const s of services) {
    const programs: Array<[string, string, readonly string[] | null]> = [
      ['handler', 'server argument', s.exec],
      ['access control program', 'option -a', s.acp],
    ]
    for (const [what, option, cmd] of programs) {
      if (cmd === null) continue
      const path = resolve(cwd, cmd[0] as string)
      const real = realpath(path)
      const problem = programProblem(who, real === null || real === path ? [path] : [path, real], stat)
      if (problem !== null) throw serviceError(s, option, `${what} ${cmd[0]} cannot be run by ${user}: ${problem}`)
    }
    if (s.writefile !== null) {
      const dir = dirname(resolve(cwd, s.writefile))
      const problem = directoryProblem(who, dir, stat)
      if (problem !== null) throw serviceError(s, 'option -w', `writefile ${s.writefile}: ${user} cannot create its files: ${problem}`)
    }
  }
}

/** Refuse a pidfile whose directory the starting process cannot write (it writes the file before giving up root). */
export function checkPidfile(pidfile: string | null, who: Account, stat: StatFn = fsStat, cwd = process.cwd()): void {
  if (pidfile === null) return
  const problem = directoryProblem(who, dirname(resolve(cwd, pidfile)), stat)
  if (problem !== null) throw new ConfigError(`pidfile ${pidfile}`, 0, `${who.name} cannot write it: ${problem}`)
}

/**
 * Everything that can be known before serving, in the order an admin fixes
 * it: the syslog facility, the user (a name that does not exist is an
 * error even where it is not used, not root), the pidfile's directory, and
 * each service's programs and dump directory for the serving user.
 * Throws a one-line TcpproxyError (exit status 2 for a configuration).
 * Returns the identity to take on: the configured user's when root, else null.
 */
export function checkStartup(o: CliOptions, config: Config, services: readonly ServiceDef[], uid = posix.getuid()): Identity | null {
  if (o.syslogFacility !== null) parseFacility(o.syslogFacility)
  const root = uid === 0
  let identity: Identity | null = null
  try {
    if (root || config.globals.user !== null) identity = resolveIdentity(config.globals.user ?? DEFAULT_USER)
  } catch (err) {
    // The user comes from -u, or else from the file.
    throw new ConfigError(o.user !== null ? 'option -u' : (o.config ?? DEFAULT_CONFIG_FILE), 0, (err as Error).message)
  }
  const self = servingAccount(null)
  checkPidfile(config.globals.pidfile, self)
  const serving = root ? identity : null
  checkServices(services, serving === null ? self : servingAccount(serving))
  return serving
}
