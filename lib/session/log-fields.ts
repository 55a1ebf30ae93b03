/**
 * Who a connection's log lines are about, for `--log-format json`
 * (lib/log/fields.ts builds the fields from it): the client as the session
 * reports it (the PROXY header's, once one was accepted), where it
 * arrived (the service's listen address, as --check shows it), the serving
 * process.
 */
import { serviceName, type ResolvedService } from '../config/resolve.js'
import type { ConnectionFacts } from '../log/fields.js'

/** `where`: the service, or the `address:port` a connection with no service arrived on. */
export function connectionFacts(where: Pick<ResolvedService, 'addresses' | 'port'> | string, pid: number, client: string, clientPort: number): ConnectionFacts {
  return { client, clientPort, service: typeof where === 'string' ? where : serviceName(where), pid }
}
