/**
 * GET /metrics over plain node:http (no framework: one path, one format).
 * Bound at start like the listeners, so a bad address stops the start with
 * one line naming it; only GET and HEAD of /metrics are served.
 */
import { createServer, type Server } from 'node:http'
import { formatHostPort, type ListenSpec } from '../config/address.js'
import { TcpproxyError, errorCode } from '../errors.js'
import { CONTENT_TYPE } from './prometheus.js'

/** Serve `render()` at /metrics on `spec` (every address when it names none); resolves once bound. */
export function serveMetrics(spec: ListenSpec, render: () => string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url as string).split('?')[0]
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: try /metrics\n')
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain', Allow: 'GET, HEAD' }).end('method not allowed\n')
    } else {
      res.writeHead(200, { 'Content-Type': CONTENT_TYPE }).end(req.method === 'HEAD' ? undefined : render())
    }
  })
  // A scraper keeps its connection; it must not hold the process at exit.
  server.unref()
  return new Promise((resolve, reject) => {
    server.once('error', err => reject(new TcpproxyError('ERR_BIND', `cannot bind metrics ${formatHostPort(spec.address ?? '*', spec.port)}: ${errorCode(err)}`)))
    server.listen({ host: spec.address ?? undefined, port: spec.port }, () => resolve(server))
  })
}
