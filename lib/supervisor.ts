/**
 * The supervisor of worker processes. Started as root, it keeps root for
 * what needs it — binding ports (also the new ones a reload brings), the
 * pidfile in a root-owned directory — and runs no relay, handler or ACP
 * itself: forked workers (lib/worker.ts) drop to the configured user and
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
 * A worker that dies is replaced: it gets the listeners from a surviving
 * worker (the port stays bound and keeps accepting meanwhile) or, when none
 * is left, bound anew.
 */
import { fork, type ChildProcess } from 'node:child_process'
import type { Server, Socket } from 'node:net'
import type { ListenSpec } from './address.js'
import { TcpproxyError, errorText } from './errors.js'
import { bindListener, closeListener, parseKey, reconcileListeners } from './listeners.js'
import type { Logger } from './log.js'
import { relayExecArgv } from './node-flags.js'
import type { ResolvedService } from './resolve.js'
import { serviceData } from './resolve.js'
import { planListeners } from './select.js'
import type { FromWorker, ToWorker, WorkerInit } from './worker.js'

export interface SupervisorOptions {
  /** The workers' start parameters, without the services and the worker count. */
  init: Omit<WorkerInit, 'type' | 'services' | 'workers' | 'index'>
  logger: Logger
  /** The module a worker runs (dist/worker-main.js). */
  workerPath: string
  /** How many workers share the listeners. */
  workers: number
  /** How long to wait before replacing a worker that died. */
  restartDelayMs?: number
}

export class Supervisor {
  readonly #o: SupervisorOptions
  readonly #count: number
  #services: readonly ResolvedService[] = []
  /** One slot per worker: the process serving all #keys, or null while it is being (re)started. */
  readonly #workers: (ChildProcess | null)[]
  /** Exit status per slot of the process last started in it. */
  readonly #exited: Promise<number | string>[]
  /** Listener keys every serving worker has. */
  #keys: string[] = []
  #stopping = false
  /** Start, reload and restarts run one at a time, so listener changes never interleave. */
  #queue: Promise<unknown> = Promise.resolve()

  constructor(options: SupervisorOptions) {
    this.#o = options
    this.#count = options.workers
    this.#workers = Array.from({ length: this.#count }, () => null)
    this.#exited = this.#workers.map(() => Promise.resolve(0))
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
   * configuration stays in force, whole, and the error is thrown.
   */
  reload(services: readonly ResolvedService[]): Promise<void> {
    return this.#serial(async () => {
      const workers = this.#live()
      await this.#reconcile(planListeners(services), workers)
      this.#services = services
      for (const w of workers) this.#send(w, { type: 'services', services: services.map(serviceData) })
    })
  }

  /** Stop: the workers drain for up to `graceMs` (0 = now). Resolves with the first failing exit status, or 0. */
  async stop(graceMs: number): Promise<number | string> {
    this.#stopping = true
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
    worker.once('exit', (code, signal) => void this.#onWorkerExit(i, code ?? signal))
  }

  /** Make the listeners of `workers` match `wanted`; each new one goes to every worker. */
  async #reconcile(wanted: ListenSpec[], workers: ChildProcess[]): Promise<void> {
    await reconcileListeners(this.#keys, wanted, {
      bind: async (key, spec) => {
        const server = await bindListener(spec)
        for (const w of workers) await this.#handOver(w, key, server)
        await closeListener(server)
        this.#keys.push(key)
      },
      unbind: async key => {
        for (const w of workers) await this.#expect(w, m => m.type === 'unlistened' && m.key === key, { type: 'unlisten', key })
        this.#keys = this.#keys.filter(k => k !== key)
      },
    })
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
    const pass = (s: Socket): void => void worker.send({ type: 'connection' } satisfies ToWorker, s)
    server.on('connection', pass)
    await this.#expect(worker, m => m.type === 'adopted' && m.key === key, { type: 'listen', key }, server)
    server.off('connection', pass)
  }

  #send(worker: ChildProcess, m: ToWorker, handle?: Server): void {
    worker.send(m, handle as never)
  }

  /** Send `m` and wait for the worker's answer matching `match`; resolves with the handle that came with it. */
  #expect(worker: ChildProcess, match: (m: FromWorker) => boolean, m: ToWorker, handle?: Server): Promise<Server | undefined> {
    return new Promise((resolve, reject) => {
      const onMessage = (reply: FromWorker, got?: Server): void => {
        // Answers come in order, one request at a time: a mismatch is only defensive.
        /* c8 ignore next */
        if (!match(reply)) return
        worker.off('message', onMessage)
        worker.off('exit', onExit)
        resolve(got)
      }
      // A worker dying in the middle of a hand-over: the restart logic takes it from there.
      /* c8 ignore start */
      const onExit = (): void => {
        worker.off('message', onMessage)
        reject(new TcpproxyError('ERR_RUNTIME', 'the worker process exited'))
      }
      /* c8 ignore stop */
      worker.on('message', onMessage)
      worker.once('exit', onExit)
      this.#send(worker, m, handle)
    })
  }

  /**
   * The listener `key` for a new worker: lent by a serving worker (the
   * socket stays bound and accepting all along), or bound anew when no
   * worker is left.
   */
  async #listener(key: string): Promise<Server> {
    const lender = this.#live()[0]
    if (lender === undefined) return bindListener(parseKey(key))
    return (await this.#expect(lender, m => m.type === 'lent' && m.key === key, { type: 'lend', key })) as Server
  }

  /** A worker that dies on its own is replaced, with every listener. */
  async #onWorkerExit(i: number, status: number | string | null): Promise<void> {
    this.#workers[i] = null
    if (this.#stopping) return
    const log = this.#o.logger
    log.log({ tag: '-ERR', event: 'worker-exit', text: `worker process ended (${status}), starting a new one` })
    await new Promise(resolve => setTimeout(resolve, this.#o.restartDelayMs ?? 1000))
    // Stopped during the delay.
    /* c8 ignore next */
    if (this.#stopping) return
    try {
      await this.#serial(async () => {
        const worker = await this.#spawn(i)
        try {
          for (const key of this.#keys) {
            const server = await this.#listener(key)
            await this.#handOver(worker, key, server)
            await closeListener(server)
          }
          /* c8 ignore start */
        } catch (err) {
          worker.kill('SIGKILL')
          throw err
        }
        /* c8 ignore stop */
        this.#serve(i, worker)
      })
      /* c8 ignore start */
    } catch (err) {
      // A port taken by someone else while no worker held it: keep trying.
      log.log({ tag: '-ERR', event: 'worker-exit', text: `cannot start a new worker: ${errorText(err)}` })
      void this.#onWorkerExit(i, 'start failed')
    }
    /* c8 ignore stop */
  }
}
