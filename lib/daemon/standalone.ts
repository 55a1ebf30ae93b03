/**
 * Serving on listeners (not inetd): in the background unless -d or
 * --foreground (lib/daemon/background.ts); started as root, a supervisor
 * binds and a worker running as the configured user serves
 * (lib/daemon/supervisor.ts); with --workers N, N workers share the
 * listeners (root or not); otherwise one process. Then the signals
 * (lib/daemon/signals.ts): HUP reloads, INT and TERM stop.
 */
import { statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { CliOptions } from '../cli/options.js'
import type { Config } from '../config/config.js'
import type { ResolvedService } from '../config/resolve.js'
import { TcpproxyError, errorText } from '../errors.js'
import type { Logger } from '../log/logger.js'
import { LOG_ENV, logPlaceOf } from '../log/nested.js'
import { openLogger, type LogSettings } from '../log/open.js'
import { Forwarder } from '../server/forwarder.js'
import type { ProgramContext } from '../session/context.js'
import { checkTransparentSupport, needsNetAdmin } from '../transparent/sockets.js'
import { launchDetached, type StatusChannel } from './background.js'
import { relayExecArgv } from './node-flags.js'
import { writePidfile, type Pidfile } from './pidfile.js'
import type { Identity } from './privileges.js'
import { daemonSignals } from './signals.js'
import { Supervisor } from './supervisor.js'
import { SharedMarks } from './marks.js'
import { localStats, SupervisedStats, type Stats } from '../stats/collector.js'
import { openSessions } from '../stats/counters.js'
import { serveMetrics } from '../stats/http.js'
import { activate, lifecycle, type SystemdEnv } from './systemd.js'
import { planListeners } from '../server/selector.js'
import { sessionsStatus } from '../systemd/notify.js'
import { ControlServer } from '../control/server.js'
import { answerLine } from '../control/answer.js'
import { groupId, loadUserDb } from './privileges.js'

/** Seconds open sessions get to finish after SIGTERM/SIGINT, unless --grace says otherwise. */
const DEFAULT_GRACE_S = 10

/** A re-read configuration: its services, and the global settings it changes that only a restart applies (by keyword). */
export interface Reread {
  services: readonly ResolvedService[]
  startupOnly: readonly string[]
}

export interface StandaloneOptions {
  /** The command line: -d, --foreground, --grace, -c (named in the reload's log line). */
  cli: CliOptions
  /** The arguments, for starting the background daemon with them. */
  argv: readonly string[]
  config: Config
  services: readonly ResolvedService[]
  programs: ProgramContext
  /** Who to serve as (lib/daemon/preflight.ts's checkStartup); null: stay who we are. */
  identity: Identity | null
  /** The log settings for logging to `target`. */
  logSettings: (target: LogSettings['target']) => LogSettings
  /** The configuration read and checked again, for a reload (SIGHUP); throws when it cannot be served. */
  reread: () => Promise<Reread>
  /** The status pipe of the background daemon (lib/daemon/background.ts); null in the foreground or before detaching. */
  status: StatusChannel | null
  /** NOTIFY_SOCKET and socket activation's variables (lib/daemon/systemd.ts). */
  systemd: SystemdEnv
}

/** Whether `path` is a unix socket (a syslog daemon listening on it). */
function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket()
  } catch {
    return false
  }
}

interface Running {
  /** Serve new connections with these services (SIGHUP). Throws when they cannot be put in place. */
  reload(services: readonly ResolvedService[]): Promise<void>
  /** Drain for up to graceMs (0: cut now); resolves with the exit status. */
  stop(graceMs: number): Promise<number>
  /** Counters and sessions of every process, kept across reloads (control socket, metrics). */
  stats: Stats
  /** What `systemctl status` shows (STATUS=). */
  status(): string
}

/** One process serving everything (not root, or root told to stay root). */
async function single(s: StandaloneOptions, logger: Logger): Promise<Running> {
  checkTransparentSupport(s.services)
  const proxy = new Forwarder(s.services, { logger, programs: s.programs, maxConnections: s.config.globals.maxConnections })
  await proxy.listen()
  return {
    stats: localStats(proxy),
    reload: next => {
      checkTransparentSupport(next)
      return proxy.update(next)
    },
    stop: async graceMs => {
      await proxy.close(graceMs)
      return 0
    },
    status: () => sessionsStatus(proxy.sessions, 1),
  }
}

/** A supervisor and its worker processes, which become `identity` (null: stay who we are) and log with `log`. */
async function supervised(s: StandaloneOptions, logger: Logger, log: LogSettings, identity: Identity | null): Promise<Running> {
  // The addon was checked in run(); the privilege test is the workers': as
  // root this process would pass it, a worker tests once it has given root up.
  const netAdmin = needsNetAdmin(s.services)
  const marks = new SharedMarks(logger, m => supervisor.broadcast(m))
  marks.setServices(s.services)
  const stats = new SupervisedStats(m => supervisor.broadcast(m))
  const supervisor: Supervisor = new Supervisor({
    init: {
      identity,
      log,
      programs: s.programs,
      maxConnections: s.config.globals.maxConnections,
      netAdmin,
      // Read at each worker's start: a replacement knows before it accepts.
      get start() {
        return { disabled: stats.disabled, marks: marks.inForce() }
      },
    },
    logger,
    workerPath: fileURLToPath(new URL('../worker-main.js', import.meta.url)),
    workers: s.config.globals.workers ?? 1,
    onMessage: (slot, m) => {
      marks.onMessage(m)
      stats.onMessage(slot, m)
    },
    onWorkerExit: slot => stats.retire(slot),
    onWorkerStart: slot => stats.started(slot),
  })
  await supervisor.start(s.services)
  return {
    stats,
    reload: next => {
      checkTransparentSupport(next, false)
      if (needsNetAdmin(next) && !netAdmin) {
        throw new TcpproxyError('ERR_PRIVILEGES', 'forge-addr needs a restart: the worker was started without CAP_NET_ADMIN')
      }
      return supervisor.reload(next).then(() => marks.setServices(next))
    },
    stop: async graceMs => {
      const status = await supervisor.stop(graceMs)
      return status === 0 ? 0 : 1
    },
    // The workers' sessions, as their last counters (at most a second old) say.
    status: () => sessionsStatus(openSessions(stats.backend.total()), s.config.globals.workers ?? 1),
  }
}

