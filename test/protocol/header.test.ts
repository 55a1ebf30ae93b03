/**
 * lib/protocol/header.ts: the magic both versions start with, byte by byte:
 * a proper prefix means "wait for more", and the error for anything else
 * names the first byte that differs (`bad PROXY header at byte N`).
 */
import t from 'tap'
import { ProxyHeaderError } from '../../lib/errors.js'
import { INCOMPLETE, notAHeader, startsWithMagic } from '../../lib/protocol/header.js'

const MAGIC = Buffer.from('PROXY ')

t.test('startsWithMagic: complete, a proper prefix, or the first byte that differs', async t => {
  t.equal(startsWithMagic(Buffer.from('PROXY TCP4 ...'), MAGIC), true, 'the whole magic and more')
  t.equal(startsWithMagic(Buffer.from('PROXY '), MAGIC), true, 'exactly the magic')
  t.equal(startsWithMagic(Buffer.from('PRO'), MAGIC), false, 'a proper prefix: wait for more')
  t.equal(startsWithMagic(Buffer.alloc(0), MAGIC), false, 'nothing yet')
  const err = t.throws(() => startsWithMagic(Buffer.from('PROXYX'), MAGIC)) as ProxyHeaderError
  t.type(err, ProxyHeaderError)
  t.equal(err.message, notAHeader(5).message)
  t.equal(err.offset, 5, 'the offset of the first byte that differs')
  t.equal((t.throws(() => startsWithMagic(Buffer.from('GET /'), MAGIC)) as ProxyHeaderError).offset, 0)
})

t.test('INCOMPLETE is one frozen value', async t => {
  t.same(INCOMPLETE, { status: 'incomplete' })
  t.ok(Object.isFrozen(INCOMPLETE))
})
