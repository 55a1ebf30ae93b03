/**
 * The bound on ACP and handler processes at once (max-programs), and a
 * worker's share of any limit: each of N workers takes ceil(limit / N),
 * since they do not count each other's sessions.
 */
import { serviceKey, type ResolvedService } from '../config/resolve.js'
import type { Logger } from '../log/logger.js'
import { DEFAULT_MAX_PROGRAMS, type ProgramSlots } from '../session/context.js'
import { Episodes } from './episodes.js'

/** This worker's part of `limit` (null: no limit). */
export function workerShare(limit: number | null, workers: number): number | null {
  return limit === null ? null : Math.ceil(limit / workers)
}

/** A limit as the log names it: with the worker's share when there are several. */
export function limitText(text: string, share: number, workers: number): string {
  return workers === 1 ? text : `${text}, ${share} in this worker`
}

/**
 * A connection that would start a program beyond the bound is closed, and
 * the log gets one line per episode.
 */
export class ProgramLimit implements ProgramSlots {
  #running = 0
  readonly #episodes = new Episodes()

  constructor(
    /** ProgramContext.maxPrograms: undefined is the default, null no limit. */
    readonly max: number | null | undefined,
    readonly workers: number,
    readonly log: Logger,
    readonly denied: (service: string) => void,
  ) {}

  take(clientIp: string, service: ResolvedService): boolean {
    const max = this.max === undefined ? DEFAULT_MAX_PROGRAMS : this.max
    const share = workerShare(max, this.workers)
    if (share === null || this.#running < share) {
      this.#running++
      return true
    }
    this.denied(serviceKey(service))
    this.#episodes.report(more => {
      const limit = limitText(`${max}`, share, this.workers)
      this.log.log({ tag: '-ERR', event: 'limit', text: `too many programs running (max-programs ${limit}): connection refused, client= ${clientIp}${more}` })
    })
    return false
  }

  release(): void {
    this.#running--
  }
}