/** The control socket (`control`), once the listeners are bound; null without one. Stops `running` when it cannot be. */
async function openControl(g: Config['globals'], running: Running): Promise<ControlServer | null> {
  if (g.control === null) return null
  try {
    const gid = g.controlGroup === null ? null : groupId(g.controlGroup, loadUserDb().group, 'control-group')
    const disabled = new Set<string>()
    const cx = { backend: running.stats.backend, disabled, now: () => Date.now() }
    const control = await ControlServer.open({ path: g.control, gid, answer: line => answerLine(line, cx), umask: m => process.umask(m) })
    // A stop by a second signal or any exit path: the socket goes with the process.
    process.once('exit', () => control.removeSync())
    return control
  } catch (err) {
    await running.stop(0)
    throw err
  }
}

/** Serve on listeners until a signal stops the process (which then exits). */
export async function standalone(s: StandaloneOptions): Promise<void> {
  const { cli: o, status } = s
  const foreground = o.debug || o.foreground
  if (!foreground && status === null) {
    // Re-run detached; report what the daemon reports.
    const r = await launchDetached(process.execPath, [...relayExecArgv(process.execArgv), process.argv[1] as string, ...s.argv], process.env)
    if (r.ok) process.exit(0)
    process.stderr.write(`tcpproxy: ${r.message}\n`)
    process.exit(r.code)
  }
  const settings = s.logSettings(foreground ? 'stderr' : 'syslog')
  s.programs.baseEnv[LOG_ENV] = logPlaceOf(settings)
  // The background daemon's standard error is /dev/null: until it has
  // started, the caller's terminal (through the status pipe), then nothing.
  const stderr = status?.stderr ?? process.stderr
  const logger = openLogger(settings, process.pid, stderr)
  const systemd = lifecycle(s.systemd, process.pid, logger, process.hrtime.bigint)
  activate(s.systemd, process.pid, planListeners(s.services), logger)
  // Written before anything is bound (a live tcpproxy in it refuses the start)
  // and, started as root, before any process gives up root.
  const pidfile: Pidfile | null = s.config.globals.pidfile === null ? null : writePidfile(s.config.globals.pidfile, process.pid)
  let running: Running
  let control: ControlServer | null = null
  // Root that is to become someone else needs the supervisor (binding stays
  // root's); so do several workers. Otherwise one process does everything.
  const dropTo = s.identity !== null && s.identity.uid !== 0 ? s.identity : null
  try {
    running = dropTo !== null || (s.config.globals.workers ?? 1) > 1 ? await supervised(s, logger, settings, dropTo) : await single(s, logger)
    control = await openControl(s.config.globals, running)
  } catch (err) {
    pidfile?.remove()
    throw err
  }
  const metricsAt = s.config.globals.metrics
  if (metricsAt !== null) {
    const stats = running.stats
    await serveMetrics(metricsAt, () => stats.metrics()).catch(async err => {
      await running.stop(0)
      pidfile?.remove()
      throw err
    })
  }
  logger.log({ tag: '', event: 'ready', text: 'ready' })
  systemd.ready(running.status())
  if (status !== null && !isSocket(settings.syslogSocket)) {
    stderr.write(`tcpproxy: no syslog socket at ${settings.syslogSocket}: the daemon's log is discarded once it has started (use --foreground to log to standard error, or --syslog-socket)\n`)
  }
  status?.report({ ok: true })

  const graceMs = (o.grace ?? DEFAULT_GRACE_S) * 1000
  let reloading = Promise.resolve()
  daemonSignals(process, {
    stop: signal => {
      logger.log({ tag: '+INFO', event: 'signal', text: `caught ${signal}, stopping` })
      systemd.stopping(`stopping, ${running.status()}`)
      void running.stop(graceMs).then(async code => {
        await control?.close()
        pidfile?.remove()
        await logger.close()
        process.exit(code)
      })
    },
    stopNow: () =>
      void running.stop(0).finally(() => {
        pidfile?.remove()
        process.exit(1)
      }),
    reload: () => {
      // One reload at a time; a HUP during a reload is served after it.
      reloading = reloading.then(async () => {
        systemd.reloading()
        try {
          const { services: next, startupOnly } = await s.reread()
          await running.reload(next)
          const file = o.config ?? 'the configuration'
          logger.log({ tag: '+INFO', event: 'reload', text: `reloaded ${file}: ${next.length} service(s)` })
          for (const word of startupOnly) {
            logger.log({ tag: '-INFO', event: 'reload-restart-needed', text: `${word} changed in ${file}: it is read at start-up, the running daemon keeps its value until a restart` })
          }
        } catch (err) {
          logger.log({ tag: '-ERR', event: 'reload-failed', text: `reload failed, keeping the old configuration: ${errorText(err)}` })
        }
        systemd.ready(running.status())
      })
    },
  })
}
