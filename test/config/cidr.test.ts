import t from 'tap'
import { cidrMatcher, parseCidrList } from '../../lib/config/cidr.js'

t.test('lists of addresses and networks, separated by commas or blanks, become canonical', async t => {
  t.same(parseCidrList('10.0.0.0/8, 192.0.2.7  2001:DB8::/32,::ffff:127.0.0.1'), [
    '10.0.0.0/8',
    '192.0.2.7/32',
    '2001:db8::/32',
    '127.0.0.1/32',
  ])
})

t.test('bad items name themselves', async t => {
  t.throws(() => parseCidrList(' , '), { code: 'ERR_CONFIG', message: 'empty address list' })
  t.throws(() => parseCidrList('10.0.0.0/8/1'), { message: 'not an address or network: "10.0.0.0/8/1"' })
  t.throws(() => parseCidrList('lb.example.org'), { message: 'not an address or network: "lb.example.org"' })
  t.throws(() => parseCidrList('10.0.0.0/33'), { message: 'bad prefix length in "10.0.0.0/33" (0-32)' })
  t.throws(() => parseCidrList('::1/129'), { message: 'bad prefix length in "::1/129" (0-128)' })
  t.throws(() => parseCidrList('10.0.0.0/x'), { message: 'bad prefix length in "10.0.0.0/x" (0-32)' })
  t.throws(() => parseCidrList('::ffff:10.0.0.0/64'), { message: 'bad prefix length in "::ffff:10.0.0.0/64" (96-128 for IPv4-mapped)' })
})

t.test('an IPv4-mapped network is the IPv4 network it maps', async t => {
  t.same(parseCidrList('::ffff:10.0.0.0/104'), ['10.0.0.0/8'])
  t.equal(cidrMatcher(parseCidrList('::ffff:10.0.0.0/104'))('10.1.1.1'), true)
})

t.test('the matcher answers for both families', async t => {
  const trusted = cidrMatcher(parseCidrList('10.0.0.0/8,2001:db8::/32'))
  t.equal(trusted('10.255.0.1'), true)
  t.equal(trusted('11.0.0.1'), false)
  t.equal(trusted('2001:db8::5'), true)
  t.equal(trusted('::1'), false)
})
