/**
 * What workers and the supervisor say to each other for the statistics
 * (members of FromWorker and ToWorker in lib/daemon/worker.ts): a worker
 * ships its counters now and then; the supervisor asks every worker for
 * its sessions, or to kill one, or to disable or enable a server, and
 * gathers the answers (lib/stats/collector.ts).
 */
import type { SessionRow } from '../control/render.js'
import type { Snapshot } from './counters.js'
import type { ProcessFigures } from './process.js'

/** Worker to supervisor: its counters and its process figures. */
export interface StatsMessage {
  type: 'stats'
  snapshot: Snapshot
  process: ProcessFigures
}

export type Question = { what: 'sessions' } | { what: 'kill'; session: number } | { what: 'disable' | 'enable'; server: string }

/** Supervisor to every worker; each answers with the same id. */
export type AskMessage = { type: 'ask'; id: number } & Question

/** Worker to supervisor: its rows (sessions), or whether it did it (kill, disable, enable). */
export interface AnswerMessage {
  type: 'answer'
  id: number
  rows: SessionRow[]
  ok: boolean
}
