/**
 * What the control socket (lib/control/server.ts) asks of the running
 * daemon: the counters, the live sessions, and the few actions an admin may
 * take. The single process answers from its own forwarder; the supervisor
 * from its workers.
 */
import type { Snapshot } from '../stats/counters.js'
import type { SessionRow } from './render.js'

export interface ControlBackend {
  /** Totals since start. */
  total(): Snapshot
  /** One row per live session. */
  sessions(): Promise<SessionRow[]>
  /** End session `id`; false when no such session is open. */
  kill(id: number): Promise<boolean>
  /** New sessions skip `server` (`HOST:PORT`); false when no service uses it. */
  disable(server: string): Promise<boolean>
  enable(server: string): Promise<boolean>
}
