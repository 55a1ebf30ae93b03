/**
 * What a configuration holds: the settings of each service and of the whole
 * program, and their defaults. Only data: the file is read by parse.ts, its
 * values by values.ts, so runtime code can use these types without the parser.
 */
import type { Endpoint, ListenSpec } from './address.js'

/** Where `-p` and a `pidfile -` line write the pid. */
export const DEFAULT_PIDFILE = '/var/run/tcpproxy.pid'

/** Where `tcpproxy ctl` looks for the control socket without --control (and a `control` line without a path). */
export const DEFAULT_CONTROL = '/run/tcpproxy.ctl'

/** Per-service settings; the ones before the first `port` are the defaults. */
export interface ServiceSettings {
  /** Upstreams tried in order, or null when the service has none. */
  servers: Endpoint[] | null
  /** Idle timeout in seconds over both directions; 0 = none. */
  timeout: number
  /** Seconds allowed for each upstream connect attempt. */
  connectTimeout: number
  /** TCP keepalive on both sockets of a relayed session: idle seconds before the first probe (TCP_KEEPIDLE); 0 = off. */
  keepalive: number
  /** A handler program's command line (words), run instead of connecting to a server. */
  exec: string[] | null
  /** The access control program's command line, or null. */
  acp: string[] | null
  /** Seconds the access control program may run before access is denied. */
  acpTimeout: number
  /** Base name of the per-connection traffic dump files, or null. */
  writefile: string | null
  /** Peers (`address/prefix`) whose connections must start with a PROXY header; null = none. */
  acceptProxy: string[] | null
  /** Seconds a trusted peer has to send the complete PROXY header. */
  proxyTimeout: number
  /** PROXY protocol version sent to upstreams, or null. */
  sendProxy: 'v1' | 'v2' | null
  /** At most this many sessions of this service at once; null = no limit. */
  maxConnections: number | null
  /** What to do with the original destination of a REDIRECTed (or TPROXY'd) connection. */
  redirectMode: RedirectMode
  /** A fixed source address for upstream connections (`srcip`, `-q`), or null. */
  sourceAddress: string | null
  /** Connect upstream from the client's address (Zorp's forge_addr); needs CAP_NET_ADMIN. */
  forgeAddr: boolean
  /** ...and from the client's port too (forge_port). */
  forgePort: boolean
  /** The listener takes TPROXY'd connections (IP_TRANSPARENT); needs CAP_NET_ADMIN. */
  transparent: boolean
  /** How a session picks its first server (`balance`); the rest of the list is the failover. */
  balance: BalanceMode
  /** Failed connects within failTimeout that mark a server down (`max-fails`); 0 = no marks. */
  maxFails: number
  /** Seconds: the window of max-fails, and how long a mark lasts (`fail-timeout`). */
  failTimeout: number
  /** Seconds between TCP connect probes of servers marked down (`check-interval`); 0 = none. */
  checkInterval: number
  /** Clients (`address/prefix`) that may connect (`allow`); empty = every client not denied. */
  allow: readonly string[]
  /** Clients refused (`deny`); a service's lines add to the defaults, as allow's. */
  deny: readonly string[]
  /** Sessions at once per client address (`max-per-client`); 0 = no limit. */
  maxPerClient: number
}

/** `balance`: the list's order, rotation, fewest sessions, or a hash of the client address. */
export type BalanceMode = 'first' | 'roundrobin' | 'leastconn' | 'source'

/**
 * `redirect-mode` (tcpproxy 2.0's `-r`): `none` ignores the original
 * destination; `accept` learns it (log, environment, PROXY header) and still
 * connects to the configured server; `forward` connects to it when the
 * connection was redirected, else to the server; `forward-only` refuses
 * connections that were not redirected.
 */
export type RedirectMode = 'none' | 'accept' | 'forward' | 'forward-only'

/** Settings of the whole program, wherever they appear in the file. */
export interface GlobalSettings {
  /** Prefix of the environment variables given to handlers and ACPs (`setenv`). */
  envPrefix: string
  /** Name in log lines and PROXY_LOGNAME (`logname`); null = the program name. */
  logname: string | null
  /** `standalone yes|no`; null when the file does not say. */
  standalone: boolean | null
  /** Where to write the pid (`pidfile`), or null. */
  pidfile: string | null
  /** `user USER[.GROUP]` to run as when started as root; null = nobody. */
  user: string | null
  /** At most this many sessions at once, all services together; null = no limit. */
  maxConnections: number | null
  /** At most this many ACP and handler processes at once (`max-programs`, `--max-programs`); null = DEFAULT_MAX_PROGRAMS. */
  maxPrograms: number | null
  /** Worker processes sharing the listeners (`workers`, `--workers`); null = 1. Read at start-up. */
  workers: number | null
  /** Where to serve GET /metrics (`metrics`, `--metrics`); null = nowhere. Read at start-up. */
  metrics: ListenSpec | null
  /** The control socket (`control`, `--control`); null = none. Read at start-up. */
  control: string | null
  /** The group that may use it (`control-group`): mode 0660 instead of 0600. */
  controlGroup: string | null
}

/** One (port, interface) service. */
export interface ServiceDef extends ServiceSettings {
  port: number
  /** Canonical IP or host name; null = every local address. */
  iface: string | null
  /** The interface as written (`*`, `127.0.0.1`, `mail.example.org`), for PROXY_CONFIG. */
  ifaceText: string
  /** Where it was defined: the file (or `command line`) and line (0 for the command line). */
  source: { file: string; line: number }
}

export interface Config {
  services: ServiceDef[]
  globals: GlobalSettings
  /** Ports in the order of their `port` lines, each once (for `-z`). */
  ports: number[]
}

export const DEFAULT_SETTINGS: ServiceSettings = Object.freeze({
  servers: null,
  timeout: 60,
  connectTimeout: 10,
  keepalive: 0,
  exec: null,
  acp: null,
  acpTimeout: 10,
  writefile: null,
  acceptProxy: null,
  // The spec asks receivers to allow at least 3 s, for a TCP retransmit.
  proxyTimeout: 5,
  sendProxy: null,
  maxConnections: null,
  redirectMode: 'none',
  sourceAddress: null,
  forgeAddr: false,
  forgePort: false,
  transparent: false,
  balance: 'first',
  // nginx's max_fails=1 fail_timeout=10s.
  maxFails: 1,
  failTimeout: 10,
  checkInterval: 0,
  allow: [],
  deny: [],
  maxPerClient: 0,
})

export const DEFAULT_GLOBALS: GlobalSettings = Object.freeze({
  envPrefix: 'PROXY_',
  logname: null,
  standalone: null,
  pidfile: null,
  user: null,
  maxConnections: null,
  maxPrograms: null,
  workers: null,
  metrics: null,
  control: null,
  controlGroup: null,
})
