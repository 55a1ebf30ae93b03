/**
 * Rate-limited log lines: a limit that is hit again and again (descriptors,
 * programs, an access list refusing a client) gets one line per episode, with
 * how many were not logged since the last, instead of one per connection.
 */

/** A limit that is hit (descriptors, programs) is logged at most this often, not once per refused connection. */
const EPISODE_LOG_MS = 10_000

/** One log line per episode of a recurring condition, with how many were not logged since the last. */
export class Episodes {
  #logged = -Infinity
  #suppressed = 0

  constructor(readonly intervalMs = EPISODE_LOG_MS) {}

  /** Call `log` with the "(N more ...)" suffix now, or count this one if the last line is recent. */
  report(log: (more: string) => void): void {
    const now = performance.now()
    if (now - this.#logged < this.intervalMs) {
      this.#suppressed++
      return
    }
    const more = this.#suppressed > 0 ? ` (${this.#suppressed} more since the last report)` : ''
    this.#logged = now
    this.#suppressed = 0
    log(more)
  }
}
