/**
 * `keepalive SECONDS`: SO_KEEPALIVE with TCP_KEEPIDLE on both sockets of a
 * relayed session, so that NAT and stateful firewalls keep long idle
 * sessions (SSH, IMAP IDLE), and a peer that vanished is found without an
 * idle timeout. Set before the relay takes the sockets: the options live on
 * the descriptor, so the relay thread's copies keep them. The interval and
 * count of the probes are the kernel's (net.ipv4.tcp_keepalive_intvl,
 * tcp_keepalive_probes) or libuv's, whichever sets them.
 */
import type { Socket } from 'node:net'

/** Keepalive on each socket after `seconds` idle; 0 leaves them alone (off). */
export function setKeepalive(sockets: readonly Socket[], seconds: number): void {
  if (seconds === 0) return
  for (const s of sockets) s.setKeepAlive(true, seconds * 1000)
}
