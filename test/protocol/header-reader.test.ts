import { once } from 'node:events'
import fc from 'fast-check'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { ProxyHeaderError } from '../../lib/errors.js'
import { readProxyHeader } from '../../lib/protocol/header-reader.js'
import { parseProxyHeader } from '../../lib/protocol/parse.js'
import { formatProxyV2 } from '../../lib/protocol/v2.js'
import { HAPROXY_V1 } from '../fixtures/proxy-headers.js'

const EVENTS = ['readable', 'data', 'end', 'close', 'error'] as const

/** A connected pair over loopback: `server` is the accepted socket the reader works on. */
async function connection(t: Test, options: net.ServerOpts = {}): Promise<{ server: net.Socket; client: net.Socket }> {
  const listener = net.createServer(options)
  listener.listen(0, '127.0.0.1')
  await once(listener, 'listening')
  const { port } = listener.address() as net.AddressInfo
  const accepted = once(listener, 'connection') as Promise<[net.Socket]>
  const client = net.connect(port, '127.0.0.1')
  client.setNoDelay(true)
  await once(client, 'connect')
  const [server] = await accepted
  t.teardown(() => {
    client.destroy()
    server.destroy()
    listener.close()
  })
  return { server, client }
}

function listenerCounts(socket: net.Socket): number[] {
  return EVENTS.map(e => socket.listenerCount(e))
}

/** Run the reader and check it leaves the socket as it found it, whatever the outcome. */
async function read(t: Test, socket: net.Socket, timeoutMs = 2000): ReturnType<typeof readProxyHeader> {
  const before = listenerCounts(socket)
  try {
    return await readProxyHeader(socket, timeoutMs)
  } finally {
    // Node settles the stream's flowing state on the next tick after 'readable' is removed.
    await new Promise(resolve => process.nextTick(resolve))
    t.same(listenerCounts(socket), before, 'every listener it added is removed')
    t.not(socket.readableFlowing, true, 'the socket is not flowing')
  }
}

/** Everything the socket delivers from now until EOF. */
async function drain(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  await once(socket, 'end')
  return Buffer.concat(chunks)
}

async function rejection(promise: Promise<unknown>): Promise<ProxyHeaderError> {
  try {
    await promise
  } catch (err) {
    if (err instanceof ProxyHeaderError) return err
    throw err
  }
  throw new Error('expected the reader to reject')
}

t.test('header and data in one write', async t => {
  const { server, client } = await connection(t)
  client.end(`${HAPROXY_V1}hello, world`)
  const { header, rest } = await read(t, server)
  t.same(header, {
    version: 1,
    command: 'PROXY',
    addresses: {
      family: 'IPv4',
      sourceAddress: '127.0.0.1',
      sourcePort: 37958,
      destinationAddress: '127.0.0.1',
      destinationPort: 19141,
    },
    tlvs: [],
    length: 44,
  })
  const data = Buffer.concat([rest, await drain(server)])
  t.equal(data.toString('latin1'), 'hello, world')
  t.notOk(server.destroyed, 'the socket is left to the caller')
})

t.test('a socket accepted with pauseOnConnect', async t => {
  const { server, client } = await connection(t, { pauseOnConnect: true })
  client.end(`${HAPROXY_V1}data`)
  const { header, rest } = await read(t, server)
  t.equal(header.length, 44)
  t.equal(Buffer.concat([rest, await drain(server)]).toString('latin1'), 'data')
})

t.test('header split byte by byte, data intact afterwards', async t => {
  const { server, client } = await connection(t)
  const payload = 'SSH-2.0-OpenSSH_9.2\r\n'
  const reading = read(t, server)
  for (const byte of Buffer.from(HAPROXY_V1 + payload, 'latin1')) {
    client.write(Buffer.from([byte]))
    await sleep(2)
  }
  client.end()
  const { header, rest } = await reading
  t.equal(header.length, 44)
  t.equal(header.addresses?.sourcePort, 37958)
  // The caller puts `rest` back, then reads the stream as usual.
  server.unshift(rest)
  t.equal((await drain(server)).toString('latin1'), payload)
})

