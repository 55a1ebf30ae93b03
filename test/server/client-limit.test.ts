import t from 'tap'
import fc from 'fast-check'
import { ClientLimit } from '../../lib/server/client-limit.js'

t.test('max-per-client N: the N+1st concurrent session of a client is refused, others are not', async t => {
  const limit = new ClientLimit(2)
  t.equal(limit.acquire('127.0.0.2'), true)
  t.equal(limit.acquire('127.0.0.2'), true)
  t.equal(limit.acquire('127.0.0.2'), false)
  t.equal(limit.sessions('127.0.0.2'), 2, 'a refused session is not counted')
  t.equal(limit.acquire('127.0.0.3'), true, 'another client has its own count')
  limit.release('127.0.0.2')
  t.equal(limit.acquire('127.0.0.2'), true, 'a session that ended makes room')
})

t.test('acquire(client, true): counted even over the limit (a session that may not be refused)', async t => {
  const limit = new ClientLimit(1)
  t.equal(limit.acquire('127.0.0.2'), true)
  t.equal(limit.acquire('127.0.0.2', true), true)
  t.equal(limit.sessions('127.0.0.2'), 2)
  limit.release('127.0.0.2')
  t.equal(limit.acquire('127.0.0.2'), false, 'still one open: at the limit')
})

t.test('IPv4-mapped IPv6 counts as its IPv4 form', async t => {
  const limit = new ClientLimit(1)
  t.equal(limit.acquire('::ffff:127.0.0.2'), true)
  t.equal(limit.acquire('127.0.0.2'), false)
  limit.release('127.0.0.2')
  t.equal(limit.sessions('::ffff:127.0.0.2'), 0)
})

t.test('nothing is kept for clients that have gone', async t => {
  const limit = new ClientLimit(3)
  let admitted = 0
  for (let i = 0; i < 1000; i++) if (limit.acquire(`10.0.${i >> 8}.${i & 255}`)) admitted++
  t.equal(admitted, 1000)
  t.equal(limit.clients, 1000)
  for (let i = 0; i < 1000; i++) limit.release(`10.0.${i >> 8}.${i & 255}`)
  t.equal(limit.clients, 0)
  limit.release('10.0.0.1')
  t.equal(limit.sessions('10.0.0.1'), 0, 'a release too many does nothing')
  t.equal(limit.clients, 0)
})

t.test('0 means no limit, and sessions are counted all the same for a reload that sets one', async t => {
  const limit = new ClientLimit(0)
  for (let i = 0; i < 5; i++) t.equal(limit.acquire('::1'), true)
  limit.setLimit(5)
  t.equal(limit.acquire('::1'), false, 'the open sessions count against the new limit')
  limit.release('::1')
  t.equal(limit.acquire('::1'), true)
})

t.test('property: at most N open per client, counts match a model, the map empties when all have ended', async t => {
  const step = fc.record({ client: fc.constantFrom('127.0.0.1', '::ffff:127.0.0.1', '127.0.0.2', '::1'), open: fc.boolean() })
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.array(step, { maxLength: 80 }), (n, steps) => {
      const limit = new ClientLimit(n)
      const model = new Map<string, number>()
      const held: string[] = []
      for (const s of steps) {
        const key = s.client.replace('::ffff:', '')
        const count = model.get(key) ?? 0
        if (s.open) {
          if (limit.acquire(s.client) !== count < n) return false
          if (count < n) {
            model.set(key, count + 1)
            held.push(s.client)
          }
        } else {
          const at = held.findIndex(c => c.replace('::ffff:', '') === key)
          if (at < 0) continue
          held.splice(at, 1)
          limit.release(s.client)
          model.set(key, count - 1)
        }
        if (limit.sessions(s.client) !== model.get(key)) return false
      }
      for (const c of held) limit.release(c)
      return limit.clients === 0
    }),
    { seed: 0xc11, numRuns: 400 },
  )
  t.pass()
})
