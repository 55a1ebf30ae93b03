/**
 * The supervisor of worker processes. Started as root, it keeps root for
 * what needs it — binding ports (also the new ones a reload brings), the
 * pidfile in a root-owned directory — and runs no relay, handler or ACP
 * itself: forked workers (lib/daemon/worker.ts) drop to the configured user and
 * serve the listeners this process binds and hands over. With `--workers N`
 * it runs N workers, root or not, to use N cores.
 *
 * Every worker is given the same listening sockets (the descriptor is passed
 * over IPC, not a copy of the port), so the kernel spreads the accepts over
 * the workers that wait on them; nothing is routed through this process.
 * That is node:cluster's SCHED_NONE, kept on our own IPC protocol because
 * the binding must stay here, as root, with the reload's all-or-nothing
 * listener changes (cluster binds when a worker asks, one worker at a time).
 *
 * This process keeps a descriptor of every listening socket too, which it
 * never polls (so it accepts nothing): the ports stay bound while no worker
 * runs, `fuser -k -n tcp PORT` ends the supervisor with the workers, and a
 * worker that dies is replaced with the listeners from here. Every message
 * to a worker has an error path: a worker dying in the middle of a reload or
 * a hand-over is replaced like any other, and the listener bookkeeping
 * (#keys, #held) stays what is bound.
 */
import { fork, type ChildProcess } from 'node:child_process'
import type { Server, Socket } from 'node:net'
import { closeSync } from 'node:fs'
import type { ListenSpec } from '../config/address.js'
import { TcpproxyError, errorText } from '../errors.js'
import { bindListener, closeListener, listenerOnFd, parseKey, reconcileListeners } from '../server/listeners.js'
import type { Logger } from '../log/logger.js'
import { fdOf, nativeAddon } from '../native/addon.js'
import { relayExecArgv } from './node-flags.js'
import { Restarts } from './restarts.js'
import { secondsText } from '../text.js'
import { serviceData, type ResolvedService } from '../config/resolve.js'
import { planListeners } from '../server/selector.js'
import type { FromWorker, ToWorker, WorkerInit } from './worker.js'

export interface SupervisorOptions {
  /** The workers' start parameters, without the services and the worker count. */
  init: Omit<WorkerInit, 'type' | 'services' | 'workers' | 'index'>
  logger: Logger
  /** The module a worker runs (dist/worker-main.js). */
  workerPath: string
  /** How many workers share the listeners. */
  workers: number
  /** How long to wait before replacing a worker that died; doubled for each quick death in a row. */
  restartDelayMs?: number
  /** A worker that lived this long was fine: its slot's back-off starts again (restarts.ts STABLE_MS). */
  stableMs?: number
  /** What a serving worker says beyond the hand-over (counters, marks, rows): for the features that need every worker's view. */
  onMessage?: (slot: number, m: FromWorker) => void
  /** The worker in `slot` is gone (before its replacement starts); a worker serves in `slot` (at start and after a replacement). */
  onWorkerExit?: (slot: number) => void
  onWorkerStart?: (slot: number) => void
}

/** A worker that fails (exits with a status) this soon after a reload is taken to have failed on the new configuration. */
const PROBATION_MS = 10_000

/** A worker that exited (or whose channel closed) while we talked to it: its replacement gets everything. */
class WorkerGone extends TcpproxyError {
  constructor() {
    super('ERR_RUNTIME', 'the worker process exited')
  }
}

export class Supervisor {
  readonly #o: SupervisorOptions
  readonly #count: number
  #services: readonly ResolvedService[] = []
  /** The services before the last reload, while that reload is on probation; null otherwise. */
  #previous: { services: readonly ResolvedService[]; at: number } | null = null
  /** One slot per worker: the process serving all #keys, or null while it is being (re)started. */
  readonly #workers: (ChildProcess | null)[]
  /** Exit status per slot of the process last started in it. */
  readonly #exited: Promise<number | string>[]
  readonly #restarts: Restarts
  /** Listener keys every serving worker has. */
  #keys: string[] = []
  /**
   * This process's own descriptor of each listener (with the addon): never
   * polled, so it accepts nothing, but the port is ours too: fuser -k finds
   * and ends this process as well as the workers, and a new worker is
   * handed the listener from here.
   */
  readonly #held = new Map<string, number>()
  #stopping = false
  /** Start, reload and restarts run one at a time, so listener changes never interleave. */
  #queue: Promise<unknown> = Promise.resolve()

