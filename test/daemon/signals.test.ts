/**
 * lib/daemon/signals.ts with real signals: sent to this process with the
 * module's listeners installed, and to a child process that would die of
 * them without it.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { daemonSignals, ignoreSignals, installSignals } from '../../lib/daemon/signals.js'

// The child runs the build (npx tsc), as bin/tcpproxy does.
const MODULE = fileURLToPath(new URL('../../dist/daemon/signals.js', import.meta.url))
const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

/** Send `signal` to this process and give its listeners the turn they run in. */
async function raise(signal: NodeJS.Signals): Promise<void> {
  process.kill(process.pid, signal)
  // Signals are delivered to JavaScript through the event loop: bounded wait.
  for (let i = 0; i < 50; i++) await sleep(10)
}

t.test('daemonSignals: HUP reloads, the first INT or TERM stops gracefully, any later one stops now', async t => {
  const seen: string[] = []
  const before = ['SIGHUP', 'SIGINT', 'SIGTERM'].map(s => process.listenerCount(s))
  const remove = daemonSignals(process, {
    reload: () => seen.push('reload'),
    stop: signal => seen.push(`stop ${signal}`),
    stopNow: () => seen.push('now'),
  })
  await raise('SIGHUP')
  await raise('SIGHUP')
  t.same(seen, ['reload', 'reload'], 'each HUP is a reload')
  await raise('SIGTERM')
  t.same(seen.slice(2), ['stop SIGTERM'], 'the first TERM: a graceful stop, told which signal')
  await raise('SIGINT')
  await raise('SIGTERM')
  t.same(seen.slice(3), ['now', 'now'], 'INT or TERM after it: now')
  remove()
  t.same(['SIGHUP', 'SIGINT', 'SIGTERM'].map(s => process.listenerCount(s)), before, 'removed: the listeners are gone')
})

t.test('daemonSignals: INT first is a graceful stop too', async t => {
  const seen: string[] = []
  const remove = daemonSignals(process, { reload: () => {}, stop: signal => seen.push(signal), stopNow: () => seen.push('now') })
  t.teardown(remove)
  await raise('SIGINT')
  t.same(seen, ['SIGINT'])
})

t.test('installSignals: only the signals given, each with its listener, until removed', async t => {
  const seen: string[] = []
  const before = process.listenerCount('SIGUSR2')
  const remove = installSignals(process, { SIGUSR2: s => seen.push(s) })
  t.equal(process.listenerCount('SIGUSR1'), 0, 'no other signal')
  await raise('SIGUSR2')
  t.same(seen, ['SIGUSR2'])
  remove()
  t.equal(process.listenerCount('SIGUSR2'), before)
})

/** A node process that imports the module, runs `setup` (which gets `signals`), says "ready" and waits. */
function child(setup: string): { ready: Promise<void>; exited: Promise<number | string>; out: () => string; pid: () => number } {
  const script = `import(${JSON.stringify(MODULE)}).then(signals => { ${setup}; console.log('ready'); setTimeout(() => process.exit(0), 3000) })`
  const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  let ready!: () => void
  const readyP = new Promise<void>(r => (ready = r))
  c.stdout.on('data', d => {
    out += d
    if (out.includes('ready')) ready()
  })
  const exited = once(c, 'exit').then(([code, signal]) => (code ?? signal) as number | string)
  return { ready: readyP, exited, out: () => out, pid: () => c.pid as number }
}

t.test('a real process: HUP, USR1 and USR2 ignored do not end it; without the module HUP does', async t => {
  const kept = child(`signals.ignoreSignals(process, ['SIGHUP', 'SIGUSR1', 'SIGUSR2'])`)
  await Promise.race([kept.ready, kept.exited])
  for (const signal of ['SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) process.kill(kept.pid(), signal)
  t.equal(await kept.exited, 0, 'it ran on to its own exit')
  const bare = child(``)
  await Promise.race([bare.ready, bare.exited])
  process.kill(bare.pid(), 'SIGHUP')
  t.equal(await bare.exited, 'SIGHUP', 'the control: HUP ends a process that does not ignore it')
})

t.test('a real process: TERM logs and exits with the status the stop gives, a second signal cuts it short', async t => {
  const setup = `signals.daemonSignals(process, {
    reload: () => console.log('reloading'),
    stop: signal => { console.log('caught ' + signal + ', stopping'); setTimeout(() => process.exit(3), 500) },
    stopNow: () => process.exit(1),
  })`
  const graceful = child(setup)
  await Promise.race([graceful.ready, graceful.exited])
  process.kill(graceful.pid(), 'SIGHUP')
  await sleep(100)
  process.kill(graceful.pid(), 'SIGTERM')
  t.equal(await graceful.exited, 3)
  t.match(graceful.out(), /reloading\ncaught SIGTERM, stopping\n/)
  const cut = child(setup)
  await Promise.race([cut.ready, cut.exited])
  process.kill(cut.pid(), 'SIGINT')
  await sleep(100)
  process.kill(cut.pid(), 'SIGINT')
  t.equal(await cut.exited, 1, 'the second INT: now')
  t.match(cut.out(), /caught SIGINT, stopping\n/)
})

t.test('ignoreSignals in this process: USR2 does not end it', async t => {
  const before = process.listenerCount('SIGUSR2')
  ignoreSignals(process, ['SIGUSR2'])
  await raise('SIGUSR2')
  t.equal(process.listenerCount('SIGUSR2'), before + 1)
  t.pass('still running')
})
