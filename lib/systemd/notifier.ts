/**
 * Telling systemd how the service is doing (sd_notify(3), `Type=notify`):
 * sends the messages of notify.ts to NOTIFY_SOCKET through the addon's
 * notifySend (Node has no unix datagram sockets).
 *
 * Without the addon nothing is sent: one -INFO line says that readiness
 * cannot be reported (the unit then times out in `activating`; use
 * `Type=simple` or build the addon). No process is started per message,
 * nor `systemd-notify` once: from another pid, systemd accepts it only
 * under `NotifyAccess=all`, which the shipped unit does not set. A failed
 * send is one -INFO line, the first time only; tcpproxy serves on.
 */
import { errorText } from '../errors.js'
import type { Logger } from '../log/logger.js'
import type { NativeAddon } from '../native/addon.js'
import type { NotifyTarget } from './notify.js'

export interface Notifier {
  /** Send one message (assignments, as notify.ts builds them). */
  send(message: string): void
}

/** A notifier for `target` (null: not started by systemd, nothing to send). */
export function notifier(target: NotifyTarget | null, addon: Pick<NativeAddon, 'notifySend'> | undefined, log: Logger): Notifier {
  if (target === null) return { send: () => {} }
  const where = target.kind === 'path' ? target.path : `@${target.name}`
  if (addon === undefined) {
    log.log({ tag: '-INFO', event: 'notify-unavailable', text: `NOTIFY_SOCKET=${where}: readiness cannot be reported to systemd without the native addon` })
    return { send: () => {} }
  }
  const address = Buffer.from(target.kind === 'path' ? target.path : target.name)
  let failed = false
  return {
    send(message) {
      try {
        addon.notifySend(address, target.kind === 'abstract', Buffer.from(message))
      } catch (err) {
        if (failed) return
        failed = true
        log.log({ tag: '-INFO', event: 'notify-failed', text: `can't notify systemd at ${where}: ${errorText(err)} (further failures are not logged)` })
      }
    },
  }
}
