/**
 * The process edge: argv, files, stdout/stderr, signals, the exit status,
 * and the choice of process model. Everything below it (lib/server/forwarder.ts and
 * friends) is given what it needs.
 *
 * - `-z`, `--check`: print and exit.
 * - inetd mode: serve the connection on stdin, exit.
 * - standalone: in the background unless -d/--foreground (lib/daemon/background.ts);
 *   started as root, a supervisor binds and a worker running as the
 *   configured user serves (lib/daemon/supervisor.ts); with --workers N, N
 *   workers share the listeners (root or not); otherwise one process.
 */
import { readFileSync, statSync } from 'node:fs'
import * as inspector from 'node:inspector'
import { basename } from 'node:path'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { parseArgs, type CliOptions } from './cli/options.js'
import type { Config } from './config/config.js'
import { STATUS_FD_ENV, launchDetached, statusChannel, type StatusChannel } from './daemon/background.js'
import { describeService } from './cli/describe.js'
import { TcpproxyError, errorText } from './errors.js'
import { inheritedConnection, notTcpConnection, sameSocket } from './server/inetd.js'
import type { Logger } from './log/logger.js'
import { openLogger, parseFacility, type LogSettings } from './log/open.js'
import { nativeAvailable } from './native/addon.js'
import { refuseDebugger, relayExecArgv } from './daemon/node-flags.js'
import { LOG_ENV, logPlaceOf, nestedLogSettings } from './log/nested.js'
import { checkServices, checkStartup, servingAccount } from './daemon/preflight.js'
import { writePidfile, type Pidfile } from './daemon/pidfile.js'
import { dropPrivileges, type Identity } from './daemon/privileges.js'
import { Forwarder } from './server/forwarder.js'
import { resolveServices, type ResolvedService } from './config/resolve.js'
import { loadServices } from './config/port-names.js'
import type { ProgramContext } from './session/session.js'
import { buildSelector } from './server/selector.js'
import { buildConfig, chooseMode, type SettingsDeps } from './cli/settings.js'
import { Supervisor } from './daemon/supervisor.js'
import { checkSourceAddresses } from './server/upstream.js'
import { checkTransparentSupport, dropKeepingNetAdmin, needsNetAdmin } from './transparent/sockets.js'
import { FACILITIES } from './log/syslog.js'
import { versionText } from './version.js'

/** Seconds open sessions get to finish after SIGTERM/SIGINT, unless --grace says otherwise. */
const DEFAULT_GRACE_S = 10

/** Report a failure: to the launcher waiting on the status pipe, and on stderr; then exit. */
function fail(err: unknown, status: StatusChannel | null): never {
  // Every expected failure is a TcpproxyError; anything else is a bug, still
  // reported as one line rather than a stack trace.
  /* c8 ignore next */
  const e = err instanceof TcpproxyError ? err : new TcpproxyError('ERR_RUNTIME', errorText(err))
  if (status !== null) status.report({ ok: false, code: e.exitCode, message: e.message })
  else process.stderr.write(`tcpproxy: ${e.message}\n`)
  process.exit(e.exitCode)
}

/** The variables programs inherit: tcpproxy's own environment. */
function inheritedEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined))
}

/** Whether `path` is a unix socket (a syslog daemon listening on it). */
function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket()
  } catch {
    return false
  }
}

/**
 * The services of `config` as every process will use them, checked whole:
 * --check, the start and a reload run this, so a file one of them refuses
 * is refused by all, before anything changes (a worker never gets a
 * configuration it cannot serve).
 */
async function prepare(config: Config): Promise<ResolvedService[]> {
  const services = await resolveServices(config.services)
  await checkSourceAddresses(services)
  // The selection every worker builds: interfaces that mean one address on one port.
  buildSelector(services)
  // Without the addon a transparent-proxying configuration cannot be served: --check says so too.
  checkTransparentSupport(services, false)
  return services
}

/** The status pipe of a daemon started by launchDetached, taken out of the environment programs inherit. */
function takeStatus(): StatusChannel | null {
  const fd = process.env[STATUS_FD_ENV]
  delete process.env[STATUS_FD_ENV]
  return fd === undefined ? null : statusChannel(Number(fd))
}

interface Running {
  /** Serve new connections with these services (SIGHUP). Throws when they cannot be put in place. */
  reload(services: readonly ResolvedService[]): Promise<void>
  /** Drain for up to graceMs (0: cut now); resolves with the exit status. */
  stop(graceMs: number): Promise<number>
}

