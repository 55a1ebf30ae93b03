/**
 * The global settings are read when the daemon starts (the supervisor's
 * pidfile, account, control socket, metrics listener, workers and their
 * limits are made from them); a reload puts new services in place and
 * keeps these. Which of them a re-read file sets otherwise than the running
 * daemon has them, by keyword, so that the reload says so instead of
 * ignoring the edit without a word.
 */
import type { GlobalSettings } from './config.js'

/** Each global setting and the keyword that sets it (user: also uid, gid). */
export const GLOBAL_KEYWORDS: Readonly<Record<keyof GlobalSettings, string>> = Object.freeze({
  envPrefix: 'setenv',
  logname: 'logname',
  standalone: 'standalone',
  pidfile: 'pidfile',
  user: 'user',
  maxConnections: 'max-connections',
  maxPrograms: 'max-programs',
  workers: 'workers',
  metrics: 'metrics',
  control: 'control',
  controlGroup: 'control-group',
})

/**
 * The keywords of the settings `file` has otherwise than `running`, in the
 * order above. `changesUser` false: a daemon not started as root serves as
 * itself, and a restart would not apply a new `user` either.
 */
export function startupOnlyChanges(running: GlobalSettings, file: GlobalSettings, changesUser: boolean): string[] {
  const changed: string[] = []
  for (const [key, word] of Object.entries(GLOBAL_KEYWORDS) as Array<[keyof GlobalSettings, string]>) {
    if (key === 'user' && !changesUser) continue
    if (JSON.stringify(running[key]) !== JSON.stringify(file[key])) changed.push(word)
  }
  return changed
}
