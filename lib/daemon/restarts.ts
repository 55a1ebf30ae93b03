/**
 * How soon a worker that died is replaced: at once-ish (restartDelayMs)
 * after a worker that lived, then doubling for each one in a row that died
 * young, up to 2^MAX_BACKOFF_STEPS times the delay. A worker that cannot
 * start (a broken handler, a full disk) never makes the supervisor spin.
 * Pure: the caller passes the clock.
 */

/** A worker that lived this long was fine: its slot's back-off starts again. */
export const STABLE_MS = 10_000
/** The longest wait before a replacement: 2^MAX_BACKOFF_STEPS × restartDelayMs. */
export const MAX_BACKOFF_STEPS = 5

export class Restarts {
  readonly #startedAt: number[]
  readonly #quickDeaths: number[]

  constructor(
    slots: number,
    readonly delayMs = 1000,
    readonly stableMs = STABLE_MS,
  ) {
    this.#startedAt = Array.from({ length: slots }, () => 0)
    this.#quickDeaths = Array.from({ length: slots }, () => 0)
  }

  /** A process was started in slot `i` at `now`. */
  started(i: number, now: number): void {
    this.#startedAt[i] = now
  }

  /** The process in slot `i` died at `now`: how long to wait before its replacement. */
  died(i: number, now: number): number {
    const young = now - (this.#startedAt[i] as number) < this.stableMs
    const deaths = young ? (this.#quickDeaths[i] as number) + 1 : 0
    this.#quickDeaths[i] = deaths
    return this.delayMs * 2 ** Math.min(Math.max(deaths - 1, 0), MAX_BACKOFF_STEPS)
  }
}
