import { ignoreSignals, type SignalProcess } from './signals.js'

/**
 * Node/V8 flags for the processes that relay: the workers and the
 * background daemon (each started by us, so it can be given flags; a
 * foreground single process takes what `node` was started with).
 *
 * `--max-semi-space-size=2` (MiB): V8 grows its young generation up to
 * 16 MiB per semi-space when many objects survive a scavenge, which is
 * exactly what opening thousands of connections looks like; those pages
 * stay committed. Measured with 5,000 idle relayed connections
 * (bench/RESULTS.md, Profile): 11.1 KiB RSS per connection, of which
 * 4.5 KiB was young-generation growth; capped at 2 MiB, 6.8 KiB. The
 * relay's garbage is small objects (chunks are off-heap), so the smaller
 * young generation cost no throughput in the same measurement (CPU s per
 * GB relayed 0.49 vs 0.56, in the noise).
 * Flags given to `node` itself come after these and win.
 */
export const RELAY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2']


/**
 * Node options that open a debugger, or say where one would listen. A
 * debugger in any tcpproxy process (the root supervisor above all) would let
 * whoever reaches its port run code as that process, so none is ever
 * honoured: not on the command line of a child, not from NODE_OPTIONS.
 */
const INSPECTOR_FLAG = /^--(inspect|debug)(-brk|-wait|-port|-publish-uid)?(=|$)/
/** The ones that may take their value as the next word. */
const INSPECTOR_VALUE_FLAGS = new Set(['--inspect-port', '--debug-port', '--inspect-publish-uid'])

/** `args` (an execArgv) without inspector flags and their values. */
export function withoutInspectorFlags(args: readonly string[]): string[] {
  const kept: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string
    if (!INSPECTOR_FLAG.test(a)) kept.push(a)
    else if (INSPECTOR_VALUE_FLAGS.has(a)) i++
  }
  return kept
}

/** The flags a relaying child process is started with: ours, then this process's own (no inspector). */
export function relayExecArgv(own: readonly string[]): string[] {
  return [...RELAY_NODE_FLAGS, ...withoutInspectorFlags(own)]
}

/**
 * A NODE_OPTIONS value without inspector flags; unchanged (quoting and all)
 * when it has none, undefined when nothing is left.
 */
export function nodeOptionsWithoutInspector(value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const words = value.split(/\s+/).filter(Boolean)
  const kept = withoutInspectorFlags(words)
  if (kept.length === words.length) return value
  return kept.length === 0 ? undefined : kept.join(' ')
}

/** What refuseDebugger() needs of a process. */
export interface DebuggerTarget extends Pick<SignalProcess, 'on'> {
  env: NodeJS.ProcessEnv
}

/**
 * No debugger in this process or the ones it starts. A listener for SIGUSR1
 * replaces Node's own, which opens the inspector on 127.0.0.1:9229; USR2,
 * whose default would end the process, is ignored too (`pkill -USR2` from
 * a logrotate script must not stop the service). An inspector that
 * NODE_OPTIONS or a flag opened before our code ran is closed, and the
 * flags are taken out of the environment every child inherits (workers,
 * the background daemon, handlers and access control programs).
 */
export function refuseDebugger(proc: DebuggerTarget, inspector: { url(): string | undefined; close(): void } | null): void {
  ignoreSignals(proc, ['SIGUSR1', 'SIGUSR2'])
  if (inspector !== null && inspector.url() !== undefined) inspector.close()
  const options = nodeOptionsWithoutInspector(proc.env['NODE_OPTIONS'])
  if (options === undefined) delete proc.env['NODE_OPTIONS']
  else proc.env['NODE_OPTIONS'] = options
}
