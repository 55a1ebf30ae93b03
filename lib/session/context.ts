/**
 * What the process gives every session: the program-wide facts for the
 * handler and ACP environments and a few switches (ProgramContext), and the
 * bound on programs running at once (ProgramSlots, kept by the forwarder).
 */
import type { Endpoint } from '../config/address.js'
import type { AttemptOutcome } from '../server/upstream.js'
import type { ResolvedService } from '../config/resolve.js'
import type { ClientNames } from './environment.js'
import type { Logger } from '../log/logger.js'
import type { SessionObserver } from './observer.js'
import type { RunAs } from './programs.js'

/** Program-wide facts a session needs for handler and ACP environments. */
export interface ProgramContext {
  /** The environment programs inherit (tcpproxy's own). */
  baseEnv: Record<string, string>
  envPrefix: string
  pid: number
  proxyName: string
  logName: string
  /** Look up client host names for PROXY_CLIENTNAME (off with -n). */
  resolveNames: boolean
  /** Where the names come from (tests); default: the system resolver, shared by every session of the process. */
  names?: ClientNames
  runAs: RunAs
  /** Bytes a `-w` dump may have waiting for the disk before it is cut short (default DUMP_BACKLOG, lib/session/dump.ts). */
  dumpBacklog?: number
  /** Relay established connections in the addon's relay thread when it is built (lib/relay/thread.ts). */
  relayThread?: boolean
  /**
   * At most this many ACP and handler processes at once (all services;
   * divided among workers like max-connections). Default
   * DEFAULT_MAX_PROGRAMS; null: no limit.
   */
  maxPrograms?: number | null
}

/**
 * Programs at once, by default: each is a process (a few MB, a slot in the
 * serving user's process limit), so a flood of connections to a handler
 * service must not fork without bound.
 */
export const DEFAULT_MAX_PROGRAMS = 256

/** Where a session gets a place for a program (ACP, handler) to run: false = none free (refuse). */
export interface ProgramSlots {
  /** `service`: the session's, for counting a refusal against it. */
  take(clientIp: string, service: ResolvedService): boolean
  release(): void
}

/**
 * The service's client and upstream policy as one session sees it (a
 * Ticket of lib/server/policy.ts): whether the real client may be served,
 * the order to try the servers in, and each connect attempt as it ends.
 */
export interface SessionPolicy {
  /**
   * False: refused (logged and counted already); the session closes the
   * client. `planned`: connected by a listener's plan already, counted and
   * never refused (lib/server/policy.ts).
   */
  admit(client: string, port: number, planned?: boolean): boolean
  order(servers: readonly Endpoint[]): readonly Endpoint[]
  attempted(a: AttemptOutcome): void
}

/** No policy: every client admitted, the servers in their order (tests, tools). */
export const OPEN_POLICY: SessionPolicy = Object.freeze({
  admit: () => true,
  order: (servers: readonly Endpoint[]) => servers,
  attempted: () => {},
})

/** What every session is given, whoever serves it (session.ts with Node's sockets, direct.ts on the relay thread). */
export interface SessionBasics {
  /** The session's id in the log. */
  id: number
  service: ResolvedService
  local: string
  localPort: number
  clientIp: string
  clientPort: number
  log: Logger
  programs: ProgramContext
  /** Reports running out of descriptors (rate-limited by the forwarder); the session tells its observer the denial. */
  onResourceError: (err: Error) => void
  /** allow/deny and max-per-client for the real client, the servers' order and health (lib/server/policy.ts). */
  policy: SessionPolicy
  observer: SessionObserver
}
