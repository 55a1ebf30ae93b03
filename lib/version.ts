/** The package version, read once from package.json (the single source of truth), and what `--version` tells. */
import { createRequire } from 'node:module'
import { nativeAvailable, nativeLoadFailure, nativeOrigin } from './native/addon.js'

export const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version

/**
 * `tcpproxy --version`: the version, then one line each for the native addon
 * (which binary, or why none), the relay thread and transparent proxying, so
 * a user sees what the installation gives without reading a log.
 */
export function versionText(): string {
  const lines = [`tcpproxy ${VERSION}`]
  if (nativeAvailable()) {
    const o = nativeOrigin() as { path: string; kind: string }
    lines.push(
      `native addon: ${o.kind}, ${o.path}`,
      'relay thread: available',
      'transparent proxying: available (binding needs CAP_NET_ADMIN)',
    )
  } else {
    lines.push(
      `native addon: not loaded: ${nativeLoadFailure()} (npm rebuild tcpproxy builds it from source: python3, make and a C compiler)`,
      'relay thread: unavailable (no native addon): connections are relayed in the event loop',
      'transparent proxying: unavailable (no native addon)',
    )
  }
  return lines.join('\n')
}
