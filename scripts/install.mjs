#!/usr/bin/env node
// The package's install script, and so what `npm rebuild tcpproxy` does.
// Where the prebuilt addon for this platform loads (linux-x64, linux-arm64,
// linux-x64-musl) there is nothing to build, and it says so: an install with
// --ignore-scripts, or by a package manager that runs no install scripts,
// gets the same result. Otherwise it builds the addon from lib/native with
// node-gyp, and a failed build fails the install with the reason, instead of
// leaving a tcpproxy without its relay thread and transparent proxying
// unnoticed. `npm rebuild tcpproxy --build-from-source` always builds.
// In a checkout, `npm ci` runs this before dist/ exists: it builds.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const say = line => console.error(`tcpproxy: ${line}`)
const fromSource = process.env.npm_config_build_from_source === 'true'

if (process.platform !== 'linux') {
  say(`the native addon is for Linux only: on ${process.platform}, connections are relayed in the event loop and transparent proxying is unavailable`)
  process.exit(0)
}

if (!fromSource) {
  const native = await import('../dist/native/addon.js').catch(() => null)
  if (native !== null && native.loadNative(native.prebuildPath())) {
    say(`using the prebuilt native addon ${native.nativeOrigin().path}; nothing to build (--build-from-source builds it)`)
    process.exit(0)
  }
  if (native !== null) say(`no prebuilt native addon loads here (${native.nativeLoadFailure()}): building it from source`)
}

// npm gives its own node-gyp to scripts; outside npm, the one on PATH.
const gyp = process.env.npm_config_node_gyp
const [cmd, ...args] = gyp ? [process.execPath, gyp] : ['node-gyp']
const r = spawnSync(cmd, [...args, 'rebuild', '-C', fileURLToPath(new URL('../lib/native', import.meta.url))], { stdio: 'inherit' })
if (r.status !== 0) {
  say(
    `building the native addon failed (${r.error?.message ?? `node-gyp exit ${r.status ?? r.signal}`}): it needs python3, make and a C compiler. ` +
      'Without it tcpproxy relays connections in the event loop and refuses transparent proxying; install them and run `npm rebuild tcpproxy`.',
  )
  process.exit(1)
}
