#!/usr/bin/env node
// Build the native addon's prebuilt binaries into prebuilds/<platform>-<arch>[-musl]/,
// which the package ships and lib/native/addon.ts loads: an installed tcpproxy then
// needs no compiler and no install script. Run by `npm pack` (prepack); the
// binaries are never committed (.gitignore), and postpack removes them again
// (`--clean`) so a checkout keeps loading its own build from source.
//
//   node scripts/prebuild.mjs              build every target it can (linux-x64 must build)
//   node scripts/prebuild.mjs --toolchains only install the missing compilers (root, apt-get)
//   node scripts/prebuild.mjs --clean      remove prebuilds/
//
// The compilers are Debian's: gcc for x86-64, gcc-aarch64-linux-gnu for arm64
// and musl-tools for x86-64 musl (Alpine). As root with apt-get, missing ones
// are installed; otherwise an optional target is skipped with one line.
// Each target is compiled straight with its gcc: sources, defines and flags
// come from lib/native/binding.gyp (node-gyp remains the build from source),
// Node-API's headers from the node-api-headers package. A Node-API addon
// links against no Node library: its napi_* symbols are resolved when Node
// loads it, so a cross compiler and the C library are all a target needs.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const out = join(root, 'prebuilds')
const native = join(root, 'lib/native')
const say = line => console.error(`prebuild: ${line}`)

// The host's own target is required; the others are skipped when their compiler cannot be had.
const hostArch = process.arch
const targets = [
  { name: 'linux-x64', cc: 'x86_64-linux-gnu-gcc', apt: hostArch === 'x64' ? 'gcc' : 'gcc-x86-64-linux-gnu', machine: 0x3e, required: hostArch === 'x64' },
  { name: 'linux-arm64', cc: 'aarch64-linux-gnu-gcc', apt: hostArch === 'arm64' ? 'gcc' : 'gcc-aarch64-linux-gnu', machine: 0xb7, required: hostArch === 'arm64' },
  // musl-gcc builds for the host's architecture only.
  ...(hostArch === 'x64' ? [{ name: 'linux-x64-musl', cc: 'musl-gcc', apt: 'musl-tools', machine: 0x3e, musl: 'x86_64-linux-musl' }] : []),
]

const has = cmd => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0
const run = (cmd, args, options = {}) => spawnSync(cmd, args, { encoding: 'utf8', ...options })

