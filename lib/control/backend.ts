/**
 * What the control socket (lib/control/server.ts) asks of the running
 * tcpproxy: the counters aggregated over every worker and reload, the live
 * sessions of every worker, and the few actions an admin can take. The
 * supervisor (or the single process) implements it in lib/stats/collector.ts;
 * the control socket only codes against this interface, so it is tested
 * with a plain object.
 */
import type { SessionRow } from './render.js'
import type { Snapshot } from '../stats/counters.js'

export interface ControlBackend {
  /** Counters since start, summed over live and retired workers (`show services|servers|stats`). */
  total(): Snapshot
  /** One row per live session of every worker (`show sessions`), sorted by id. */
  sessions(): Promise<SessionRow[]>
  /** `kill session ID`: true when a worker had that session and ended it (`closed-by= killed`). */
  kill(id: number): Promise<boolean>
  /** `disable server HOST:PORT`: new sessions skip it; false when no service has that server. */
  disable(server: string): Promise<boolean>
  /** `enable server HOST:PORT`: undo `disable`; false when no service has that server. */
  enable(server: string): Promise<boolean>
}