t.test('v2 binary header', async t => {
  const { server, client } = await connection(t)
  const wire = formatProxyV2(
    {
      family: 'IPv6',
      sourceAddress: '2001:db8::1',
      sourcePort: 51000,
      destinationAddress: '2001:db8::2',
      destinationPort: 25,
    },
    { crc32c: true },
  )
  client.end(Buffer.concat([wire, Buffer.from('EHLO x\r\n')]))
  const { header, rest } = await read(t, server)
  t.equal(header.version, 2)
  t.equal(header.length, wire.length)
  t.equal(header.addresses?.sourceAddress, '2001:db8::1')
  t.equal(header.tlvs[0]?.type, 0x03)
  t.equal(Buffer.concat([rest, await drain(server)]).toString('latin1'), 'EHLO x\r\n')
})

t.test('a v2 header longer than 107 bytes is read exactly to its end', async t => {
  const { server, client } = await connection(t)
  const unix = Buffer.alloc(216)
  unix.write('/run/app.sock')
  // PROXY over UNIX stream, 216-byte address block, then a 300-byte TLV.
  const tlv = Buffer.concat([Buffer.from([0xe0, 0x01, 0x2c]), Buffer.alloc(300, 0x61)])
  const fixed = Buffer.from('0d0a0d0a000d0a515549540a2131', 'hex')
  const length = Buffer.alloc(2)
  length.writeUInt16BE(216 + tlv.length)
  const wire = Buffer.concat([fixed, length, unix, tlv])
  client.write(wire.subarray(0, 100))
  await sleep(20)
  client.end(Buffer.concat([wire.subarray(100), Buffer.from('after')]))
  const { header, rest } = await read(t, server)
  t.equal(header.length, 535)
  t.equal(header.addresses, null)
  t.equal(header.tlvs[0]?.value.length, 300)
  t.equal(Buffer.concat([rest, await drain(server)]).toString('latin1'), 'after')
})

t.test('an invalid header rejects with the offset, socket untouched', async t => {
  const { server, client } = await connection(t)
  client.write('PROXY TCP4 127.0.0.01 127.0.0.1 1 2\r\nmore')
  const err = await rejection(read(t, server))
  t.equal(err.offset, 20)
  t.equal(err.message, 'bad PROXY header at byte 20: leading zero in IPv4 address')
  t.notOk(server.destroyed, 'the caller destroys the socket')
})

t.test('not a PROXY header at all', async t => {
  const { server, client } = await connection(t)
  client.write('GET / HTTP/1.1\r\n\r\n')
  const err = await rejection(read(t, server))
  t.equal(err.offset, 0)
  t.match(err.message, /not a PROXY header/)
})

t.test('EOF before the header is complete', async t => {
  const { server, client } = await connection(t)
  client.end('PROXY TCP4 1.2')
  const err = await rejection(read(t, server))
  t.equal(err.message, 'bad PROXY header at byte 14: connection closed before the PROXY header was complete')
  t.equal(err.offset, 14)
})

t.test('the socket closing without EOF', async t => {
  const { server, client } = await connection(t)
  client.write('PROXY ')
  const reading = rejection(read(t, server))
  await sleep(50)
  server.destroy()
  const err = await reading
  t.equal(err.message, 'bad PROXY header at byte 6: connection closed before the PROXY header was complete')
})

t.test('a socket error before the header is complete', async t => {
  const { server, client } = await connection(t)
  client.write('PROXY TCP6 ')
  const reading = rejection(read(t, server))
  await sleep(50)
  server.destroy(new Error('boom'))
  const err = await reading
  t.equal(err.message, 'bad PROXY header at byte 11: connection failed before the PROXY header was complete: boom')
})

t.test('a connection reset by the peer', async t => {
  const { server, client } = await connection(t)
  client.write('PROXY ')
  const reading = rejection(read(t, server))
  await sleep(50)
  client.resetAndDestroy()
  const err = await reading
  t.match(err.message, /^bad PROXY header at byte 6: connection (failed|closed) before the PROXY header was complete/)
})

t.test('a socket that is already closed or ended', async t => {
  const a = await connection(t)
  a.server.destroy()
  const closed = await rejection(readProxyHeader(a.server, 1000))
  t.equal(closed.message, 'bad PROXY header at byte 0: connection closed before the PROXY header was complete')

  const b = await connection(t)
  b.client.end()
  b.server.resume()
  await once(b.server, 'end')
  t.ok(b.server.readableEnded)
  const ended = await rejection(readProxyHeader(b.server, 1000))
  t.equal(ended.offset, 0)
})

