/**
 * The control socket's backend in a single process (no supervisor): the
 * sessions are the forwarder's own. The counters, the server states and the
 * byte counts of live sessions come with the stats collector (#16); until
 * it is wired in here, they answer empty.
 */
import { TcpproxyError } from '../errors.js'
import type { Forwarder } from '../server/forwarder.js'
import type { ControlBackend } from './backend.js'
import type { SessionRow } from './render.js'

export function localBackend(proxy: Forwarder, nowMs: () => number = () => performance.now()): ControlBackend {
  const notYet = (): Promise<boolean> => Promise.reject(new TcpproxyError('ERR_NOT_SUPPORTED', 'disable/enable server: not available in this build'))
  return {
    total: () => ({ services: {} }),
    sessions: async () =>
      proxy.openSessions.map((s): SessionRow => {
        const f = s.facts
        return {
          id: f.id,
          service: `${f.service.ifaceText}:${f.service.port}`,
          client: f.clientIp,
          client_port: f.clientPort,
          server: null,
          received: 0,
          sent: 0,
          age: Math.floor((nowMs() - f.startedMs) / 1000),
          state: f.state,
        }
      }),
    kill: async id => {
      const s = proxy.openSessions.find(x => x.facts.id === id)
      s?.abort()
      return s !== undefined
    },
    disable: notYet,
    enable: notYet,
  }
}