/** One process serving everything (not root, or root told to stay root). */
async function single(services: readonly ResolvedService[], logger: Logger, programs: ProgramContext, config: Config): Promise<Running> {
  checkTransparentSupport(services)
  const proxy = new Forwarder(services, { logger, programs, maxConnections: config.globals.maxConnections })
  await proxy.listen()
  return {
    reload: s => {
      checkTransparentSupport(s)
      return proxy.update(s)
    },
    stop: async graceMs => {
      await proxy.close(graceMs)
      return 0
    },
  }
}

/** A supervisor and `workers` worker processes, which become `identity` (null: stay who we are). */
async function supervised(
  services: readonly ResolvedService[],
  logger: Logger,
  programs: ProgramContext,
  config: Config,
  identity: Identity | null,
  log: LogSettings,
  workers: number,
): Promise<Running> {
  // The addon was checked in run(); the privilege test is the workers': as
  // root this process would pass it, a worker tests once it has given root up.
  const netAdmin = needsNetAdmin(services)
  const supervisor = new Supervisor({
    init: { identity, log, programs, maxConnections: config.globals.maxConnections, netAdmin },
    logger,
    workerPath: fileURLToPath(new URL('./worker-main.js', import.meta.url)),
    workers,
  })
  await supervisor.start(services)
  return {
    reload: s => {
      checkTransparentSupport(s, false)
      if (needsNetAdmin(s) && !netAdmin) {
        throw new TcpproxyError('ERR_PRIVILEGES', 'forge-addr needs a restart: the worker was started without CAP_NET_ADMIN')
      }
      return supervisor.reload(s)
    },
    stop: async graceMs => {
      const status = await supervisor.stop(graceMs)
      return status === 0 ? 0 : 1
    },
  }
}

/** Run tcpproxy with the process's arguments; returns once it serves (or exits). */
export async function run(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  refuseDebugger(process, inspector)
  // HUP means reload: one that comes before there is anything to reload, or
  // in inetd mode (`pkill -HUP tcpproxy` meant for a daemon), must not end
  // the process, which is HUP's default.
  process.on('SIGHUP', () => {})
  const status = takeStatus()
  try {
    const parsed = parseArgs(argv, versionText)
    if (parsed.kind === 'exit') {
      process.stdout.write(parsed.output)
      process.exit(parsed.code)
    }
    const o = parsed.options
    // A connection on standard input means inetd mode (unless -b/-s say otherwise).
    const inherited = o.bind === null && !o.standalone && !o.listPorts && !o.check ? inheritedConnection(0) : null
    const deps: SettingsDeps = {
      readFile: path => readFileSync(path, 'utf8'),
      lookup: loadServices(),
      inetdPort: inherited?.localPort ?? null,
      stdinProblem: () => notTcpConnection(0),
    }
    const config = buildConfig(o, deps)
    if (o.listPorts) {
      // For fuser(1)/netuser: bare decimal ports, one per line; nothing bound.
      process.stdout.write(config.ports.map(p => `${p}\n`).join(''))
      process.exit(0)
    }
    const services = await prepare(config)
    // Only root changes identity; a normal user's ids are left alone.
    const identity = checkStartup(o, config, services)
    if (o.check) {
      for (const s of services) process.stdout.write(describeService(s) + '\n')
      process.exit(0)
    }
    const proxyName = basename(process.argv[1] as string)
    const logName = config.globals.logname ?? proxyName
    const logSettings = (target: LogSettings['target']): LogSettings => ({
      target,
      ident: logName,
      debug: o.debug,
      format: o.logFormat ?? 'text',
      syslogSocket: o.syslogSocket ?? '/dev/log',
      facility: o.syslogFacility === null ? (FACILITIES['mail'] as number) : parseFacility(o.syslogFacility),
    })
    const programs: ProgramContext = {
      baseEnv: inheritedEnv(),
      envPrefix: config.globals.envPrefix,
      pid: process.pid,
      proxyName,
      logName,
      resolveNames: !o.noResolve,
      runAs: {},
      relayThread: !o.noRelayThread,
      ...(o.maxPrograms === null ? {} : { maxPrograms: o.maxPrograms }),
    }

    if (chooseMode(o, config, inherited !== null) === 'inetd') {
      if (inherited === null) {
        const problem = notTcpConnection(0)
        throw new TcpproxyError('ERR_USAGE', `inetd mode needs a connected TCP socket on standard input${problem === null ? '' : `, but ${problem}`}`)
      }
      nativeAvailable() // loaded before giving up root, as a worker does (lib/daemon/worker.ts)
      if (identity !== null && needsNetAdmin(services)) dropKeepingNetAdmin(() => dropPrivileges(identity))
      else if (identity !== null) dropPrivileges(identity)
      checkTransparentSupport(services)
      // inetd often connects stderr to the client too: never log into the connection.
      const stderrIsClient = !o.debug && sameSocket(0, 2)
      // ...not even as syslog's fallback: then unreachable syslog means no log.
      const fallback = stderrIsClient ? new Writable({ write: (_c, _e, done) => done() }) : process.stderr
      const settings = nestedLogSettings(logSettings(stderrIsClient ? 'syslog' : 'stderr'), process.env[LOG_ENV], { socket: o.syslogSocket !== null, facility: o.syslogFacility !== null })
      programs.baseEnv[LOG_ENV] = logPlaceOf(settings)
      const logger = openLogger(settings, process.pid, fallback)
      await new Forwarder(services, { logger, programs, maxConnections: null }).handle(inherited)
      await logger.close()
      process.exit(0)
    }
    // Listening instead (`standalone yes`): tell that client now. destroy()
    // alone would leave it waiting, as libuv never closes descriptors 0-2;
    // a shutdown() sends it the FIN.
    inherited?.end(() => inherited.destroy())
    await standalone(o, argv, config, services, programs, identity, logSettings, deps, status)
  } catch (err) {
    fail(err, status)
  }
}

