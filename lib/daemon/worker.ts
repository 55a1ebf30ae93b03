/**
 * The unprivileged worker of a daemon started as root (HAProxy's and
 * nginx's master/worker split): it drops to the configured user before it
 * touches a connection, then serves the listeners the supervisor binds and
 * passes to it over IPC. Handlers and ACPs are its children, so they run
 * as that user too. Signals are the supervisor's business; the worker
 * acts on messages and ignores HUP, INT, TERM, USR1 and USR2.
 */
import type { Server, Socket } from 'node:net'
import { openLogger, type LogSettings } from '../log/open.js'
import { dropPrivileges, type Identity } from './privileges.js'
import { ignoreSignals } from './signals.js'
import { nativeAvailable } from '../native/addon.js'
import { Forwarder } from '../server/forwarder.js'
import { checkTransparentSupport, dropKeepingNetAdmin } from '../transparent/sockets.js'
import { hydrateService, type ServiceData } from '../config/resolve.js'
import type { ProgramContext } from '../session/context.js'
import type { Transition } from '../server/health.js'
import type { AnswerMessage, AskMessage, StatsMessage } from '../stats/ipc.js'
import { answer, Reporter } from '../stats/reporter.js'

export interface WorkerInit {
  type: 'init'
  /** The user to become; null: stay who we are (not root, or `-u root` with --workers). */
  identity: Identity | null
  log: LogSettings
  programs: ProgramContext
  services: ServiceData[]
  maxConnections: number | null
  /** Keep CAP_NET_ADMIN (alone) for forged upstream sources (forge-addr). */
  netAdmin: boolean
  /** How many workers share the listeners (the limits are divided among them). */
  workers: number
  /** This worker's slot, 0 to workers - 1. */
  index: number
  /** What a worker must know before it accepts (one that replaces a dead one): servers disabled by command, marks in force. */
  start: { disabled: string[]; marks: { service: string; transition: Transition }[] }
}

/** Supervisor to worker. */
export type ToWorker =
  | WorkerInit
  | { type: 'listen'; key: string }
  | { type: 'connection' }
  | { type: 'unlisten'; key: string }
  | { type: 'lend'; key: string }
  | { type: 'services'; services: ServiceData[] }
  | { type: 'stop'; graceMs: number }
  /** A server mark another worker saw (lib/daemon/marks.ts): applied silently. */
  | { type: 'server-mark'; service: string; transition: Transition }
  | AskMessage

/** Worker to supervisor. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'adopted'; key: string }
  | { type: 'unlistened'; key: string }
  | { type: 'lent'; key: string }
  | { type: 'error'; message: string }
  /** A server of `service` changed state here: the supervisor logs it once and shares it (lib/daemon/marks.ts). */
  | { type: 'server-mark'; service: string; transition: Transition }
  | StatsMessage
  | AnswerMessage

type Channel = Pick<NodeJS.Process, 'on' | 'send' | 'exit' | 'pid' | 'stderr'>

/** Serve as the worker of the supervisor on the IPC channel of `proc`. */
export function runWorker(proc: Channel): void {
  // Signals are the supervisor's: `pkill -HUP tcpproxy` or a TERM sent to
  // every tcpproxy process reaches the supervisor too, which reloads or
  // stops every worker by message; acting on them here as well would kill
  // the worker (HUP's default) or cut its sessions short of the grace
  // period. (USR1 and USR2: refuseDebugger() in lib/worker-main.ts, as in
  // every tcpproxy process.)
  ignoreSignals(proc, ['SIGHUP', 'SIGINT', 'SIGTERM'])
  let proxy: Forwarder | null = null
  let reporter!: Reporter
  let closeLog!: () => Promise<void>
  let flushLog!: () => void
  const send = (m: FromWorker, handle?: Server): void => void (proc.send as (m: FromWorker, h?: Server) => boolean)(m, handle)
  // The supervisor is gone: nobody would stop us or remove the pidfile; stop now.
  proc.on('disconnect', () => void Promise.resolve(proxy?.close(0)).then(() => proc.exit(1)))
  proc.on('message', (m: ToWorker, handle?: Server | Socket) => {
    switch (m.type) {
      case 'init': {
        try {
          // The addon is loaded on first use, but its file may be out of reach of
          // the user this worker becomes (a checkout in /root): load it now.
          nativeAvailable()
          if (m.identity !== null && m.netAdmin) dropKeepingNetAdmin(() => dropPrivileges(m.identity as Identity))
          else if (m.identity !== null) dropPrivileges(m.identity)
          if (m.netAdmin) checkTransparentSupport(m.services)
          /* c8 ignore start */
        } catch (err) {
          // Root cannot fail setuid() to an existing user on Linux, nor keep
          // CAP_NET_ADMIN across it; kept so a hardened kernel (seccomp, LSM,
          // a capability bounding set without it) stops the start instead of
          // running as root or failing every connection.
          send({ type: 'error', message: (err as Error).message })
          proc.exit(1)
          return
        }
        /* c8 ignore stop */
        const logger = openLogger(m.log, proc.pid, proc.stderr)
        closeLog = () => logger.close()
        flushLog = logger.flush
        proxy = new Forwarder(m.services.map(hydrateService), {
          logger,
          programs: m.programs,
          maxConnections: m.maxConnections,
          workers: m.workers,
          workerIndex: m.index,
          // Marks are logged once, by the supervisor, and shared with the other workers.
          onMark: (service, transition) => send({ type: 'server-mark', service, transition }),
        })
        for (const server of m.start.disabled) proxy.disableServer(server)
        for (const k of m.start.marks) proxy.applyMark(k.service, k.transition)
        reporter = new Reporter(proxy, send)
        send({ type: 'ready' })
        return
      }
      case 'listen':
        ;(proxy as Forwarder).adopt(m.key, handle as Server)
        // Our "bound to" line before the supervisor's "ready".
        flushLog()
        send({ type: 'adopted', key: m.key })
        return
      /* c8 ignore start */
      case 'connection': {
        // Accepted by the supervisor in the moment before it handed a listener over.
        const socket = handle as Socket & { allowHalfOpen: boolean }
        socket.allowHalfOpen = true
        socket.pause()
        void (proxy as Forwarder).handle(socket)
        return
      }
      /* c8 ignore stop */
      case 'lend':
        // For a new worker replacing a dead one: the socket itself, still ours too.
        send({ type: 'lent', key: m.key }, (proxy as Forwarder).listener(m.key))
        return
      case 'unlisten':
        void (proxy as Forwarder).unlisten(m.key).then(() => send({ type: 'unlistened', key: m.key }))
        return
      case 'services':
        ;(proxy as Forwarder).setServices(m.services.map(hydrateService))
        return
      case 'server-mark':
        ;(proxy as Forwarder).applyMark(m.service, m.transition)
        return
      case 'ask':
        send({ type: 'answer', id: m.id, ...answer(proxy as Forwarder, m, performance.now()) })
        return
      case 'stop':
        void (proxy as Forwarder)
          .close(m.graceMs)
          .then(() => reporter.stop())
          .then(closeLog)
          .then(() => proc.exit(0))
        return
    }
  })
}
