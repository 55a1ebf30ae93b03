import t from 'tap'
import { crc32c } from '../../lib/protocol/crc32c.js'

t.test('crc32c', async t => {
  t.equal(crc32c(Buffer.from('123456789')), 0xe3069283, 'the standard check value')
  t.equal(crc32c(Buffer.alloc(0)), 0)
  t.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa, 'RFC 3720 B.4: 32 bytes of zeros')
  t.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43, 'RFC 3720 B.4: 32 bytes of 0xff')
})

t.test('crc32c of several parts is the CRC32C of their concatenation', async t => {
  const whole = Buffer.from('0123456789abcdef')
  for (let cut = 0; cut <= whole.length; cut++) {
    t.equal(crc32c(whole.subarray(0, cut), Buffer.alloc(0), whole.subarray(cut)), crc32c(whole), `cut at ${cut}`)
  }
  t.equal(crc32c(), 0, 'no parts: the empty input')
})
