/**
 * The statistics of the whole tcpproxy, in the process that serves the
 * control socket and the metrics: the supervisor, which gathers what its
 * workers ship and ask them for their sessions (SupervisedStats), or the
 * single process, which asks its own forwarder (LocalStats). Both live for
 * the life of the process, so reloads keep the counters; the supervisor
 * retires a worker's counters when it ends, so they never go down.
 */
import type { ControlBackend } from '../control/backend.js'
import type { SessionRow } from '../control/render.js'
import { Aggregator, type Snapshot } from './counters.js'
import type { AnswerMessage, AskMessage, Question, StatsMessage } from './ipc.js'
import { renderPrometheus } from './prometheus.js'
import { processFigures, sumFigures, type ProcessFigures } from './process.js'
import { answer, type Served } from './reporter.js'

/**
 * How long the supervisor waits for its workers' answers: a hung worker must
 * not hang `show sessions`, but a busy one must not make `kill session` say
 * "no such session" (1 s was too short on a loaded 2-core machine: the test
 * suite saw it).
 */
const ASK_WAIT_MS = 3000

/** What the control socket and the metrics read. */
export interface Stats {
  backend: ControlBackend
  /** GET /metrics: every counter, and the process figures of every process of this tcpproxy. */
  metrics(): string
}

const byId = (a: SessionRow, b: SessionRow): number => a.id - b.id

/** The Prometheus text of `total` and the figures of `processes`. */
function metricsText(total: Snapshot, processes: ProcessFigures): string {
  return renderPrometheus(total, { ...processes, startTimeSeconds: Math.round(performance.timeOrigin) / 1000 })
}

/** The single process: its forwarder is the one source (kept across reloads). */
export function localStats(served: Served): Stats {
  const ask = async (q: Question) => answer(served, q, performance.now())
  return {
    backend: {
      total: () => served.counters.snapshot(),
      sessions: async () => (await ask({ what: 'sessions' })).rows.sort(byId),
      kill: async session => (await ask({ what: 'kill', session })).ok,
      disable: async server => (await ask({ what: 'disable', server })).ok,
      enable: async server => (await ask({ what: 'enable', server })).ok,
    },
    metrics: () => metricsText(served.counters.snapshot(), processFigures()),
  }
}

interface Pending {
  answers: AnswerMessage[]
  /** Slots that have not answered yet. */
  waiting: Set<number>
  done: () => void
}

/** The supervisor's statistics: fed by SupervisorOptions.onMessage and onWorkerExit. */
export class SupervisedStats implements Stats {
  readonly #aggregator = new Aggregator()
  /** The last figures of each live worker, by slot. */
  readonly #figures = new Map<number, ProcessFigures>()
  /** CPU time of the workers that ended (a counter: it must not go down). */
  #retiredCpu = 0
  #lastAsk = 0
  readonly #pending = new Map<number, Pending>()
  /** Servers disabled by command, for a worker that starts later. */
  readonly #disabled = new Set<string>()
  /** The slots serving now (started, not retired): who is asked, reported yet or not. */
  readonly #serving = new Set<number>()

  /** `broadcast` sends to every worker (Supervisor.broadcast). */
  constructor(
    readonly broadcast: (m: AskMessage) => void,
    readonly waitMs = ASK_WAIT_MS,
  ) {}

  /** A worker's message (SupervisorOptions.onMessage); others' messages are left alone. */
  onMessage(slot: number, m: { type: string }): void {
    if (m.type === 'stats') {
      const s = m as StatsMessage
      this.#aggregator.update(String(slot), s.snapshot)
      this.#figures.set(slot, s.process)
    } else if (m.type === 'answer') {
      const a = m as AnswerMessage
      const p = this.#pending.get(a.id)
      if (p === undefined) return
      p.answers.push(a)
      this.#answered(p, slot)
    }
  }

  /** The worker in `slot` ended (SupervisorOptions.onWorkerExit): keep what it counted, stop waiting for it. */
  /** A worker serves in `slot` (SupervisorOptions.onWorkerStart). */
  started(slot: number): void {
    this.#serving.add(slot)
  }

  retire(slot: number): void {
    this.#serving.delete(slot)
    this.#aggregator.retire(String(slot))
    this.#retiredCpu += this.#figures.get(slot)?.cpuSecondsTotal ?? 0
    this.#figures.delete(slot)
    for (const p of this.#pending.values()) this.#answered(p, slot)
  }

  #answered(p: Pending, slot: number): void {
    p.waiting.delete(slot)
    if (p.waiting.size === 0) p.done()
  }

  /** Ask every worker that reported; answers from those that answer within waitMs. */
  async #ask(q: Question): Promise<AnswerMessage[]> {
    const id = ++this.#lastAsk
    const waiting = new Set([...this.#serving, ...this.#figures.keys()])
    if (waiting.size === 0) return []
    const answers: AnswerMessage[] = []
    let timer: NodeJS.Timeout | undefined
    await new Promise<void>(resolve => {
      timer = setTimeout(resolve, this.waitMs)
      this.#pending.set(id, { answers, waiting, done: resolve })
      this.broadcast({ type: 'ask', id, ...q })
    })
    clearTimeout(timer)
    this.#pending.delete(id)
    return answers
  }

  readonly backend: ControlBackend = {
    total: () => this.#aggregator.total(),
    sessions: async () => (await this.#ask({ what: 'sessions' })).flatMap(a => a.rows).sort(byId),
    kill: async session => (await this.#ask({ what: 'kill', session })).some(a => a.ok),
    disable: async server => {
      const ok = (await this.#ask({ what: 'disable', server })).some(a => a.ok)
      if (ok) this.#disabled.add(server)
      return ok
    },
    enable: async server => {
      this.#disabled.delete(server)
      return (await this.#ask({ what: 'enable', server })).some(a => a.ok)
    },
  }

  /** The servers disabled by command, for a worker that starts (a replacement disables them before it serves: WorkerInit.start). */
  get disabled(): string[] {
    return [...this.#disabled]
  }

  metrics(): string {
    const all = sumFigures([processFigures(), ...this.#figures.values()])
    return metricsText(this.#aggregator.total(), { ...all, cpuSecondsTotal: all.cpuSecondsTotal + this.#retiredCpu })
  }
}
