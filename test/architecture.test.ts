/**
 * The house plan of lib/ (lib/README.md), checked: no import cycle, no
 * module over 400 lines, runtime code independent of the configuration
 * parser, the core reading nothing of process.*, and test/ mirroring lib/.
 * Each rule states what it protects; a new module that breaks one fails
 * here with its name.
 */
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, posix, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

function walk(dir: string, suffix: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter(e => e.isFile() && e.name.endsWith(suffix))
    .map(e => relative(ROOT, join(e.parentPath, e.name)).split('\\').join('/'))
    .filter(f => !f.startsWith('test/fixtures/') && !f.endsWith('.d.ts'))
    .sort()
}

const LIB = walk('lib', '.ts')
const text = new Map(LIB.map(f => [f, readFileSync(join(ROOT, f), 'utf8')]))

/** The lib/ modules a module imports at run time (`import type` excluded: it leaves no edge). */
function imports(file: string): string[] {
  const out: string[] = []
  for (const m of (text.get(file) as string).matchAll(/^import\s+(type\s+)?[^'";]*?from\s+'(\.[^']+)'/gm)) {
    if (m[1] !== undefined) continue
    out.push(posix.normalize(posix.join(posix.dirname(file), (m[2] as string).replace(/\.js$/, '.ts'))))
  }
  return out
}
const graph = new Map(LIB.map(f => [f, imports(f)]))

t.test('every relative import names a module that exists', async t => {
  for (const [f, deps] of graph) for (const d of deps) t.ok(text.has(d), `${f} imports ${d}`)
})

t.test('no import cycle in lib/', async t => {
  const state = new Map<string, 'open' | 'done'>()
  const cycles: string[] = []
  const visit = (f: string, path: string[]): void => {
    if (state.get(f) === 'done') return
    if (state.get(f) === 'open') { cycles.push([...path.slice(path.indexOf(f)), f].join(' -> ')); return }
    state.set(f, 'open')
    for (const d of graph.get(f) ?? []) visit(d, [...path, f])
    state.set(f, 'done')
  }
  for (const f of LIB) visit(f, [])
  t.same(cycles, [], 'cycles')
})

t.test('no TypeScript module over 400 lines', async t => {
  const long = LIB.map(f => [f, (text.get(f) as string).split('\n').length - 1] as const).filter(([, n]) => n > 400)
  t.same(long, [], 'modules over 400 lines')
})

// The configuration parser turns text into settings; everything that runs
// per connection works from resolved settings and must not pull the parser
// (and its wording) in.
const PARSER = LIB.filter(f => /^lib\/config\/(config|grammar|keywords|values|rules)\.ts$/.test(f))
const RUNTIME = /^lib\/(server|session|relay|protocol|transparent|log|native)\//
t.test('runtime code does not import the configuration parser, even indirectly', async t => {
  t.ok(PARSER.length > 0, 'the parser modules are found')
  const reach = (from: string): Set<string> => {
    const seen = new Set<string>()
    const todo = [...(graph.get(from) ?? [])]
    for (let f = todo.pop(); f !== undefined; f = todo.pop()) {
      if (seen.has(f)) continue
      seen.add(f)
      todo.push(...(graph.get(f) ?? []))
    }
    return seen
  }
  const bad = LIB.filter(f => RUNTIME.test(f)).flatMap(f => [...reach(f)].filter(d => PARSER.includes(d)).map(d => `${f} -> ${d}`))
  t.same(bad, [])
})

// The core is driven by its caller (main.ts, the worker): what it needs of the
// process (environment, arguments, uid, cwd) arrives as options, which is what
// lets the tests run it in process.
const CORE = /^lib\/(server|session|relay|protocol|transparent|config)\//
t.test('the core reads nothing of process.*', async t => {
  const bad = LIB.filter(f => CORE.test(f)).flatMap(f => [...(text.get(f) as string).matchAll(/\bprocess\.(env|argv|cwd|getuid|geteuid|getgid|platform|pid|stdin|stdout|stderr|exit|on)\b/g)].map(m => `${f}: ${m[0]}`))
  t.same(bad, [])
})

// Entry points have no unit of their own: the end-to-end tests run them.
const ENTRIES: Record<string, string> = {
  'lib/main.ts': 'test/e2e/*.test.ts (bin/tcpproxy)',
  'lib/worker-main.ts': 'test/e2e/workers.test.ts, test/daemon/supervisor.test.ts',
  'lib/daemon/worker.ts': 'test/e2e/workers.test.ts, test/e2e/supervisor.test.ts',
  'lib/version.ts': 'test/e2e/forward.test.ts (--version)',
}
const NOT_UNITS = /^test\/(e2e\/|docs\.test\.ts$|package\.test\.ts$|architecture\.test\.ts$)/
t.test('test/ mirrors lib/: lib/a/b.ts is tested by test/a/b.test.ts', async t => {
  const tests = walk('test', '.test.ts')
  const unit = (f: string) => `test/${f.slice(4, -3)}.test.ts`
  t.same(LIB.filter(f => !tests.includes(unit(f)) && !(f in ENTRIES)), [], 'modules without a test file')
  // A module's fuzz test, kept apart (its own process, its own time budget): test/a/b-fuzz.test.ts.
  t.same(tests.filter(x => !NOT_UNITS.test(x) && !LIB.includes(`lib/${x.slice(5, -8).replace(/-fuzz$/, '')}.ts`)), [], 'test files without a module')
  for (const f of Object.keys(ENTRIES)) t.ok(LIB.includes(f), `${f} exists`)
})

t.test('lib/README.md names every folder of lib/', async t => {
  const readme = readFileSync(join(ROOT, 'lib/README.md'), 'utf8')
  const folders = [...new Set(LIB.map(f => dirname(f)).filter(d => d !== 'lib'))]
  for (const d of folders) t.match(readme, `${d.slice(4)}/`, `${d} is described`)
})

// The configuration language stands alone: it can be read, tested and
// reused without the daemon, the sockets or the logger.
t.test('config/ imports nothing outside itself but errors.ts and text.ts', async t => {
  const bad = [...graph].flatMap(([f, deps]) => f.startsWith('lib/config/') ? deps.filter(d => !d.startsWith('lib/config/') && d !== 'lib/errors.ts' && d !== 'lib/text.ts').map(d => `${f} -> ${d}`) : [])
  t.same(bad, [])
})