t.test('timeout', async t => {
  const { server, client } = await connection(t)
  client.write('PROXY TCP4 ')
  const started = performance.now()
  const err = await rejection(read(t, server, 200))
  const elapsed = performance.now() - started
  t.equal(err.message, 'bad PROXY header at byte 11: no complete PROXY header within 200 ms')
  t.ok(elapsed >= 150 && elapsed < 2000, `rejected after ${Math.round(elapsed)} ms`)
  t.notOk(server.destroyed)
})

t.test('10 KB of junk after "PROXY ": at most 107 bytes are taken', async t => {
  const { server, client } = await connection(t)
  const junk = Buffer.alloc(10 * 1024, 'x')
  junk.write('PROXY UNKNOWN ')
  client.end(junk)
  // Let it all arrive, so the reader could take more than it should.
  await sleep(50)
  const err = await rejection(read(t, server))
  t.equal(err.message, 'bad PROXY header at byte 105: no CRLF within 107 bytes')
  const left = await drain(server)
  t.ok(junk.length - left.length <= 107, `the reader consumed ${junk.length - left.length} bytes`)
})

/*
 * Fuzzing over real sockets (fast-check, fixed seed, bounded runs): however
 * the bytes arrive, the reader agrees with the parser on the whole input:
 * the same header and not a byte of the data lost or taken, or the same
 * rejection at the same offset.
 */
t.test('fuzz: any input in any chunks gives what the parser gives for the whole', async t => {
  const FUZZ = { seed: 0x9e0, numRuns: 60 } as const
  const ip4 = fc.ipV4()
  const valid = fc.oneof(
    fc.tuple(ip4, ip4, fc.nat({ max: 65535 }), fc.nat({ max: 65535 }), fc.boolean()).map(([s, d, sp, dp, v2]) => {
      const a = { family: 'IPv4', sourceAddress: s, sourcePort: sp, destinationAddress: d, destinationPort: dp } as const
      return v2 ? formatProxyV2(a) : Buffer.from(`PROXY TCP4 ${s} ${d} ${sp} ${dp}\r\n`, 'latin1')
    }),
    fc.uint8Array({ maxLength: 120 }).map(a => Buffer.concat([Buffer.from('PROXY ', 'latin1'), Buffer.from(a)])),
  )
  const input = fc.tuple(valid, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean(), fc.uint8Array({ maxLength: 64 })).map(([h, at, b, flip, tail]) => {
    const head = Buffer.from(h)
    if (flip && head.length > 0) head[at % head.length] = b
    return { whole: Buffer.concat([head, Buffer.from(tail)]), headLength: head.length }
  })
  const cuts = fc.array(fc.nat(), { maxLength: 3 })
  await fc.assert(
    fc.asyncProperty(input, cuts, async ({ whole }, at) => {
      let expected: { length: number } | { offset: number } | 'incomplete'
      try {
        const r = parseProxyHeader(whole)
        expected = r.status === 'complete' ? { length: r.header.length } : 'incomplete'
      } catch (err) {
        expected = { offset: (err as ProxyHeaderError).offset }
      }
      const { server, client } = await connection(t)
      const reading = readProxyHeader(server, 2000).then(
        r => ({ length: r.header.length, rest: r.rest }),
        (err: Error) => ({ error: err }),
      )
      const points = [...new Set(at.map(n => n % (whole.length + 1)))].sort((a, b) => a - b)
      let from = 0
      for (const p of [...points, whole.length]) {
        if (p > from) client.write(whole.subarray(from, p))
        from = p
        await sleep(1)
      }
      client.end()
      const got = await reading
      if (expected === 'incomplete') {
        if (!('error' in got)) throw new Error(`read a header from an incomplete one: ${whole.toString('hex')}`)
        return
      }
      if ('offset' in expected) {
        const offset = 'error' in got ? (got.error as ProxyHeaderError).offset : null
        if (offset !== expected.offset) throw new Error(`offset ${offset}, parser ${expected.offset}: ${whole.toString('hex')}`)
        return
      }
      if ('error' in got) throw new Error(`${got.error.message}: ${whole.toString('hex')}`)
      if (got.length !== expected.length) throw new Error(`length ${got.length}, parser ${expected.length}`)
      const data = Buffer.concat([got.rest, server.readableEnded ? Buffer.alloc(0) : await drain(server)])
      if (!data.equals(whole.subarray(expected.length))) throw new Error(`data after the header differs: ${whole.toString('hex')}`)
    }),
    FUZZ,
  )
  t.pass(`${FUZZ.numRuns} inputs, seed ${FUZZ.seed}`)
})