/** Install the Debian packages of the missing compilers, as root with apt-get; false when it cannot. */
function installToolchains() {
  const missing = [...new Set(targets.filter(t => !has(t.cc)).map(t => t.apt))]
  if (missing.length === 0) return true
  if (process.getuid?.() !== 0 || !has('apt-get')) {
    say(`cannot install ${missing.join(' ')} (needs root and apt-get)`)
    return false
  }
  say(`installing ${missing.join(' ')}`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const install = () => run('apt-get', ['install', '-y', '-qq', ...missing], { env, stdio: ['ignore', 'ignore', 'inherit'] }).status === 0
  // A fresh machine may have no package lists yet.
  return install() || (run('apt-get', ['update', '-qq'], { env, stdio: 'inherit' }).status === 0 && install())
}

/** binding.gyp is a Python literal; with its comments removed this one is JSON. */
function gypTarget() {
  const text = readFileSync(join(native, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '')
  return JSON.parse(text).targets[0]
}

/**
 * musl's include directory has no Linux kernel headers (<linux/capability.h>);
 * a directory with just the host's linux/, asm/ and asm-generic/ stands in for
 * Alpine's linux-headers package. They are C-library independent.
 */
function kernelHeaders() {
  const dir = mkdtempSync(join(tmpdir(), 'tcpproxy-kernel-headers-'))
  symlinkSync('/usr/include/linux', join(dir, 'linux'))
  symlinkSync('/usr/include/asm-generic', join(dir, 'asm-generic'))
  symlinkSync('/usr/include/x86_64-linux-gnu/asm', join(dir, 'asm'))
  return dir
}

/** The C library a target links against, for the symbol check. */
const libcOf = t => (t.musl ? `/usr/lib/${t.musl}/libc.so` : run(t.cc, ['-print-file-name=libc.so.6']).stdout.trim())

/** Undefined symbols of `file` that neither its C library nor Node-API defines: each would make dlopen fail. */
function unresolved(file, libc) {
  const names = (args, f) => run('nm', ['-D', ...args, f]).stdout.split('\n').map(l => l.trim().split(/\s+/))
  const defined = new Set(names(['--defined-only'], libc).map(w => w[2]?.replace(/@.*/, '')))
  return names(['--undefined-only'], file)
    .filter(w => w[0] === 'U')
    .map(w => w[1].replace(/@.*/, ''))
    .filter(s => !/^(napi|node_api)_/.test(s) && !defined.has(s))
}

function build(t, gyp, headers) {
  const dir = join(out, t.name)
  mkdirSync(dir, { recursive: true })
  const file = join(dir, 'tcpproxy_native.node')
  const kernel = t.musl ? kernelHeaders() : null
  const args = [
    '-shared', '-fPIC', '-pthread', '-O2',
    ...gyp.cflags,
    ...gyp.defines.map(d => `-D${d}`),
    `-DNODE_GYP_MODULE_NAME=${gyp.target_name}`,
    '-I', headers,
    ...(kernel ? ['-isystem', kernel] : []),
    ...gyp.sources.map(s => join(native, s)),
    '-o', file, '-Wl,-s',
  ]
  const r = run(t.cc, args, { stdio: ['ignore', 'inherit', 'inherit'] })
  if (kernel) rmSync(kernel, { recursive: true })
  if (r.status !== 0) throw new Error(`${t.cc} failed (exit ${r.status ?? r.signal})`)
  const bytes = readFileSync(file)
  // ELF e_machine, at offset 18: the compiler made what the directory name says.
  if (bytes.readUInt16LE(18) !== t.machine) throw new Error(`${relative(root, file)} is not a ${t.name} binary`)
  const missing = unresolved(file, libcOf(t))
  if (missing.length > 0) throw new Error(`${relative(root, file)} needs symbols its C library lacks: ${missing.join(' ')}`)
  const glibc = [...bytes.toString('latin1').matchAll(/GLIBC_(\d+)\.(\d+)/g)].map(m => [Number(m[1]), Number(m[2])])
  const floor = glibc.reduce((a, b) => (b[0] > a[0] || (b[0] === a[0] && b[1] > a[1]) ? b : a), [0, 0])
  say(`${relative(root, file)}: ${statSync(file).size} bytes${t.musl ? ', musl' : `, needs glibc ${floor.join('.')} or later`}`)
  return file
}

/** The host's own binary must load in this Node and export the relay thread. */
function checkLoads(file) {
  const probe = `const a = require(${JSON.stringify(file)}); if (typeof a.relayInit !== 'function') process.exit(3)`
  const r = run(process.execPath, ['-e', probe], { stdio: ['ignore', 'inherit', 'inherit'] })
  if (r.status !== 0) throw new Error(`${relative(root, file)} does not load in Node ${process.version}`)
}

const mode = process.argv[2]
if (mode === '--clean') {
  rmSync(out, { recursive: true, force: true })
} else if (mode === '--toolchains') {
  installToolchains()
} else {
  if (process.platform !== 'linux') throw new Error('prebuilds are made on Linux (Debian\'s compilers)')
  installToolchains()
  rmSync(out, { recursive: true, force: true })
  const gyp = gypTarget()
  const headers = createRequire(import.meta.url)('node-api-headers').include_dir
  for (const t of targets) {
    if (!has(t.cc)) {
      if (t.required) throw new Error(`${t.cc} is missing (apt-get install ${t.apt}): the ${t.name} prebuild is required`)
      say(`skipping ${t.name}: ${t.cc} is missing (apt-get install ${t.apt} as root)`)
      continue
    }
    const file = build(t, gyp, headers)
    if (t.name === `linux-${hostArch}`) checkLoads(file)
  }
  if (!existsSync(out)) throw new Error('no prebuild was made')
}
