/**
 * systemd around a serving daemon: the variables systemd sets for tcpproxy
 * (taken out of the environment, so that no worker, handler or ACP takes
 * them for its own), readiness and reload notifications
 * (lib/systemd/notifier.ts), and the sockets of socket activation
 * (lib/server/passed.ts).
 */
import type { ListenSpec } from '../config/address.js'
import type { Logger } from '../log/logger.js'
import { nativeAddon } from '../native/addon.js'
import { closePassed, holdPassed } from '../server/passed.js'
import { ACTIVATION_VARS, matchListeners, parseListenFds } from '../systemd/activation.js'
import { parseNotifySocket, readyMessage, reloadingMessage, stoppingMessage } from '../systemd/notify.js'
import { notifier } from '../systemd/notifier.js'

/** What systemd told this process (NOTIFY_SOCKET, LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES). */
export type SystemdEnv = Record<string, string | undefined>

const VARS = ['NOTIFY_SOCKET', ...ACTIVATION_VARS] as const

/** The systemd variables of `env`, removed from it. */
export function takeSystemdEnv(env: Record<string, string | undefined>): SystemdEnv {
  const taken: SystemdEnv = {}
  for (const name of VARS) {
    taken[name] = env[name]
    delete env[name]
  }
  return taken
}

/**
 * Serve the sockets systemd passed to `pid` for the specs they match (bind
 * the rest, listeners.ts); the ones no spec wants: one -INFO line each, closed.
 */
export function activate(env: SystemdEnv, pid: number, specs: readonly ListenSpec[], log: Logger): void {
  const fds = parseListenFds(env, pid)
  if (fds.length === 0) return
  const addon = nativeAddon()
  const bound = holdPassed(fds, addon?.dupFd)
  for (const f of matchListeners(bound, specs).unused) {
    log.log({ tag: '-INFO', event: 'activation-unused', text: `socket ${f.name} (fd ${f.fd}, ${f.host} port ${f.port}) passed by systemd matches no listen address: closed` })
    closePassed(f.fd)
  }
}

/** The notifications of a serving daemon's life. */
export interface Lifecycle {
  ready(status: string): void
  reloading(): void
  stopping(status: string): void
}

/** Notifications to NOTIFY_SOCKET (none when unset) for the main process `pid`. */
export function lifecycle(env: SystemdEnv, pid: number, log: Logger, now: () => bigint): Lifecycle {
  const n = notifier(parseNotifySocket(env['NOTIFY_SOCKET']), nativeAddon(), log)
  return {
    ready: status => n.send(readyMessage(pid, status)),
    // CLOCK_MONOTONIC in µs: hrtime reads that clock.
    reloading: () => n.send(reloadingMessage(now() / 1000n)),
    stopping: status => n.send(stoppingMessage(status)),
  }
}
