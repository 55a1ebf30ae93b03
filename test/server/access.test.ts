import t from 'tap'
import fc from 'fast-check'
import { OPEN_ACCESS, accessChecker, accessDeniedText, addAccessLine, combineAccess, type AccessLists } from '../../lib/server/access.js'

t.test('no lines: every client may connect', async t => {
  const check = accessChecker(OPEN_ACCESS)
  t.same(check('192.0.2.1'), { allowed: true })
  t.same(check('2001:db8::1'), { allowed: true })
})

t.test('lines accumulate, in canonical form, without repeats', async t => {
  let lists: AccessLists = OPEN_ACCESS
  lists = addAccessLine(lists, 'allow', '10.0.0.0/8, 192.0.2.7')
  lists = addAccessLine(lists, 'allow', '2001:DB8::/32 10.0.0.0/8')
  lists = addAccessLine(lists, 'deny', '::ffff:10.9.0.0/112')
  t.same(lists, { allow: ['10.0.0.0/8', '192.0.2.7/32', '2001:db8::/32'], deny: ['10.9.0.0/16'] })
  t.same(OPEN_ACCESS, { allow: [], deny: [] }, 'the empty lists are not changed')
})

t.test('a bad item is an ERR_CONFIG error naming it (the caller adds the position)', async t => {
  t.throws(() => addAccessLine(OPEN_ACCESS, 'deny', '10.0.0.0/33'), { code: 'ERR_CONFIG', message: 'bad prefix length in "10.0.0.0/33" (0-32)' })
  t.throws(() => addAccessLine(OPEN_ACCESS, 'allow', ''), { code: 'ERR_CONFIG', message: 'empty address list' })
})

t.test('deny wins over allow; with allow lines a client must match one', async t => {
  let lists = addAccessLine(OPEN_ACCESS, 'allow', '127.0.0.0/8')
  lists = addAccessLine(lists, 'deny', '127.0.0.2')
  const check = accessChecker(lists)
  t.same(check('127.0.0.1'), { allowed: true })
  t.same(check('127.0.0.2'), { allowed: false, by: 'deny' })
  t.same(check('127.0.0.3'), { allowed: true })
  t.same(check('192.0.2.1'), { allowed: false, by: 'allow' })
  t.same(check('::1'), { allowed: false, by: 'allow' })
  const denyOnly = accessChecker(addAccessLine(OPEN_ACCESS, 'deny', '127.0.0.2'))
  t.same(denyOnly('127.0.0.2'), { allowed: false, by: 'deny' })
  t.same(denyOnly('127.0.0.1'), { allowed: true }, 'deny lines alone leave the others in')
})

t.test('IPv4-mapped IPv6 clients match their IPv4 form', async t => {
  const check = accessChecker(addAccessLine(addAccessLine(OPEN_ACCESS, 'allow', '127.0.0.0/8'), 'deny', '127.0.0.2'))
  t.same(check('::ffff:127.0.0.1'), { allowed: true })
  t.same(check('::FFFF:127.0.0.2'), { allowed: false, by: 'deny' })
  t.same(check('::ffff:192.0.2.1'), { allowed: false, by: 'allow' })
})

t.test("a service's own lines add to the defaults", async t => {
  const defaults = addAccessLine(addAccessLine(OPEN_ACCESS, 'allow', '10.0.0.0/8'), 'deny', '10.0.0.66')
  const own = addAccessLine(addAccessLine(OPEN_ACCESS, 'allow', '192.0.2.0/24, 10.0.0.0/8'), 'deny', '192.0.2.66')
  const lists = combineAccess(defaults, own)
  t.same(lists, { allow: ['10.0.0.0/8', '192.0.2.0/24'], deny: ['10.0.0.66/32', '192.0.2.66/32'] })
  const check = accessChecker(lists)
  t.same(
    ['10.1.1.1', '192.0.2.1', '10.0.0.66', '192.0.2.66', '198.51.100.1'].map(ip => check(ip).allowed),
    [true, true, false, false, false],
  )
  t.same(combineAccess(defaults, OPEN_ACCESS), defaults, 'a service without lines has the defaults')
})

t.test('the log text names the client and which list refused it', async t => {
  t.equal(accessDeniedText('127.0.0.2:4711', { by: 'deny' }), 'access denied by acl: client= 127.0.0.2:4711 (on a deny list)')
  t.equal(accessDeniedText('[::1]:4711', { by: 'allow' }), 'access denied by acl: client= [::1]:4711 (on no allow list)')
})

t.test('property: the verdict is deny-first over single addresses, IPv4 and mapped alike', async t => {
  const octet = fc.nat(3)
  const ip = fc.tuple(octet, octet).map(([c, d]) => `192.0.${c}.${d}`)
  fc.assert(
    fc.property(fc.uniqueArray(ip, { maxLength: 6 }), fc.uniqueArray(ip, { maxLength: 6 }), ip, fc.boolean(), (allow, deny, client, mapped) => {
      let lists: AccessLists = OPEN_ACCESS
      if (allow.length > 0) lists = addAccessLine(lists, 'allow', allow.join(' '))
      if (deny.length > 0) lists = addAccessLine(lists, 'deny', deny.join(','))
      const v = accessChecker(lists)(mapped ? `::ffff:${client}` : client)
      const expected = deny.includes(client) ? 'deny' : allow.length > 0 && !allow.includes(client) ? 'allow' : null
      return expected === null ? v.allowed : !v.allowed && v.by === expected
    }),
    { seed: 0xacc, numRuns: 400 },
  )
  t.pass()
})
