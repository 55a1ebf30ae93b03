import t from 'tap'
import {
  parseNotifySocket,
  readyMessage,
  reloadingMessage,
  sessionsStatus,
  statusMessage,
  stoppingMessage,
} from '../../lib/systemd/notify.js'

t.test('the messages systemd expects', async t => {
  t.equal(readyMessage(4711), 'READY=1\nMAINPID=4711\n')
  t.equal(readyMessage(4711, 'serving 2 services'), 'READY=1\nMAINPID=4711\nSTATUS=serving 2 services\n')
  t.equal(reloadingMessage(123456789012345n), 'RELOADING=1\nMONOTONIC_USEC=123456789012345\n')
  t.equal(reloadingMessage(1n, 'reloading'), 'RELOADING=1\nMONOTONIC_USEC=1\nSTATUS=reloading\n')
  t.equal(stoppingMessage(), 'STOPPING=1\n')
  t.equal(stoppingMessage('stopping: 3 sessions open'), 'STOPPING=1\nSTATUS=stopping: 3 sessions open\n')
})

t.test('a STATUS text cannot smuggle in an assignment of its own', async t => {
  t.equal(statusMessage('x\nREADY=1\r\nSTOPPING=1'), 'STATUS=x READY=1 STOPPING=1\n')
})

t.test('the session count as a status', async t => {
  t.equal(sessionsStatus(0, 1), '0 sessions open')
  t.equal(sessionsStatus(1, 1), '1 session open')
  t.equal(sessionsStatus(5, 2), '5 sessions open, 2 workers')
})

t.test('NOTIFY_SOCKET: a path, an abstract name, or nothing', async t => {
  t.equal(parseNotifySocket(undefined), null)
  t.equal(parseNotifySocket(''), null)
  t.same(parseNotifySocket('/run/systemd/notify'), { kind: 'path', path: '/run/systemd/notify' })
  t.same(parseNotifySocket('@/org/freedesktop/systemd1/notify/123'), { kind: 'abstract', name: '/org/freedesktop/systemd1/notify/123' })
})

t.test('NOTIFY_SOCKET that cannot be used: one line naming it', async t => {
  t.throws(() => parseNotifySocket('run/notify'), { code: 'ERR_CONFIG', message: 'NOTIFY_SOCKET="run/notify": not an absolute path or @name' })
  t.throws(() => parseNotifySocket('@'), { message: 'NOTIFY_SOCKET="@": an abstract name must follow @' })
  t.throws(() => parseNotifySocket('vsock:2:1234'), { message: 'NOTIFY_SOCKET="vsock:2:1234": vsock is not supported, only unix sockets' })
  t.doesNotThrow(() => parseNotifySocket('/' + 'x'.repeat(106)))
  t.throws(() => parseNotifySocket('/' + 'x'.repeat(107)), { message: /: longer than 107 bytes$/ })
})
