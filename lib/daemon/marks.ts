/**
 * Server health marks shared by the workers (#17). Each worker connects on
 * its own and marks servers in its own table (lib/server/policy.ts); it
 * sends each transition to the supervisor instead of logging it. The
 * supervisor keeps a table per service too: a transition that changes it
 * is logged (so exactly once, even when two workers see the same failure)
 * and sent to every worker, which applies it silently. A mark carries no
 * time: each process counts fail-timeout on its own clock, so the workers
 * disagree by the IPC delay only.
 */
import type { ResolvedService } from '../config/resolve.js'
import type { Logger } from '../log/logger.js'
import { Health, transitionLog, type Transition } from '../server/health.js'
import { serviceKey } from '../config/resolve.js'
import type { FromWorker, ToWorker } from './worker.js'

export class SharedMarks {
  #byService = new Map<string, { health: Health; maxFails: number; failMs: number }>()
  /** The last down transition of each server (by service), for a worker that starts later. */
  #down = new Map<string, Map<string, Transition>>()

  constructor(
    readonly logger: Logger,
    readonly broadcast: (m: ToWorker) => void,
  ) {}

  /** The services in use (start, reload): a service's marks stay unless its max-fails or fail-timeout changed. */
  setServices(services: readonly ResolvedService[]): void {
    const next = new Map<string, { health: Health; maxFails: number; failMs: number }>()
    for (const s of services) {
      const key = serviceKey(s)
      const kept = this.#byService.get(key)
      const same = kept !== undefined && kept.maxFails === s.maxFails && kept.failMs === s.timeouts.failMs
      next.set(key, same ? kept : { health: new Health({ maxFails: s.maxFails, failTimeoutMs: s.timeouts.failMs }), maxFails: s.maxFails, failMs: s.timeouts.failMs })
    }
    this.#byService = next
  }

  /** A worker's message (SupervisorOptions.onMessage): server marks are applied, logged once and shared. */
  onMessage(m: FromWorker): void {
    if (m.type !== 'server-mark') return
    const table = this.#byService.get(m.service)
    if (table?.health.apply(m.transition, performance.now()) == null) return
    this.logger.log(transitionLog(m.transition))
    const down = this.#down.get(m.service) ?? new Map<string, Transition>()
    if (m.transition.state === 'down') down.set(m.transition.server, m.transition)
    else down.delete(m.transition.server)
    this.#down.set(m.service, down)
    this.broadcast({ type: 'server-mark', service: m.service, transition: m.transition })
  }

  /**
   * The marks still in force, for a worker that starts (a replacement): it
   * applies them before it serves (WorkerInit.start), so it does not pay
   * a connect timeout to learn what the others know.
   */
  inForce(): { service: string; transition: Transition }[] {
    const now = performance.now()
    const marks: { service: string; transition: Transition }[] = []
    for (const [service, down] of this.#down) {
      const table = this.#byService.get(service)
      for (const t of down.values()) if (table !== undefined && !table.health.isUp(t.server, now)) marks.push({ service, transition: t })
    }
    return marks
  }
}
