import t from 'tap'
import { once } from 'node:events'
import { spawnSync } from 'node:child_process'
import { connect, createServer, type Socket } from 'node:net'
import { setKeepalive } from '../../lib/session/keepalive.js'

/** The keepalive timer ss(8) shows for the socket from local port `port`, or null. */
function keepaliveTimer(port: number): string | null {
  const out = spawnSync('ss', ['-tnoH', 'state', 'established', `( sport = :${port} )`]).stdout.toString()
  return /timer:\((keepalive,[^)]*)\)/.exec(out)?.[1] ?? null
}

const noSs = spawnSync('ss', ['-V']).error ? 'ss is not installed (apt-get install iproute2)' : false

t.test('seconds: SO_KEEPALIVE with the first probe after that long idle; 0 leaves the socket alone', { skip: noSs }, async t => {
  const accepted: Socket[] = []
  const server = createServer(s => accepted.push(s)).listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const a = connect({ port: (server.address() as { port: number }).port, host: '127.0.0.1' })
  const b = connect({ port: (server.address() as { port: number }).port, host: '127.0.0.1' })
  await Promise.all([once(a, 'connect'), once(b, 'connect')])
  t.teardown(() => [a, b, ...accepted].forEach(s => s.destroy()))
  setKeepalive([a], 0)
  setKeepalive([b], 600)
  t.equal(keepaliveTimer(a.localPort as number), null, 'off')
  // The timer counts down from 600 s (10min).
  t.match(keepaliveTimer(b.localPort as number), /^keepalive,(9min|10min)/)
})
