/**
 * The privileged half of a daemon started as root. It keeps root for what
 * needs it — binding ports (also the new ones a reload brings), the pidfile
 * in a root-owned directory — and runs no relay, handler or ACP itself: a
 * forked worker (lib/worker.ts) drops to the configured user and serves the
 * listeners this process binds and hands over. A worker that dies is
 * replaced; a reload re-binds only what changed.
 */
import { fork, type ChildProcess } from 'node:child_process'
import type { Server, Socket } from 'node:net'
import type { ListenSpec } from './address.js'
import { TcpproxyError, errorText } from './errors.js'
import { bindListener, closeListener, reconcileListeners } from './listeners.js'
import type { Logger } from './log.js'
import type { ResolvedService } from './resolve.js'
import { serviceData } from './resolve.js'
import { planListeners } from './select.js'
import type { FromWorker, ToWorker, WorkerInit } from './worker.js'

export interface SupervisorOptions {
  /** The worker's start parameters, without the services. */
  init: Omit<WorkerInit, 'type' | 'services'>
  logger: Logger
  /** The module a worker runs (dist/worker-main.js). */
  workerPath: string
  /** How long to wait before replacing a worker that died. */
  restartDelayMs?: number
}

export class Supervisor {
  readonly #o: SupervisorOptions
  #services: readonly ResolvedService[] = []
  #worker: ChildProcess | null = null
  /** Listener keys the worker serves. */
  #keys: string[] = []
  #stopping = false
  #exited: Promise<number | string> = Promise.resolve(0)

  constructor(options: SupervisorOptions) {
    this.#o = options
  }

  /**
   * Start a worker for `services` and hand it every listener. Throws ERR_BIND
   * (nothing left running) when a port cannot be bound, or ERR_PRIVILEGES
   * when the worker cannot become the configured user.
   */
  async start(services: readonly ResolvedService[]): Promise<void> {
    this.#services = services
    // Its own process group: a Ctrl-C or a signal to the group is the
    // supervisor's to handle, the worker acts on messages only.
    const worker = fork(this.#o.workerPath, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true })
    this.#worker = worker
    this.#keys = []
    this.#exited = new Promise(resolve => worker.once('exit', (code, signal) => resolve(code ?? (signal as string))))
    const failed = new Promise<never>((_, reject) => {
      worker.once('message', (m: FromWorker) => {
        // (The worker's 'error' report is the unreachable setuid failure, see worker.ts.)
        /* c8 ignore next */
        if (m.type === 'error') reject(new TcpproxyError('ERR_PRIVILEGES', m.message))
      })
      worker.once('exit', () => reject(new TcpproxyError('ERR_RUNTIME', 'the worker process exited during start-up')))
    })
    failed.catch(() => {})
    try {
      await Promise.race([this.#expect(worker, m => m.type === 'ready', { ...this.#o.init, type: 'init', services: services.map(serviceData) }), failed])
      await Promise.race([this.#reconcile(planListeners(services)), failed])
    } catch (err) {
      worker.kill('SIGKILL')
      throw err
    }
    worker.once('exit', (code, signal) => void this.#onWorkerExit(code ?? signal))
  }

  /**
   * New services (SIGHUP): the worker serves new connections with them,
   * listeners are re-bound where they changed. On a bind failure the old
   * configuration stays in force, whole, and the error is thrown.
   */
  async reload(services: readonly ResolvedService[]): Promise<void> {
    const worker = this.#worker as ChildProcess
    await this.#reconcile(planListeners(services))
    this.#services = services
    this.#send(worker, { type: 'services', services: services.map(serviceData) })
  }

  /** Stop: the worker drains for up to `graceMs` (0 = now). Resolves with its exit status. */
  async stop(graceMs: number): Promise<number | string> {
    this.#stopping = true
    const worker = this.#worker
    // Stopped while no worker runs (between a crash and its replacement).
    /* c8 ignore next */
    if (worker === null || worker.exitCode !== null || worker.signalCode !== null) return this.#exited
    if (graceMs === 0) worker.kill('SIGKILL')
    else this.#send(worker, { type: 'stop', graceMs })
    return this.#exited
  }

  async #reconcile(wanted: ListenSpec[]): Promise<void> {
    const worker = this.#worker as ChildProcess
    await reconcileListeners(this.#keys, wanted, {
      bind: async (key, spec) => {
        const server = await bindListener(spec)
        await this.#handOver(worker, key, server)
        this.#keys.push(key)
      },
      unbind: async key => {
        await this.#expect(worker, m => m.type === 'unlistened' && m.key === key, { type: 'unlisten', key })
        this.#keys = this.#keys.filter(k => k !== key)
      },
    })
  }

  /**
   * Pass a bound listener to the worker, then close this process's copy: the
   * supervisor never serves connections. One accepted in the instant before
   * the worker took over is passed on, not dropped.
   */
  async #handOver(worker: ChildProcess, key: string, server: Server): Promise<void> {
    // Only in the microseconds between binding and the worker's adoption,
    // which no test can aim at.
    /* c8 ignore next */
    server.on('connection', (s: Socket) => worker.send({ type: 'connection' } satisfies ToWorker, s))
    await this.#expect(worker, m => m.type === 'adopted' && m.key === key, { type: 'listen', key }, server)
    await closeListener(server)
  }

  #send(worker: ChildProcess, m: ToWorker, handle?: Server): void {
    worker.send(m, handle as never)
  }

  /** Send `m` and wait for the worker's answer matching `match`. */
  #expect(worker: ChildProcess, match: (m: FromWorker) => boolean, m: ToWorker, handle?: Server): Promise<void> {
    return new Promise((resolve, reject) => {
      const onMessage = (reply: FromWorker): void => {
        // Answers come in order, one request at a time: a mismatch is only defensive.
        /* c8 ignore next */
        if (!match(reply)) return
        worker.off('message', onMessage)
        worker.off('exit', onExit)
        resolve()
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

  /** A worker that dies on its own is replaced, with every listener bound anew. */
  async #onWorkerExit(status: number | string | null): Promise<void> {
    if (this.#stopping) return
    const log = this.#o.logger
    log.log({ tag: '-ERR', event: 'worker-exit', text: `worker process ended (${status}), starting a new one` })
    await new Promise(resolve => setTimeout(resolve, this.#o.restartDelayMs ?? 1000))
    // Stopped during the delay.
    /* c8 ignore next */
    if (this.#stopping) return
    try {
      await this.start(this.#services)
      /* c8 ignore start */
    } catch (err) {
      // A port taken by someone else while the worker was down: keep trying.
      log.log({ tag: '-ERR', event: 'worker-exit', text: `cannot start a new worker: ${errorText(err)}` })
      void this.#onWorkerExit('start failed')
    }
    /* c8 ignore stop */
  }
}
