/**
 * The documentation stays true: every option of --help and every keyword
 * of the configuration parser is in the man page and README, README shows
 * the two set-up commands, and every code block of README.md and every
 * example of the man page is checked against the code: configuration
 * blocks parse and validate, command lines parse with the options they
 * show, log lines have the shape of the lines a real session logs, error
 * lines are the ones the code produces. (The shipped sample is parsed in
 * config.test.ts and run in test/e2e/forward.test.ts.)
 */
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { parseArgs } from '../lib/cli/options.js'
import { parseCtlArgs } from '../lib/cli/ctl.js'
import { DEFAULT_SETTINGS } from '../lib/config/config.js'
import { KEYWORD_NAMES } from '../lib/config/keywords.js'
import { parseConfig } from '../lib/config/parse.js'
import { ERROR_CODES } from '../lib/errors.js'
import { checkServices, type Inode } from '../lib/daemon/preflight.js'
import { loadServices } from '../lib/config/port-names.js'
import { buildConfig } from '../lib/cli/settings.js'
import { backend, echoAfterEnd, exchange, startProxy } from './fixtures/harness.js'

const man = readFileSync(new URL('../man/tcpproxy.1', import.meta.url), 'utf8').replace(/\\-/g, '-').replace(/\\f[BIRP]/g, '')
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

t.test('every option in --help is documented in the man page', async t => {
  const r = parseArgs(['--help'], '0')
  const help = r.kind === 'exit' ? r.output : ''
  const flags = [...help.matchAll(/(?:^|[\s,])(--?[a-zA-Z][\w-]*)/gm)].map(m => m[1] as string)
  t.ok(flags.length >= 10, `found ${flags.length} flags in --help`)
  for (const flag of new Set(flags)) t.ok(man.includes(flag), `${flag} is in the man page`)
})

t.test('every configuration keyword is documented in the man page', async t => {
  for (const k of KEYWORD_NAMES) t.match(man, new RegExp(`^\\.B[IR]? ${k}\\b|^\\.B ${k}$|\\.BR ${k} `, 'm'), `${k} is in the man page`)
})

t.test('README gives the two set-up commands', async t => {
  t.match(readme, 'npm ci && ./bin/tcpproxy -d -c etc/tcpproxy.conf')
  t.match(readme, 'npm ci && npm test')
})

t.test('the man page\'s transparent-proxying example configuration parses', async t => {
  const block = /^# tcpproxy\.conf\n([\s\S]*?)\n\n/m.exec(man)
  t.ok(block, 'the example is there')
  const c = parseConfig((block as RegExpExecArray)[1] as string, 'man page', () => undefined)
  t.same(
    c.services.map(s => [s.port, s.redirectMode, s.transparent, s.forgeAddr, s.forgePort]),
    [
      [8025, 'forward-only', false, false, false],
      [8080, 'forward-only', true, true, true],
    ],
  )
})

t.test('the man page has a SECURITY section covering the review', async t => {
  const security = man.slice(man.indexOf('.SH SECURITY'), man.indexOf('.SH', man.indexOf('.SH SECURITY') + 1))
  for (const topic of ['No shell', 'PROXY_CLIENTNAME', 'The pidfile', 'Traffic dumps', 'No root after start-up', 'Resource bounds']) {
    t.match(security, `.B ${topic}`, topic)
  }
})

/* The code blocks. */

/** README's fenced blocks: language and text. */
const fenced = [...readme.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)].map(m => ({ lang: m[1] as string, text: m[2] as string }))
/** The man page's .nf/.fi examples, roff requests dropped. */
const manExamples = [...man.matchAll(/^\.nf\n([\s\S]*?)^\.fi$/gm)].map(m => (m[1] as string).split('\n').filter(l => !/^\.(RS|RE)\b/.test(l)).join('\n'))
const blocks = [...fenced.map(b => ({ where: `README.md \`\`\`${b.lang}`, ...b })), ...manExamples.map(text => ({ where: 'man page .nf', lang: '', text }))]

/** Words of a shell command line: blanks split, single or double quotes group; a `#` word starts a comment. */
function shellWords(text: string): string[] {
  const words: string[] = []
  for (const m of text.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) {
    if (m[3]?.startsWith('#')) break
    words.push(m[1] ?? m[2] ?? (m[3] as string))
  }
  return words
}

