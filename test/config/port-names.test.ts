/**
 * Port names: the services(5) parser, the file loader and parsePort.
 */
import fc from 'fast-check'
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadServices, parsePort, parseServices } from '../../lib/config/port-names.js'

const SAMPLE = [
  '# Network services, Internet style',
  '',
  'tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer',
  'smtp\t\t25/tcp\t\tmail',
  'domain\t\t53/udp',
  'domain\t\t53/tcp\t\tnameserver dns',
  'http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP',
  'zero\t\t0/tcp',
  'huge\t\t65536/tcp',
  'max\t\t65535/tcp',
  'garbled\t\tabc/tcp',
  'lonely',
  'www\t\t8080/tcp\t\tmail webcache',
  'syslog\t\t514/udp',
  'shell\t\t514/TCP\t\tcmd',
  '#commented\t999/tcp',
  'inline\t\t77/tcp#nospace',
  'crlf\t\t88/tcp\t\tcrlf-alias\r',
  '',
].join('\n')

t.test('parseServices keeps tcp names and aliases with their ports', async t => {
  const table = parseServices(SAMPLE)
  t.equal(table.get('tcpmux'), 1)
  t.equal(table.get('smtp'), 25)
  t.equal(table.get('mail'), 25)
  t.equal(table.get('domain'), 53)
  t.equal(table.get('nameserver'), 53)
  t.equal(table.get('dns'), 53)
  t.equal(table.get('max'), 65535)
  t.equal(table.get('inline'), 77)
  t.equal(table.get('crlf'), 88)
  t.equal(table.get('crlf-alias'), 88)
})

t.test('parseServices ignores udp entries, bad ports, comments and lines without a port', async t => {
  const table = parseServices(SAMPLE)
  t.equal(table.get('syslog'), undefined, 'udp only')
  t.equal(table.get('zero'), undefined, 'port 0')
  t.equal(table.get('huge'), undefined, 'port above 65535')
  t.equal(table.get('garbled'), undefined, 'not a number')
  t.equal(table.get('lonely'), undefined, 'no port at all')
  t.equal(table.get('#commented'), undefined)
  t.equal(table.get('commented'), undefined)
  t.equal(table.get('WorldWideWeb'), undefined, 'comment words are not aliases')
  t.equal(table.get('shell'), 514, 'the protocol is case-insensitive')
  t.equal(table.get('cmd'), 514)
})

t.test('parseServices lets the first entry for a name win, aliases included', async t => {
  const table = parseServices(SAMPLE)
  t.equal(table.get('www'), 80, 'an alias defined earlier beats a later primary name')
  t.equal(table.get('mail'), 25, 'a later alias does not override')
  t.equal(table.get('webcache'), 8080, 'a new alias on a later line is still added')
})

t.test('parseServices of empty text knows no names', async t => {
  t.same([...parseServices('').entries()], [])
})

t.test('loadServices reads a services file', async t => {
  const dir = t.testdir({ services: SAMPLE })
  const lookup = loadServices(join(dir, 'services'))
  t.equal(lookup('smtp'), 25)
  t.equal(lookup('www'), 80)
  t.equal(lookup('syslog'), undefined)
})

t.test('loadServices of a missing file knows no names instead of failing', async t => {
  const dir = t.testdir({})
  const lookup = loadServices(join(dir, 'no-such-file'))
  t.equal(lookup('smtp'), undefined)
})

t.test('loadServices of an unreadable path (a directory) knows no names', async t => {
  const dir = t.testdir({ sub: {} })
  t.equal(loadServices(join(dir, 'sub'))('smtp'), undefined)
})

t.test('loadServices reads /etc/services by default', async t => {
  // Compare with the same file read explicitly, so the test holds on any system.
  const dir = t.testdir({})
  const copy = join(dir, 'services')
  let text = ''
  try {
    text = readFileSync('/etc/services', 'utf8')
  } catch {
    // No /etc/services here: the default must then know no names either.
  }
  writeFileSync(copy, text)
  const expected = loadServices(copy)
  const lookup = loadServices()
  for (const name of ['smtp', 'http', 'telnet', 'ssh', 'no-such-service']) t.equal(lookup(name), expected(name), name)
})

t.test('parsePort accepts decimal ports 1-65535', async t => {
  const none = (): undefined => undefined
  t.equal(parsePort('1', none), 1)
  t.equal(parsePort('8025', none), 8025)
  t.equal(parsePort('65535', none), 65535)
  t.equal(parsePort('0025', none), 25, 'leading zeros are decimal, not octal')
})

t.test('parsePort refuses numbers out of range without asking the lookup', async t => {
  const asked: string[] = []
  const lookup = (name: string): number => {
    asked.push(name)
    return 1
  }
  t.equal(parsePort('0', lookup), undefined)
  t.equal(parsePort('65536', lookup), undefined)
  t.equal(parsePort('99999999999999999999', lookup), undefined)
  t.same(asked, [])
})

t.test('parsePort resolves names through the lookup', async t => {
  const lookup = loadServicesFrom('smtp 25/tcp mail\n')
  t.equal(parsePort('smtp', lookup), 25)
  t.equal(parsePort('mail', lookup), 25)
  t.equal(parsePort('nosuch', lookup), undefined)
  t.equal(parsePort('-1', lookup), undefined, 'a negative number is not a name either')
  t.equal(parsePort('', lookup), undefined)
})

function loadServicesFrom(text: string): (name: string) => number | undefined {
  const table = parseServices(text)
  return name => table.get(name)
}

/*
 * Fuzzing (fast-check, fixed seed, bounded runs). /etc/services belongs to the
 * system, not to tcpproxy: like getservbyname(3), a line it cannot use is
 * skipped, never an error. So whatever the text, parsing never throws and
 * knows only tcp names with ports 1-65535; parsePort gives such a port or
 * undefined (the caller names the position: config.test.ts, settings.test.ts).
 */
const FUZZ = { seed: 0x5e5, numRuns: 1500 } as const

t.test('fuzz: any services text gives tcp names with ports 1-65535, never an error', async t => {
  const word = fc.oneof(
    fc.constantFrom('smtp', '25/tcp', '25/TCP', '0/tcp', '65535/tcp', '65536/tcp', '99999999999999999999/tcp', '53/udp', '#', 'x#y', '__proto__', 'constructor', '1e3/tcp', '-1/tcp'),
    fc.string({ unit: 'binary', maxLength: 8 }),
  )
  const line = fc.array(word, { maxLength: 5 }).chain(ws => fc.constantFrom(' ', '\t', '  \t').map(sep => ws.join(sep)))
  const text = fc.array(line, { maxLength: 12 }).chain(ls => fc.constantFrom('\n', '\r\n').map(eol => ls.join(eol)))
  fc.assert(
    fc.property(text, fc.string({ unit: 'binary', maxLength: 10 }), (s, name) => {
      const table = parseServices(s)
      for (const [n, p] of table) {
        if (!(Number.isInteger(p) && p >= 1 && p <= 65535) || n === '') throw new Error(`bad entry ${JSON.stringify(n)} ${p}`)
      }
      const p = parsePort(name, n => table.get(n))
      if (p !== undefined && !(Number.isInteger(p) && p >= 1 && p <= 65535)) throw new Error(`parsePort(${JSON.stringify(name)}) = ${p}`)
    }),
    FUZZ,
  )
  t.pass(`${FUZZ.numRuns} files, seed ${FUZZ.seed}`)
})
