/**
 * What a signal does to a tcpproxy process, in one place (in the manner of
 * close-with-grace): which signals act, which are ignored, and the
 * installing and removing of the listeners.
 *
 * - A serving daemon (lib/daemon/standalone.ts): HUP reloads the
 *   configuration; the first INT or TERM stops gracefully, a second one
 *   stops now (daemonSignals).
 * - Ignored (ignoreSignals), so that their default action never happens:
 *   USR1 (Node opens its inspector) and USR2 (the process ends) in every
 *   process (lib/daemon/node-flags.ts); HUP before there is anything to
 *   reload and in inetd mode (lib/main.ts); HUP, INT and TERM in a worker,
 *   whose supervisor acts on them (lib/daemon/worker.ts).
 */

export type SignalListener = (signal: NodeJS.Signals) => void

/** What installSignals needs of a process (`process` itself). */
export interface SignalProcess {
  on(signal: NodeJS.Signals, listener: SignalListener): unknown
  off(signal: NodeJS.Signals, listener: SignalListener): unknown
}

/** The action for each signal that has one. */
export type SignalActions = Partial<Record<NodeJS.Signals, SignalListener>>

/** Put `actions` in place on `proc`; returns the function that takes them all away again. */
export function installSignals(proc: SignalProcess, actions: SignalActions): () => void {
  const installed = Object.entries(actions) as [NodeJS.Signals, SignalListener][]
  for (const [signal, listener] of installed) proc.on(signal, listener)
  return () => {
    for (const [signal, listener] of installed) proc.off(signal, listener)
  }
}

const ignore = (): void => {}

/** A listener that does nothing for each of `signals`, for good: their default actions never happen. */
export function ignoreSignals(proc: Pick<SignalProcess, 'on'>, signals: readonly NodeJS.Signals[]): void {
  for (const signal of signals) proc.on(signal, ignore)
}

/** What a serving daemon does on a signal. */
export interface DaemonActions {
  /** SIGHUP: read the configuration again. */
  reload(): void
  /** The first SIGINT or SIGTERM: stop, letting open sessions finish. */
  stop(signal: NodeJS.Signals): void
  /** Any SIGINT or SIGTERM after it: stop now. */
  stopNow(): void
}

/** A serving daemon's signals (see the top of this file); returns their removal. */
export function daemonSignals(proc: SignalProcess, actions: DaemonActions): () => void {
  let stopping = false
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return actions.stopNow()
    stopping = true
    actions.stop(signal)
  }
  return installSignals(proc, { SIGHUP: () => actions.reload(), SIGINT: stop, SIGTERM: stop })
}