/** Every tcpproxy invocation in a shell text: at a line start, after `&&`, inside `$(...)`, or an inetd.conf line's. */
function invocations(text: string): string[][] {
  const out: string[][] = []
  for (const line of text.split('\n')) {
    const inetd = /^\S+\s+stream\s+tcp\s+\S+\s+\S+\s+\S*tcpproxy\s+tcpproxy\s+(.*)$/.exec(line)
    if (inetd !== null) {
      out.push(shellWords(inetd[1] as string))
      continue
    }
    for (const m of line.matchAll(/(?:^|&&\s*|\$\(|ExecStart=)(?:\S*\/)?tcpproxy(?=\s|$)((?:\s+[^\s)#][^\s)]*)*)/g)) out.push(shellWords(m[1] as string))
  }
  return out
}

const lookup = loadServices()

/** Parse a command line as tcpproxy would; with -b (no file), build its one service too. */
function checkCommand(t: Test, words: string[], where: string): void {
  const r = parseArgs(words, '0')
  if (r.kind === 'ctl') return void t.doesNotThrow(() => parseCtlArgs(r.argv), `${where}: tcpproxy ${words.join(' ')} parses`)
  // --help and --version parse to an answer and exit 0; anything else runs.
  const ok = r.kind === 'run' || r.code === 0
  t.ok(ok, `${where}: tcpproxy ${words.join(' ')} parses`)
  if (r.kind === 'run' && r.options.bind !== null && r.options.config === null) {
    t.doesNotThrow(() => buildConfig(r.options, { readFile: () => '', lookup, inetdPort: null }), `${where}: tcpproxy ${words.join(' ')} describes a service`)
  }
}

/** A configuration directive's first word. */
const isDirective = (l: string): boolean => KEYWORD_NAMES.includes((l.trim().split(/\s/)[0] as string).toLowerCase())

/**
 * The configuration at the start of a block: its lines up to the first
 * one that is no directive, comment or blank line (firewall commands
 * follow it in the man page), or null when it has no directive.
 */
function configPart(text: string): string | null {
  const lines = text.split('\n')
  const end = lines.findIndex(l => !(l.trim() === '' || l.trim().startsWith('#') || isDirective(l)))
  const part = lines.slice(0, end < 0 ? undefined : end)
  return part.some(isDirective) ? part.join('\n') : null
}

t.test('every configuration block of README and the man page parses and validates', async t => {
  let n = 0
  for (const b of blocks) {
    const conf = configPart(b.text)
    if (conf === null || b.lang === 'sh') continue
    n++
    t.doesNotThrow(() => parseConfig(conf, b.where, lookup), `${b.where}:\n${conf}`)
  }
  t.ok(n >= 3, `${n} configuration blocks`)
})

t.test('every tcpproxy command line of README and the man page parses with the options it shows', async t => {
  let n = 0
  for (const b of blocks) {
    for (const words of invocations(b.text)) {
      n++
      checkCommand(t, words, b.where)
    }
  }
  // The files in etc/ (and the indented example commands in their comments).
  for (const name of ['inetd.conf', 'tcpproxy.service', 'tcpproxy.conf', 'examples/route-by-client']) {
    const text = readFileSync(new URL(`../etc/${name}`, import.meta.url), 'utf8').replace(/^#\s{2,}/gm, '')
    for (const words of invocations(text)) {
      n++
      checkCommand(t, words, `etc/${name}`)
    }
  }
  // And the ones in running text: `tcpproxy --check -c FILE`.
  for (const m of readme.matchAll(/`tcpproxy ([^`]*)`/g)) {
    n++
    checkCommand(t, shellWords(m[1] as string), 'README.md text')
  }
  t.ok(n >= 15, `${n} command lines`)
})

/** A log line with its particulars (pid, addresses, numbers) made placeholders. */
const shape = (line: string): string =>
  line
    .replace(/^[\w.-]+\[\d+\]: /, 'NAME[PID]: ')
    .replace(/(?:\[[0-9a-f:.]+\]|[\w.-]+):\d+/gi, 'HOST:PORT')
    .replace(/\b\d+\.\d+\.\d+\.\d+\b/g, 'IP')
    .replace(/\b\d+(?:\.\d+)?\b/g, 'N')

t.test("README's log excerpt has the shape of what a real session logs", async t => {
  const excerpt = fenced.map(b => b.text.split('\n').filter(l => /^tcpproxy\[\d+\]: /.test(l))).find(ls => ls.length > 0) ?? []
  t.ok(excerpt.length >= 5, 'the excerpt is there')
  const up = await backend(echoAfterEnd)
  t.teardown(() => up.close())
  const p = await startProxy(port => ['-d', '-b', `127.0.0.1:${port}`, `127.0.0.1:${up.port}`])
  t.teardown(p.stop)
  await exchange(p.port, 'HELO\r\n')
  await p.waitFor(/disconnect/)
  const real = new Set(p.lines.map(shape))
  for (const line of excerpt) t.ok(real.has(shape(line)), `${line}\n  has the shape of one of\n${[...real].join('\n')}`)
})

t.test("the man page's start-up check example is the line the check produces", async t => {
  const example = manExamples.map(e => e.trim()).find(e => e.startsWith('tcpproxy: ') && e.includes('cannot be run')) as string
  t.ok(example, 'the example is there')
  const dir = (mode: number): Inode => ({ mode: 0o040000 | mode, uid: 0, gid: 0, kind: 'directory' })
  const stat = (path: string): Inode | string => ({ '/': dir(0o755), '/root': dir(0o700) })[path] ?? 'ENOENT'
  const m = /^tcpproxy: (\S+):(\d+): service (\S+) port (\d+): handler (\S+) /.exec(example) as RegExpExecArray
  const service = {
    ...DEFAULT_SETTINGS,
    exec: [m[5] as string],
    port: Number(m[4]),
    iface: null,
    ifaceText: m[3] as string,
    source: { file: m[1] as string, line: Number(m[2]) },
  }
  t.throws(() => checkServices([service], { name: 'nobody', uid: 65534, gid: 65534, groups: [] }, stat, '/'), { message: example.replace(/^tcpproxy: /, '') })
})

t.test('README lists every configuration keyword, and the man page every error code with its exit status', async t => {
  const table = readme.slice(readme.indexOf('| keyword |'), readme.indexOf('\n\n', readme.indexOf('| keyword |')))
  // debug: 2.0's keyword, parsed only to be refused.
  for (const k of KEYWORD_NAMES.filter(k => k !== 'debug')) t.match(table, new RegExp(`\`${k}\``), `${k} is in README's table`)
  const diagnostics = man.slice(man.indexOf('.SH DIAGNOSTICS'), man.indexOf('.SH', man.indexOf('.SH DIAGNOSTICS') + 1))
  for (const [code, status] of Object.entries(ERROR_CODES)) t.match(diagnostics, `.BR ${code} " (exit ${status})"`, code)
  t.notMatch(readme, /not supported yet/i, 'README promises nothing implemented as missing')
})
