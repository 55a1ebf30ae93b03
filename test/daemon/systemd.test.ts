import t from 'tap'
import { activate, lifecycle, takeSystemdEnv } from '../../lib/daemon/systemd.js'
import { nativeAddon } from '../../lib/native/addon.js'
import type { LogEntry, Logger } from '../../lib/log/logger.js'
import { syslogReceiver } from '../fixtures/harness.js'

function recorder(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = []
  return { debug: false, entries, log: e => void entries.push(e) }
}

t.test("systemd's variables are taken out of the environment children inherit", async t => {
  const env: Record<string, string | undefined> = { PATH: '/bin', NOTIFY_SOCKET: '/run/n', LISTEN_FDS: '1', LISTEN_PID: '7', LISTEN_FDNAMES: 'web' }
  t.same(takeSystemdEnv(env), { NOTIFY_SOCKET: '/run/n', LISTEN_FDS: '1', LISTEN_PID: '7', LISTEN_FDNAMES: 'web' })
  t.same(env, { PATH: '/bin' })
})

t.test('not activated: nothing happens; variables for another process: a configuration error', async t => {
  const log = recorder()
  activate({}, 42, [{ address: null, port: 80 }], log)
  t.same(log.entries, [])
  t.throws(() => activate({ LISTEN_FDS: '1', LISTEN_PID: '41' }, 42, [], log), { code: 'ERR_CONFIG' })
})

t.test('the lifecycle messages, MONOTONIC_USEC in microseconds', { skip: nativeAddon() === undefined ? 'the addon is not built' : false }, async t => {
  const sink = await syslogReceiver(t)
  const life = lifecycle({ NOTIFY_SOCKET: sink.sock }, 4711, recorder(), () => 5_000_999n)
  life.ready('0 sessions open')
  life.reloading()
  life.stopping('stopping, 2 sessions open')
  for (let i = 0; i < 250 && sink.lines.length < 3; i++) await new Promise(r => setTimeout(r, 20))
  t.same(sink.lines, ['READY=1\nMAINPID=4711\nSTATUS=0 sessions open\n', 'RELOADING=1\nMONOTONIC_USEC=5000\n', 'STOPPING=1\nSTATUS=stopping, 2 sessions open\n'])
})
