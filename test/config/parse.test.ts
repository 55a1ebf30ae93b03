/**
 * tcpproxy.conf from text to services (lib/config/parse.ts): ports and
 * interfaces, defaults, the shipped sample, and fuzzing.
 */
import fc from 'fast-check'
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ConfigError } from '../../lib/errors.js'
import { DEFAULT_GLOBALS, DEFAULT_SETTINGS } from '../../lib/config/config.js'
import { MAX_LINE } from '../../lib/config/grammar.js'
import { KEYWORD_NAMES } from '../../lib/config/keywords.js'
import { parseConfig } from '../../lib/config/parse.js'
import { FILE, fails, lookup, parse } from '../fixtures/config-text.js'

t.test('one port, one interface, one server: one service with the default timeouts', async t => {
  const c = parse(['port 8025', 'interface 127.0.0.1', 'server 127.0.0.1:25'])
  t.same(c, {
    ports: [8025],
    globals: DEFAULT_GLOBALS,
    services: [
      {
        ...DEFAULT_SETTINGS,
        servers: [{ host: '127.0.0.1', port: 25 }],
        timeout: 60,
        connectTimeout: 10,
        exec: null,
        acp: null,
        acpTimeout: 10,
        writefile: null,
        port: 8025,
        iface: '127.0.0.1',
        ifaceText: '127.0.0.1',
        source: { file: FILE, line: 2 },
      },
    ],
  })
})

t.test('several interfaces of a port are separate services with their own settings', async t => {
  const c = parse([
    'port smtp',
    '  interface 127.0.0.1',
    '    server mail.example.org',
    '    timeout 300',
    '  interface *',
    '    server [::1]:2525, 127.0.0.1:http',
    '    connect-timeout 2.5',
  ])
  t.same(
    c.services.map(s => [s.port, s.iface, s.ifaceText, s.servers, s.timeout, s.connectTimeout, s.source.line]),
    [
      [25, '127.0.0.1', '127.0.0.1', [{ host: 'mail.example.org', port: null }], 300, 10, 2],
      [
        25,
        null,
        '*',
        [
          { host: '::1', port: 2525 },
          { host: '127.0.0.1', port: 80 },
        ],
        60,
        2.5,
        5,
      ],
    ],
  )
})

t.test('interfaces keep their text but are canonical for matching', async t => {
  const c = parse([
    'port 8025',
    'interface ::FFFF:127.0.0.2',
    'server a.example',
    'interface Mail.Example.ORG',
    'server a.example',
    'interface FE80::1%eth0',
    'server a.example',
    'interface any',
    'server a.example',
  ])
  t.same(
    c.services.map(s => [s.iface, s.ifaceText]),
    [
      ['127.0.0.2', '::FFFF:127.0.0.2'],
      ['mail.example.org', 'Mail.Example.ORG'],
      ['fe80::1%eth0', 'FE80::1%eth0'],
      [null, 'any'],
    ],
  )
})

t.test('directives before the first port are defaults for every later service', async t => {
  const c = parse([
    'timeout 5',
    'connect-timeout 1',
    'server fallback.example:25',
    'port 8025',
    'interface 127.0.0.1',
    'interface 127.0.0.2',
    'timeout 7',
    'server 10.0.0.1',
    'port 8026',
    'interface *',
  ])
  t.same(
    c.services.map(s => [s.port, s.iface, s.servers, s.timeout, s.connectTimeout]),
    [
      [8025, '127.0.0.1', [{ host: 'fallback.example', port: 25 }], 5, 1],
      [8025, '127.0.0.2', [{ host: '10.0.0.1', port: null }], 7, 1],
      [8026, null, [{ host: 'fallback.example', port: 25 }], 5, 1],
    ],
  )
})

t.test('the initial defaults (from the command line) apply unless the file sets its own', async t => {
  const initial = { ...DEFAULT_SETTINGS, timeout: 0, connectTimeout: 30 }
  const c = parseConfig('timeout 9\nport 8025\ninterface *\nserver a.example\n', FILE, lookup, initial)
  t.equal(c.services[0]?.timeout, 9, 'the file overrides -t')
  t.equal(c.services[0]?.connectTimeout, 30, 'the file leaves --connect-timeout')
  t.same(initial, { ...DEFAULT_SETTINGS, timeout: 0, connectTimeout: 30 }, 'the initial object is not changed')
  // Other features add their own defaults; these are the ones of this file's keywords.
  t.has(DEFAULT_SETTINGS, {
    servers: null,
    timeout: 60,
    connectTimeout: 10,
    exec: null,
    acp: null,
    acpTimeout: 10,
    writefile: null,
    acceptProxy: null,
    proxyTimeout: 5,
    sendProxy: null,
  })
})

