/**
 * The worker's side of the statistics: it ships its counters to the
 * supervisor at most once a second and only when they changed (a snapshot
 * of many services is not free, lib/stats/counters.ts), at least every
 * HEARTBEAT_MS for the process figures, and once more when it stops; and it
 * answers the supervisor's questions from its forwarder. The single process
 * asks its forwarder the same way (lib/stats/collector.ts).
 */
import type { SessionRow } from '../control/render.js'
import type { Counters } from './counters.js'
import type { AnswerMessage, Question, StatsMessage } from './ipc.js'
import { processFigures, type ProcessFigures } from './process.js'

const INTERVAL_MS = 1000
const HEARTBEAT_MS = 10_000

/** What the statistics need of a forwarder (lib/server/forwarder.ts). */
export interface Served {
  readonly counters: Counters
  sessionRows(nowMs: number): SessionRow[]
  killSession(id: number): boolean
  disableServer(server: string): boolean
  enableServer(server: string): boolean
}

/** The answer of one process to a question: its rows, or whether it did it. */
export function answer(served: Served, q: Question, nowMs: number): Omit<AnswerMessage, 'type' | 'id'> {
  switch (q.what) {
    case 'sessions':
      return { rows: served.sessionRows(nowMs), ok: true }
    case 'kill':
      return { rows: [], ok: served.killSession(q.session) }
    case 'disable':
      return { rows: [], ok: served.disableServer(q.server) }
    case 'enable':
      return { rows: [], ok: served.enableServer(q.server) }
  }
}

export class Reporter {
  #last = ''
  #lastSent = 0
  readonly #timer: NodeJS.Timeout

  constructor(
    readonly served: Served,
    readonly send: (m: StatsMessage) => void,
    readonly figures: () => ProcessFigures = processFigures,
    intervalMs = INTERVAL_MS,
    readonly heartbeatMs = HEARTBEAT_MS,
  ) {
    this.#timer = setInterval(() => this.report(false), intervalMs).unref()
    this.report(true)
  }

  /** Ship the counters if they changed, or the heartbeat is due, or `always`. */
  report(always: boolean): void {
    const snapshot = this.served.counters.snapshot()
    const text = JSON.stringify(snapshot)
    const now = performance.now()
    if (!always && text === this.#last && now - this.#lastSent < this.heartbeatMs) return
    this.#last = text
    this.#lastSent = now
    this.send({ type: 'stats', snapshot, process: this.figures() })
  }

  /** The last report (the worker stops). */
  stop(): void {
    clearInterval(this.#timer)
    this.report(true)
  }
}