async function standalone(
  o: CliOptions,
  argv: readonly string[],
  config: Config,
  services: readonly ResolvedService[],
  programs: ProgramContext,
  identity: Identity | null,
  logSettings: (target: LogSettings['target']) => LogSettings,
  deps: SettingsDeps,
  status: StatusChannel | null,
): Promise<void> {
  const foreground = o.debug || o.foreground
  if (!foreground && status === null) {
    // Re-run detached; report what the daemon reports.
    const r = await launchDetached(process.execPath, [...relayExecArgv(process.execArgv), process.argv[1] as string, ...argv], process.env)
    if (r.ok) process.exit(0)
    process.stderr.write(`tcpproxy: ${r.message}\n`)
    process.exit(r.code)
  }
  const settings = logSettings(foreground ? 'stderr' : 'syslog')
  programs.baseEnv[LOG_ENV] = logPlaceOf(settings)
  // The background daemon's standard error is /dev/null: until it has
  // started, the caller's terminal (through the status pipe), then nothing.
  const stderr = status?.stderr ?? process.stderr
  const logger = openLogger(settings, process.pid, stderr)
  // Written before anything is bound (a live tcpproxy in it refuses the start)
  // and, started as root, before any process gives up root.
  const pidfile: Pidfile | null = config.globals.pidfile === null ? null : writePidfile(config.globals.pidfile, process.pid)
  let running: Running
  // Root that is to become someone else needs the supervisor (binding stays
  // root's); so do several workers. Otherwise one process does everything.
  const dropTo = identity !== null && identity.uid !== 0 ? identity : null
  const workers = config.globals.workers ?? 1
  try {
    running =
      dropTo !== null || workers > 1
        ? await supervised(services, logger, programs, config, dropTo, settings, workers)
        : await single(services, logger, programs, config)
  } catch (err) {
    pidfile?.remove()
    throw err
  }
  logger.log({ tag: '', event: 'ready', text: 'ready' })
  if (status !== null && !isSocket(settings.syslogSocket)) {
    stderr.write(`tcpproxy: no syslog socket at ${settings.syslogSocket}: the daemon's log is discarded once it has started (use --foreground to log to standard error, or --syslog-socket)\n`)
  }
  status?.report({ ok: true })

  const graceMs = (o.grace ?? DEFAULT_GRACE_S) * 1000
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) {
      // A second signal means "now".
      void running.stop(0).finally(() => {
        pidfile?.remove()
        process.exit(1)
      })
      return
    }
    stopping = true
    logger.log({ tag: '+INFO', event: 'signal', text: `caught ${signal}, stopping` })
    void running.stop(graceMs).then(async status => {
      pidfile?.remove()
      await logger.close()
      process.exit(status)
    })
  }
  let reloading = Promise.resolve()
  const reload = (): void => {
    // One reload at a time; a HUP during a reload is served after it.
    reloading = reloading.then(async () => {
      try {
        const next = await prepare(buildConfig(o, deps))
        checkServices(next, servingAccount(identity))
        await running.reload(next)
        logger.log({ tag: '+INFO', event: 'reload', text: `reloaded ${o.config ?? 'the configuration'}: ${next.length} service(s)` })
      } catch (err) {
        logger.log({ tag: '-ERR', event: 'reload-failed', text: `reload failed, keeping the old configuration: ${errorText(err)}` })
      }
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGHUP', reload)
}