t.test('"-" is an empty value: "server -" takes a default server away', async t => {
  fails(
    t,
    ['server a.example', 'port 8025', 'interface 127.0.0.1', 'interface 127.0.0.2', 'server -'],
    4,
    'service 127.0.0.2 port 8025 has no "server" or "exec" (only "redirect-mode forward-only" needs neither)',
  )
  fails(t, ['server a.example', 'server -', 'port 8025', 'interface *'], 4, 'service * port 8025 has no "server" or "exec" (only "redirect-mode forward-only" needs neither)')
  fails(t, ['port 8025', 'interface *', 'timeout -'], 3, 'not a number of seconds: ""')
})

t.test('ports are listed in the order of their port lines, each once', async t => {
  const c = parse([
    'port 8026',
    'interface *',
    'server a.example',
    'port smtp',
    'interface *',
    'server a.example',
    'port 8026',
    'interface 127.0.0.1',
    'server a.example',
  ])
  t.same(c.ports, [8026, 25])
  t.same(
    c.services.map(s => [s.port, s.iface]),
    [
      [8026, null],
      [25, null],
      [8026, '127.0.0.1'],
    ],
  )
})

t.test('a per-service directive between port and interface is an error', async t => {
  fails(t, ['port 8025', 'server a.example', 'interface *'], 2, '"server" must follow an "interface" line (after "port 8025")')
  fails(t, ['port 8025', 'interface *', 'server a.example', 'port 8026', 'timeout 5'], 5, '"timeout" must follow an "interface" line (after "port 8026")')
})

t.test('an interface before any port is an error', async t => {
  fails(t, ['timeout 5', 'interface 127.0.0.1'], 2, '"interface" before any "port" line')
})

t.test('a port without an interface is an error at the port line', async t => {
  fails(t, ['port 8025', 'port 8026', 'interface *', 'server a.example'], 1, '"port 8025" has no "interface" line (use "interface *" for every address)')
  fails(t, ['port 8025', 'interface *', 'server a.example', '', 'port 8026', '# nothing'], 5, '"port 8026" has no "interface" line (use "interface *" for every address)')
})

t.test('the same interface twice on a port is an error naming the first line', async t => {
  fails(t, ['port 8025', 'interface 127.0.0.1', 'server a.example', 'interface 127.0.0.1'], 4, 'duplicate service 127.0.0.1 port 8025 (first defined at line 2)')
  fails(t, ['port 8025', 'interface *', 'server a.example', 'interface any'], 4, 'duplicate service * port 8025 (first defined at line 2)')
  fails(
    t,
    ['port 8025', 'interface 127.0.0.2', 'server a.example', 'port 8025', 'interface ::ffff:127.0.0.2'],
    5,
    'duplicate service 127.0.0.2 port 8025 (first defined at line 2)',
    'an IPv4-mapped address is the same interface, in another port group too',
  )
})

t.test('an unknown port or service name is an error', async t => {
  fails(t, ['port nosuch'], 1, 'unknown port or service name: "nosuch"')
  fails(t, ['port 0'], 1, 'port 0 is out of range (1-65535)')
  fails(t, ['port 65536'], 1, 'port 65536 is out of range (1-65535)')
  fails(t, ['port 8025', 'interface *', 'server a.example:nosuch'], 3, 'unknown port or service name: "nosuch"')
})

t.test('a bad interface or server address is an error at its line', async t => {
  fails(t, ['port 8025', 'interface bad!host'], 2, 'bad host name or address: "bad!host"')
  fails(t, ['port 8025', 'interface [::1'], 2, 'bad host name or address: "[::1"')
  fails(t, ['port 8025', 'interface *', 'server [::1:25'], 3, 'missing "]" in "[::1:25"')
  fails(t, ['port 8025', 'interface *', 'server a.example,,b.example'], 3, 'empty item in server list "a.example,,b.example"')
  fails(t, ['port 8025', 'interface *', 'server a b'], 3, 'bad host name or address: "a b"')
})

