/**
 * The process edge: argv, files, stdout/stderr, signals, the exit status,
 * and the choice of process model. Everything below it (lib/server/forwarder.ts and
 * friends) is given what it needs.
 *
 * - `-z`, `--check`: print and exit.
 * - inetd mode: serve the connection on stdin, exit.
 * - standalone: lib/daemon/standalone.ts.
 */
import { readFileSync } from 'node:fs'
import * as inspector from 'node:inspector'
import { basename } from 'node:path'
import { Writable } from 'node:stream'
import { parseArgs } from './cli/options.js'
import type { Config } from './config/config.js'
import { startupOnlyChanges } from './config/startup-only.js'
import { STATUS_FD_ENV, statusChannel, type StatusChannel } from './daemon/background.js'
import { describeService } from './cli/describe.js'
import { TcpproxyError, errorText } from './errors.js'
import { inheritedConnection, notTcpConnection, sameSocket } from './server/inetd.js'
import { openLogger, parseFacility, type LogSettings } from './log/open.js'
import { nativeAvailable } from './native/addon.js'
import { refuseDebugger } from './daemon/node-flags.js'
import { LOG_ENV, logPlaceOf, nestedLogSettings } from './log/nested.js'
import { checkServices, checkStartup, servingAccount } from './daemon/preflight.js'
import { dropPrivileges } from './daemon/privileges.js'
import { Forwarder } from './server/forwarder.js'
import { resolveServices, type ResolvedService } from './config/resolve.js'
import { loadServices } from './config/port-names.js'
import type { ProgramContext } from './session/context.js'
import { buildSelector } from './server/selector.js'
import { buildConfig, chooseMode, type SettingsDeps } from './cli/settings.js'
import { ignoreSignals } from './daemon/signals.js'
import { takeSystemdEnv } from './daemon/systemd.js'
import { standalone, type Reread } from './daemon/standalone.js'
import { checkSourceAddresses } from './server/upstream.js'
import { checkTransparentSupport, dropKeepingNetAdmin, needsNetAdmin } from './transparent/sockets.js'
import { FACILITIES } from './log/syslog.js'
import { versionText } from './version.js'
import { runCtl } from './cli/ctl.js'

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

/** Run tcpproxy with the process's arguments; returns once it serves (or exits). */
export async function run(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  refuseDebugger(process, inspector)
  // HUP means reload: one that comes before there is anything to reload, or
  // in inetd mode (`pkill -HUP tcpproxy` meant for a daemon), must not end
  // the process, which is HUP's default.
  ignoreSignals(process, ['SIGHUP'])
  const status = takeStatus()
  // Meant for this process alone: workers and programs must not inherit them.
  const systemd = takeSystemdEnv(process.env)
  try {
    const parsed = parseArgs(argv, versionText)
    if (parsed.kind === 'ctl') process.exit(await runCtl(parsed.argv, process.stdout, process.stderr))
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
      ...(config.globals.maxPrograms === null ? {} : { maxPrograms: config.globals.maxPrograms }),
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
    const reread = async (): Promise<Reread> => {
      const file = buildConfig(o, deps)
      const next = await prepare(file)
      checkServices(next, servingAccount(identity))
      return { services: next, startupOnly: startupOnlyChanges(config.globals, file.globals, identity !== null) }
    }
    await standalone({ cli: o, argv, config, services, programs, identity, logSettings, reread, status, systemd })
  } catch (err) {
    fail(err, status)
  }
}
