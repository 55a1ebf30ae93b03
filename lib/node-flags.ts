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

/** The flags a relaying child process is started with: ours, then this process's own. */
export function relayExecArgv(own: readonly string[]): string[] {
  return [...RELAY_NODE_FLAGS, ...own]
}