t.test('the shipped sample etc/tcpproxy.conf defines the documented loopback services', async t => {
  const url = new URL('../../etc/tcpproxy.conf', import.meta.url)
  const path = fileURLToPath(url)
  const text = readFileSync(url, 'utf8')
  const c = parseConfig(text, path, lookup)
  t.same(c.ports, [8080, 8023])
  t.same(c.globals, DEFAULT_GLOBALS)
  t.same(
    c.services.map(({ source, ...rest }) => rest),
    [
      {
        ...DEFAULT_SETTINGS,
        servers: [{ host: '127.0.0.1', port: 8000 }],
        timeout: 60,
        connectTimeout: 10,
        port: 8080,
        iface: '127.0.0.1',
        ifaceText: '127.0.0.1',
      },
      {
        ...DEFAULT_SETTINGS,
        servers: [
          { host: 'localhost', port: 8000 },
          { host: '127.0.0.1', port: 8000 },
        ],
        timeout: 300,
        connectTimeout: 10,
        port: 8080,
        iface: null,
        ifaceText: '*',
      },
      {
        ...DEFAULT_SETTINGS,
        servers: [{ host: '127.0.0.1', port: 23 }],
        timeout: 0,
        connectTimeout: 10,
        port: 8023,
        iface: '127.0.0.1',
        ifaceText: '127.0.0.1',
      },
    ],
  )
  // Each service names the file and its own interface line.
  const lines = text.split('\n')
  for (const s of c.services) {
    t.equal(s.source.file, path)
    t.equal(lines[s.source.line - 1]?.trim(), `interface ${s.ifaceText}`, `line ${s.source.line}`)
  }
})

