// lib/session/observer.ts: the observer that records nothing.
import t from 'tap'
import { NO_OBSERVER } from '../../lib/session/observer.js'

t.test('NO_OBSERVER records nothing and passes the relay result on as it is', async t => {
  const result = { received: 1, sent: 2, closedBy: 'client' as const, error: null }
  NO_OBSERVER.denied('acp')
  NO_OBSERVER.handler('127.0.0.1', 1)
  NO_OBSERVER.connectFailed('127.0.0.1:9')
  NO_OBSERVER.relaying('127.0.0.1:9', { abort: () => {}, counts: () => ({ received: 0, sent: 0, halfClosed: false }) }, '127.0.0.1', 1)
  t.equal(NO_OBSERVER.ended(result), result)
})
