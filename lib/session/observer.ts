/**
 * What a session tells the rest of the process about itself while it runs:
 * the counters (lib/stats/counters.ts) and the row of `show sessions`
 * (lib/stats/live.ts implements it). An interface here, so the session
 * depends on no statistics code and its tests pass NO_OBSERVER.
 */
import type { CloseReason } from '../relay/close-reasons.js'
import type { RelayHandle, RelayResult } from '../relay/event-loop.js'

/** Why the session itself refused a connection (the forwarder's refusals are its own). */
export type SessionDenial = 'acp' | 'proxy-header' | 'redirect' | 'resources'

/** A relay's end as the disconnect line names it: the relay's reason, or `killed` by `kill session`. */
export type EndResult = Omit<RelayResult, 'closedBy'> & { closedBy: CloseReason | 'killed' }

export interface SessionObserver {
  denied(reason: SessionDenial): void
  /** The handler program starts, for the client as the session reports it (a PROXY header's). */
  handler(client: string, clientPort: number): void
  /** A connect attempt to `server` (`host:port`) failed. */
  connectFailed(server: string): void
  /** Connected to `server`; `relay` moves the bytes now. */
  relaying(server: string, relay: RelayHandle, client: string, clientPort: number): void
  /** The relay ended (`sent` without an outgoing PROXY header); returns the end as the disconnect line tells it. */
  ended(result: RelayResult): EndResult
}

/** An observer that records nothing (inetd mode counts nothing; tests). */
export const NO_OBSERVER: SessionObserver = {
  denied: () => {},
  handler: () => {},
  connectFailed: () => {},
  relaying: () => {},
  ended: result => result,
}