t.test('the commented-out examples of the sample work once uncommented', async t => {
  const text = readFileSync(new URL('../../etc/tcpproxy.conf', import.meta.url), 'utf8')
  const uncommented = text.replace(/^# ( *(?:(?:port|interface|exec|acp|acp-timeout|redirect-mode|forge-addr) \S+|(?:server|balance|max-fails|fail-timeout|check-interval|allow|deny|max-per-client) \S.*))$/gm, '$1')
  t.not(uncommented, text, 'the sample has the examples')
  const c = parseConfig(uncommented, FILE, lookup)
  t.same(c.ports, [8080, 8025, 8026, 8027, 8023])
  const s = c.services.find(x => x.port === 8025)
  t.same(
    s && [s.iface, s.servers, s.exec, s.acp, s.acpTimeout, s.timeout],
    ['127.0.0.1', null, ['/usr/local/sbin/smtp-handler'], ['/usr/local/sbin/smtp-acp'], 5, 60],
  )
  const r = c.services.find(x => x.port === 8026)
  t.same(r && [r.iface, r.servers, r.redirectMode, r.forgeAddr], [null, null, 'forward-only', true], 'the transparent-proxy example')
  const b = c.services.find(x => x.port === 8027)
  t.same(b && [b.servers?.length, b.balance, b.maxFails, b.failTimeout, b.checkInterval, b.allow, b.deny, b.maxPerClient], [3, 'roundrobin', 1, 10, 2, ['127.0.0.0/8', '::1/128'], ['127.0.0.9/32'], 10], 'the balancing example')
})

t.test('the initial globals (from the command line) apply unless the file sets its own', async t => {
  const initial = { ...DEFAULT_GLOBALS, envPrefix: 'CLI_', logname: 'from-cli' }
  const c = parseConfig('logname from-file\nport 8025\ninterface *\nserver a.example\n', FILE, lookup, DEFAULT_SETTINGS, initial)
  t.same(c.globals, { ...DEFAULT_GLOBALS, envPrefix: 'CLI_', logname: 'from-file', standalone: null })
  t.same(initial, { ...DEFAULT_GLOBALS, envPrefix: 'CLI_', logname: 'from-cli' }, 'the initial object is not changed')
  t.has(DEFAULT_GLOBALS, { envPrefix: 'PROXY_', logname: null, standalone: null })
})

/*
 * Fuzzing (fast-check, fixed seed, bounded runs): whatever the text, the
 * parser returns a configuration or throws a ConfigError that names this
 * file and a line of it, in one line of text, and it does so quickly.
 */
const FUZZ = { seed: 0x7c9, numRuns: 1500 } as const

/** The contract every input must meet; returns a description of a breach, or null. */
function configContract(text: string): string | null {
  const started = performance.now()
  let err: unknown
  try {
    parseConfig(text, FILE, lookup)
  } catch (e) {
    err = e
  }
  const ms = performance.now() - started
  // Generous (a loaded CI machine), yet far below what a backtracking regex on a 4 KiB line costs.
  if (ms > 1000) return `took ${ms.toFixed(0)} ms`
  if (err === undefined) return null
  if (!(err instanceof ConfigError)) return `threw ${String(err)}`
  const lines = Math.max(1, text.split(/\r?\n/).length)
  if (err.file !== FILE || !(err.line >= 1 && err.line <= lines)) return `position ${err.file}:${err.line} outside 1..${lines}`
  if (!err.message.startsWith(`${FILE}:${err.line}: `)) return `message without its position: ${err.message}`
  // One line on a terminal: no line break of any kind.
  if (/[\n\r\u2028\u2029\u0085]/.test(err.message)) return `message of several lines: ${JSON.stringify(err.message)}`
  return null
}

/** Throw the breach, so the counterexample report says what went wrong. */
const breach = (why: string | null): void => {
  if (why !== null) throw new Error(why)
}

const WORDS = [...KEYWORD_NAMES, 'PORT', 'Interface', '*', 'any', '-', '#', '25', 'smtp', '0', '65536', '127.0.0.1', '[::1]', '::1',
  'h:25', 'h:0', 'a, b:2', '/bin/x', './x', 'v1', 'v2', 'none', 'yes', 'no', '10.0.0.0/8', '1.5', '-1', 'constructor', '__proto__']
const fuzzLine = fc.oneof(
  fc.array(fc.constantFrom(...WORDS), { maxLength: 4 }).map(ws => ws.join(' ')),
  fc.tuple(fc.constantFrom(...WORDS), fc.string({ unit: 'binary', maxLength: 12 })).map(([k, v]) => `${k} ${v}`),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('', '   ', '\t', '# comment', 'x'.repeat(MAX_LINE + 1), `writefile ${'y'.repeat(MAX_LINE)}`),
)
const fuzzText = fc
  .tuple(fc.array(fuzzLine, { maxLength: 14 }), fc.constantFrom('\n', '\r\n', '\r', '\u2028'))
  .map(([lines, eol]) => lines.join(eol))

t.test('fuzz: random configuration text gives a configuration or a positioned ConfigError', async t => {
  fc.assert(fc.property(fuzzText, text => breach(configContract(text))), FUZZ)
  t.pass(`${FUZZ.numRuns} inputs, seed ${FUZZ.seed}`)
})

t.test('fuzz: mutated valid files give a configuration or a positioned ConfigError', async t => {
  const sample = readFileSync(fileURLToPath(new URL('../../etc/tcpproxy.conf', import.meta.url)), 'utf8').split('\n')
  const valid = [
    ...sample,
    'acp /bin/true', 'port 25', 'interface 127.0.0.1', 'server a, b:2525', 'timeout 0.5', 'accept-proxy 10.0.0.0/8',
    'send-proxy v2', 'max-connections 9', 'interface *', 'exec /bin/handler -x', 'writefile /tmp/d',
  ]
  const mutation = fc.oneof(
    fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('duplicate' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('swap' as const), at: fc.nat(), to: fc.nat() }),
    fc.record({ op: fc.constant('insert' as const), at: fc.nat(), line: fuzzLine }),
    fc.record({ op: fc.constant('splice' as const), at: fc.nat(), pos: fc.nat(), s: fc.string({ unit: 'binary', maxLength: 4 }), cut: fc.nat({ max: 3 }) }),
  )
  const mutate = (lines: string[], ms: Array<{ op: string; at: number; to?: number; line?: string; pos?: number; s?: string; cut?: number }>): string => {
    const out = [...lines]
    for (const m of ms) {
      const i = m.at % Math.max(1, out.length)
      if (m.op === 'delete') out.splice(i, 1)
      else if (m.op === 'duplicate') out.splice(i, 0, out[i] ?? '')
      else if (m.op === 'swap') {
        const j = (m.to as number) % Math.max(1, out.length)
        ;[out[i], out[j]] = [out[j] ?? '', out[i] ?? '']
      } else if (m.op === 'insert') out.splice(i, 0, m.line as string)
      else {
        const l = out[i] ?? ''
        const p = (m.pos as number) % (l.length + 1)
        out[i] = l.slice(0, p) + (m.s as string) + l.slice(p + (m.cut as number))
      }
    }
    return out.join('\n')
  }
  fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 5 }), ms => breach(configContract(mutate(valid, ms)))), FUZZ)
  t.pass(`${FUZZ.numRuns} mutations, seed ${FUZZ.seed}`)
})
