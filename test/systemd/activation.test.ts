import t from 'tap'
import { ACTIVATION_VARS, LISTEN_FDS_START, matchListeners, parseListenFds, type BoundFd } from '../../lib/systemd/activation.js'

t.test('not activated: no sockets', async t => {
  t.same(parseListenFds({}, 100), [])
  t.same(parseListenFds({ LISTEN_FDS: '' }, 100), [])
})

t.test('the passed sockets start at 3, named or unknown', async t => {
  t.equal(LISTEN_FDS_START, 3)
  t.same(parseListenFds({ LISTEN_FDS: '2', LISTEN_PID: '100' }, 100), [
    { fd: 3, name: 'unknown' },
    { fd: 4, name: 'unknown' },
  ])
  t.same(parseListenFds({ LISTEN_FDS: '2', LISTEN_PID: '100', LISTEN_FDNAMES: 'smtp:submission' }, 100), [
    { fd: 3, name: 'smtp' },
    { fd: 4, name: 'submission' },
  ])
  t.same(parseListenFds({ LISTEN_FDS: '0', LISTEN_PID: '100', LISTEN_FDNAMES: '' }, 100), [], 'zero sockets: the empty list of names')
  t.same(ACTIVATION_VARS, ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES'])
})

t.test('inconsistent variables: one line naming the variable', async t => {
  const e = (env: Record<string, string>) => () => parseListenFds(env, 100)
  t.throws(e({ LISTEN_FDS: 'two', LISTEN_PID: '100' }), { code: 'ERR_CONFIG', message: 'socket activation: LISTEN_FDS="two" is not a number of sockets (0-4096)' })
  t.throws(e({ LISTEN_FDS: '5000', LISTEN_PID: '100' }), { message: 'socket activation: LISTEN_FDS="5000" is not a number of sockets (0-4096)' })
  t.throws(e({ LISTEN_FDS: '1' }), { message: 'socket activation: LISTEN_FDS=1 without LISTEN_PID' })
  t.throws(e({ LISTEN_FDS: '1', LISTEN_PID: '-1' }), { message: 'socket activation: LISTEN_PID="-1" is not a process id' })
  t.throws(e({ LISTEN_FDS: '1', LISTEN_PID: '0' }), { message: 'socket activation: LISTEN_PID="0" is not a process id' })
  t.throws(e({ LISTEN_FDS: '1', LISTEN_PID: '99' }), {
    message: 'socket activation: LISTEN_PID=99 is not this process (100): the sockets were meant for another one',
  })
  t.throws(e({ LISTEN_FDS: '1', LISTEN_PID: '100', LISTEN_FDNAMES: '' }), { message: 'socket activation: LISTEN_FDNAMES="" names 0 socket(s), LISTEN_FDS=1' })
  t.throws(e({ LISTEN_FDS: '2', LISTEN_PID: '100', LISTEN_FDNAMES: 'a:b:c' }), {
    message: 'socket activation: LISTEN_FDNAMES="a:b:c" names 3 socket(s), LISTEN_FDS=2',
  })
})

const fd = (n: number, host: string, port: number, v6only?: boolean): BoundFd => ({ fd: n, name: 'unknown', host, port, ...(v6only === undefined ? {} : { v6only }) })

t.test('exact addresses first, then wildcards of the right family', async t => {
  const fds = [fd(3, '127.0.0.1', 25), fd(4, '::', 80), fd(5, '0.0.0.0', 443), fd(6, '::1', 25), fd(7, '192.0.2.1', 9)]
  const r = matchListeners(fds, [
    { address: '127.0.0.1', port: 25 },
    { address: '0:0:0:0:0:0:0:1', port: 25 },
    { address: null, port: 80 },
    { address: '10.0.0.1', port: 80 },
    { address: '2001:db8::1', port: 443 },
    { address: '10.0.0.1', port: 443 },
    { address: null, port: 8080 },
    { address: '127.0.0.1', port: 9 },
  ])
  t.same(
    r.served.map(s => [s.spec.address, s.spec.port, s.fd]),
    [
      ['127.0.0.1', 25, 3],
      ['0:0:0:0:0:0:0:1', 25, 6],
      [null, 80, 4],
      ['10.0.0.1', 80, 4],
      ['10.0.0.1', 443, 5],
    ],
  )
  t.same(r.toBind, [
    { address: '2001:db8::1', port: 443 },
    { address: null, port: 8080 },
    { address: '127.0.0.1', port: 9 },
  ])
  t.same(r.unused.map(f => f.fd), [7])
})

t.test('a wildcard spec prefers dual stack, then 0.0.0.0, then IPv6-only', async t => {
  t.same(matchListeners([fd(3, '::', 1, true), fd(4, '0.0.0.0', 1), fd(5, '::', 1)], [{ address: null, port: 1 }]).served, [{ spec: { address: null, port: 1 }, fd: 5 }])
  t.same(matchListeners([fd(3, '::', 1, true), fd(4, '0.0.0.0', 1)], [{ address: null, port: 1 }]).served[0]?.fd, 4)
  t.same(matchListeners([fd(3, '::', 1, true)], [{ address: null, port: 1 }]).served[0]?.fd, 3)
})

t.test('an IPv6-only wildcard takes no IPv4 spec; a transparent spec is always bound', async t => {
  const r = matchListeners([fd(3, '::', 1, true)], [{ address: '127.0.0.1', port: 1 }, { address: '::1', port: 1 }, { address: '::1', port: 1, transparent: true }])
  t.same(r.served, [{ spec: { address: '::1', port: 1 }, fd: 3 }])
  t.same(r.toBind, [{ address: '127.0.0.1', port: 1 }, { address: '::1', port: 1, transparent: true }])
  t.same(r.unused, [])
})
