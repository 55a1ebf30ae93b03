/**
 * The documentation stays true: every option of --help and every keyword
 * of the configuration parser is in the man page, README shows the two
 * set-up commands. (The shipped sample is parsed in config.test.ts and run
 * in e2e-forward.test.ts.)
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { parseArgs } from '../lib/cli.js'
import { KEYWORD_NAMES, parseConfig } from '../lib/config.js'

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