  constructor(options: SupervisorOptions) {
    this.#o = options
    this.#count = options.workers
    this.#workers = Array.from({ length: this.#count }, () => null)
    this.#exited = this.#workers.map(() => Promise.resolve(0))
    this.#restarts = new Restarts(this.#count, options.restartDelayMs, options.stableMs)
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(op)
    this.#queue = run.catch(() => {})
    return run
  }

  /**
   * Start the workers for `services` and hand them every listener. Throws
   * ERR_BIND (nothing left running) when a port cannot be bound, or
   * ERR_PRIVILEGES when a worker cannot become the configured user.
   */
  start(services: readonly ResolvedService[]): Promise<void> {
    return this.#serial(async () => {
      this.#services = services
      const started: ChildProcess[] = []
      try {
        for (let i = 0; i < this.#count; i++) started.push(await this.#spawn(i))
        await this.#reconcile(planListeners(services), started)
      } catch (err) {
        for (const w of started) w.kill('SIGKILL')
        throw err
      }
      started.forEach((w, i) => this.#serve(i, w))
    })
  }

  /**
   * New services (SIGHUP): every worker serves new connections with them,
   * listeners are re-bound where they changed. On a bind failure the old
   * configuration stays in force, whole, and the error is thrown. A worker
   * that fails within PROBATION_MS of it rolls the reload back.
   */
  reload(services: readonly ResolvedService[]): Promise<void> {
    return this.#serial(async () => {
      await this.#reconcile(planListeners(services), this.#live())
      this.#previous = { services: this.#services, at: Date.now() }
      this.#put(services)
    })
  }

  /** Serve new connections with `services` in every live worker (a dead one's replacement starts with them). */
  #put(services: readonly ResolvedService[]): void {
    this.#services = services
    for (const w of this.#live()) this.#send(w, { type: 'services', services: services.map(serviceData) })
  }

  /** Stop: the workers drain for up to `graceMs` (0 = now). Resolves with the first failing exit status, or 0. */
  async stop(graceMs: number): Promise<number | string> {
    this.#stopping = true
    // New connections are refused from the moment the workers stop listening.
    for (const key of this.#keys) this.#release(key)
    for (const w of this.#live()) {
      if (graceMs === 0) w.kill('SIGKILL')
      else this.#send(w, { type: 'stop', graceMs })
    }
    const statuses = await Promise.all(this.#exited)
    return statuses.find(s => s !== 0) ?? 0
  }

  /** The workers serving now. */
  #live(): ChildProcess[] {
    return this.#workers.filter((w): w is ChildProcess => w !== null && w.exitCode === null && w.signalCode === null)
  }

  /** Fork a worker for slot `i` and wait until it is ready to adopt listeners. */
  async #spawn(i: number): Promise<ChildProcess> {
    // Its own process group: a Ctrl-C or a signal to the group is the
    // supervisor's to handle, the worker acts on messages only.
    const worker = fork(this.#o.workerPath, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      detached: true,
      execArgv: relayExecArgv(process.execArgv),
    })
    this.#restarts.started(i, Date.now())
    // Sends report their failures to their callbacks (#send); the exit is
    // what counts, and its handler takes over.
    worker.on('error', () => {})
    this.#exited[i] = new Promise(resolve => worker.once('exit', (code, signal) => resolve(code ?? (signal as string))))
    const failed = new Promise<never>((_, reject) => {
      worker.once('message', (m: FromWorker) => {
        // (The worker's 'error' report is the unreachable setuid failure, see worker.ts.)
        /* c8 ignore next */
        if (m.type === 'error') reject(new TcpproxyError('ERR_PRIVILEGES', m.message))
      })
      worker.once('exit', () => reject(new TcpproxyError('ERR_RUNTIME', 'the worker process exited during start-up')))
    })
    failed.catch(() => {})
    const init: WorkerInit = { ...this.#o.init, type: 'init', services: this.#services.map(serviceData), workers: this.#count, index: i }
    // A worker that fails here has exited (or is exiting) on its own.
    await Promise.race([this.#expect(worker, m => m.type === 'ready', init), failed])
    return worker
  }

  /** Slot `i` is served by `worker` from now on; it is replaced when it dies. */
  #serve(i: number, worker: ChildProcess): void {
    // A replacement that finished starting after stop() began (stop waits for
    // every slot's exit): it has no session yet.
    /* c8 ignore next */
    if (this.#stopping) worker.kill('SIGKILL')
    this.#workers[i] = worker
    worker.on('message', (m: FromWorker) => this.#o.onMessage?.(i, m))
    worker.once('exit', (code, signal) => void this.#onWorkerExit(i, code ?? signal))
    this.#o.onWorkerStart?.(i)
  }

  /** Send `m` to every serving worker (one that is gone gets its replacement's start state instead). */
  broadcast(m: ToWorker): void {
    for (const worker of this.#live()) this.#send(worker, m)
  }

  /**
   * Make the listeners of `workers` match `wanted`; each new one goes to
   * every worker. A worker that dies meanwhile is skipped: its replacement
   * is handed every listener in #keys, which stays true whatever happens.
   */
  async #reconcile(wanted: ListenSpec[], workers: ChildProcess[]): Promise<void> {
    await reconcileListeners(this.#keys, wanted, {
      bind: async (key, spec) => {
        const server = await bindListener(spec)
        try {
          this.#hold(key, server)
          for (const w of workers) await this.#unlessGone(this.#handOver(w, key, server))
          /* c8 ignore start */
        } catch (err) {
          // #handOver fails only with WorkerGone, which is absorbed; dupFd()
          // only when this process is out of descriptors.
          this.#release(key)
          throw err
          /* c8 ignore stop */
        } finally {
          await closeListener(server)
        }
        this.#keys.push(key)
      },
      unbind: async key => {
        // Ours first: once the workers have closed theirs, the port refuses.
        this.#release(key)
        for (const w of workers) await this.#unlessGone(this.#expect(w, m => m.type === 'unlistened' && m.key === key, { type: 'unlisten', key }))
        this.#keys = this.#keys.filter(k => k !== key)
      },
    })
  }

  /** Keep our own descriptor of a new listener (see #held). */
  #hold(key: string, server: Server): void {
    const addon = nativeAddon()
    // Without the addon only the workers hold the ports (a new worker
    // borrows them from a live one, see #listener).
    if (addon === undefined) return
    this.#held.set(key, addon.dupFd(fdOf(server)))
  }

  #release(key: string): void {
    const fd = this.#held.get(key)
    this.#held.delete(key)
    // (Without the addon nothing is held.)
    if (fd !== undefined) closeSync(fd)
  }

  /**
   * Wait for `step`, an exchange with a worker (#expect, #handOver), which
   * fails only with WorkerGone: a worker gone meanwhile is not an error, it
   * is replaced.
   */
  async #unlessGone(step: Promise<unknown>): Promise<void> {
    await step.catch(() => {})
  }

  /**
   * Pass a bound listener to a worker. One accepted by this process in the
   * instant before the worker took over is passed on, not dropped; the
   * caller closes this process's copy: the supervisor never serves
   * connections.
   */
  async #handOver(worker: ChildProcess, key: string, server: Server): Promise<void> {
    // Only in the microseconds between binding (or borrowing) and the
    // worker's adoption, which no test can aim at.
    /* c8 ignore next */
    const pass = (s: Socket): void => void worker.send({ type: 'connection' } satisfies ToWorker, s, err => err && s.destroy())
    server.on('connection', pass)
    try {
      await this.#expect(worker, m => m.type === 'adopted' && m.key === key, { type: 'listen', key }, server)
    } finally {
      server.off('connection', pass)
    }
  }

  /** Send `m` (a worker that is gone does not get it: its exit handler replaces it). */
  // The default: a 'services' or 'stop' message to a worker whose channel
  // closed in the instant before its exit was seen, which no test can aim at.
  /* c8 ignore next */
  #send(worker: ChildProcess, m: ToWorker, handle?: Server, onError: (err: Error) => void = () => {}): void {
    worker.send(m, handle as never, err => err && onError(err))
  }

  /** Send `m` and wait for the worker's answer matching `match`; resolves with the handle that came with it. */
  #expect(worker: ChildProcess, match: (m: FromWorker) => boolean, m: ToWorker, handle?: Server): Promise<Server | undefined> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        worker.off('message', onMessage)
        worker.off('exit', onGone)
      }
      const onMessage = (reply: FromWorker, got?: Server): void => {
        // Answers come in order, one request at a time: a mismatch is only defensive.
        /* c8 ignore next */
        if (!match(reply)) return
        done()
        resolve(got)
      }
      const onGone = (): void => {
        done()
        reject(new WorkerGone())
      }
      worker.on('message', onMessage)
      worker.once('exit', onGone)
      this.#send(worker, m, handle, onGone)
    })
  }

  /**
   * The listener `key` for a new worker: from our own descriptor; without
   * the addon, lent by a serving worker (the socket stays bound and
   * accepting all along), or bound anew when no worker is left.
   */
  async #listener(key: string): Promise<Server> {
    const fd = this.#held.get(key)
    if (fd !== undefined) return listenerOnFd((nativeAddon() as NonNullable<ReturnType<typeof nativeAddon>>).dupFd(fd))
    const lender = this.#live()[0]
    if (lender === undefined) return bindListener(parseKey(key))
    const lent = await this.#expect(lender, m => m.type === 'lent' && m.key === key, { type: 'lend', key })
    return lent as Server
  }

  /**
   * A worker that dies on its own is replaced, with every listener, after a
   * delay that doubles with each worker of the slot that died young (a
   * worker that cannot start never makes this spin). One that fails (exits
   * with a status) within PROBATION_MS of a reload takes the reload back
   * with it.
   */
  async #onWorkerExit(i: number, status: number | string | null): Promise<void> {
    this.#workers[i] = null
    this.#o.onWorkerExit?.(i)
    if (this.#stopping) return
    const log = this.#o.logger
    const now = Date.now()
    const delay = this.#restarts.died(i, now)
    log.log({ tag: '-ERR', event: 'worker-exit', text: `worker process ended (${status}), starting a new one in ${secondsText(delay)}` })
    // A crash (an exit status, not a signal: a kill says nothing about the configuration).
    const previous = this.#previous
    if (previous !== null && typeof status === 'number' && now - previous.at < PROBATION_MS) {
      this.#previous = null
      await this.#serial(() => this.#rollBack(previous.services))
    }
    await new Promise(resolve => setTimeout(resolve, delay))
    // Stopped during the delay.
    /* c8 ignore next */
    if (this.#stopping) return
    try {
      await this.#serial(async () => {
        const worker = await this.#spawn(i)
        try {
          for (const key of this.#keys) {
            const server = await this.#listener(key)
            try {
              await this.#handOver(worker, key, server)
            } finally {
              await closeListener(server)
            }
          }
          /* c8 ignore start */
        } catch (err) {
          // The new worker dying in its own hand-over, or (without the addon)
          // the port taken while no worker held it: moments no test can aim at.
          worker.kill('SIGKILL')
          throw err
        }
        /* c8 ignore stop */
        this.#serve(i, worker)
      })
    } catch (err) {
      log.log({ tag: '-ERR', event: 'worker-exit', text: `cannot start a new worker: ${errorText(err)}` })
      void this.#onWorkerExit(i, 'start failed')
    }
  }

  /** Back to `services` after a reload a worker did not survive: listeners and all. */
  async #rollBack(services: readonly ResolvedService[]): Promise<void> {
    const log = this.#o.logger
    try {
      await this.#reconcile(planListeners(services), this.#live())
      this.#put(services)
      log.log({ tag: '-ERR', event: 'reload-rolled-back', text: `the worker failed within ${secondsText(PROBATION_MS)} of the reload: back to the previous configuration` })
      /* c8 ignore start */
    } catch (err) {
      // A port of the old configuration taken meanwhile: the new one stays.
      log.log({ tag: '-ERR', event: 'reload-rolled-back', text: `cannot go back to the previous configuration, keeping the new one: ${errorText(err)}` })
    }
    /* c8 ignore stop */
  }
}
