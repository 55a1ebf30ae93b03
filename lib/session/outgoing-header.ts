/**
 * send-proxy: the PROXY header a session sends its upstream before any of
 * the client's bytes. Pure: the addresses in, the header's bytes out.
 */
import { isIP } from 'node:net'
import { formatProxyV1 } from '../protocol/v1.js'
import { formatProxyV2 } from '../protocol/v2.js'

/** One end of the connection the header describes. */
export interface HeaderEnd {
  address: string
  port: number
}

/**
 * The header of `version` (null: none is sent) naming `client` (the client
 * as received, or as a PROXY header named it) and `destination` (where it
 * connected: the original destination when it was redirected, else the
 * local address). Mixed families cannot be expressed; then the header says
 * UNKNOWN (v1) / LOCAL (v2) rather than lie.
 */
export function outgoingHeader(version: 'v1' | 'v2' | null, client: HeaderEnd, destination: HeaderEnd): Buffer | null {
  if (version === null) return null
  const family = isIP(client.address) === 4 ? 'IPv4' : 'IPv6'
  const sameFamily = isIP(client.address) === isIP(destination.address)
  const a = sameFamily
    ? ({ family, sourceAddress: client.address, sourcePort: client.port, destinationAddress: destination.address, destinationPort: destination.port } as const)
    : null
  return version === 'v1' ? formatProxyV1(a) : formatProxyV2(a)
}
