// lib/stats/http.ts: GET /metrics over node:http, on a loopback port.
import t from 'tap'
import { request } from 'node:http'
import { serveMetrics } from '../../lib/stats/http.js'
import { backend, freePort } from '../fixtures/harness.js'

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, method }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', c => (body += c))
      res.on('end', () => resolve({ status: res.statusCode as number, headers: res.headers, body }))
    })
      .on('error', reject)
      .end()
  })
}

t.test('GET and HEAD /metrics; 404 elsewhere; 405 for other methods', async t => {
  const port = await freePort()
  let n = 0
  const server = await serveMetrics({ address: '127.0.0.1', port }, () => `m ${++n}\n`)
  t.teardown(() => server.close())
  t.same(await get(port, '/metrics').then(r => [r.status, r.headers['content-type'], r.body]), [200, 'text/plain; version=0.0.4; charset=utf-8', 'm 1\n'])
  t.equal((await get(port, '/metrics?debug=1')).body, 'm 2\n', 'a query is ignored')
  t.same(await get(port, '/metrics', 'HEAD').then(r => [r.status, r.body]), [200, ''])
  t.equal(n, 2, 'HEAD renders nothing')
  t.equal((await get(port, '/')).status, 404)
  const post = await get(port, '/metrics', 'POST')
  t.same([post.status, post.headers['allow']], [405, 'GET, HEAD'])
})

t.test('every address when the spec names none; a bind failure names the address', async t => {
  const port = await freePort()
  const server = await serveMetrics({ address: null, port }, () => '')
  t.teardown(() => server.close())
  t.equal((await get(port, '/metrics')).status, 200)
  const taken = await backend(() => {})
  t.teardown(() => taken.close())
  await t.rejects(serveMetrics({ address: '127.0.0.1', port: taken.port }, () => ''), { code: 'ERR_BIND', message: `cannot bind metrics 127.0.0.1:${taken.port}: EADDRINUSE` })
  await t.rejects(serveMetrics({ address: null, port: taken.port }, () => ''), { message: /^cannot bind metrics \*:\d+: EADDRINUSE$/ })
})
