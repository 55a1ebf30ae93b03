/**
 * tcpproxy.conf, from text to services. `port P` sets the current port;
 * each `interface I` starts a service for (P, I) that copies the defaults;
 * directives before the first `port` are those defaults. Unlike the
 * original, a per-service directive between `port` and the next
 * `interface` is an error instead of silently changing the previous service.
 *
 * The parser is pure: text in, services out, every error a ConfigError
 * naming FILE:LINE. The lines are read by grammar.ts, the keywords are in
 * keywords.ts, the settings that only make sense together in rules.ts.
 */
import { ConfigError, TcpproxyError } from '../errors.js'
import { parseInterface } from './address.js'
import { DEFAULT_GLOBALS, DEFAULT_SETTINGS, type Config, type GlobalSettings, type ServiceDef, type ServiceSettings } from './config.js'
import { checkValue, directives, lastLine } from './grammar.js'
import { KEYWORDS, type Keyword } from './keywords.js'
import { badPortText, parsePort, type PortLookup } from './port-names.js'
import { problemError } from './problem.js'
import { serviceProblem } from './rules.js'

/**
 * Parse configuration text. `file` names it in errors; `lookup` resolves port
 * names; `initial` are the defaults before the file's own (from the command line).
 */
export function parseConfig(
  text: string,
  file: string,
  lookup: PortLookup,
  initial: ServiceSettings = DEFAULT_SETTINGS,
  initialGlobals: GlobalSettings = DEFAULT_GLOBALS,
): Config {
  const defaults: ServiceSettings = { ...initial }
  const globals: GlobalSettings = { ...initialGlobals }
  const services: ServiceDef[] = []
  const ports: number[] = []
  const seen = new Map<string, number>()
  let port: { value: number; line: number; used: boolean } | null = null
  let current: ServiceDef | null = null

  const closePort = (): void => {
    if (port !== null && !port.used) {
      throw new ConfigError(file, port.line, `"port ${port.value}" has no "interface" line (use "interface *" for every address)`)
    }
  }

  for (const d of directives(text, file)) {
    const { line: lineNo, keyword, value: raw } = d
    const fail = (reason: string): never => {
      throw new ConfigError(file, lineNo, reason)
    }

    if (keyword === 'port' || keyword === 'interface') {
      checkValue(d, file, true)
      if (keyword === 'port') {
        closePort()
        const p = parsePort(raw, lookup)
        if (p === undefined) fail(badPortText(raw))
        port = { value: p as number, line: lineNo, used: false }
        if (!ports.includes(port.value)) ports.push(port.value)
        current = null
        continue
      }
      if (port === null) fail(`"interface" before any "port" line`)
      const p = port as { value: number; line: number; used: boolean }
      let iface: string | null = null
      try {
        iface = parseInterface(raw)
      } catch (err) {
        fail((err as TcpproxyError).message)
      }
      const key = `${iface ?? '*'} ${p.value}`
      const first = seen.get(key)
      if (first !== undefined) fail(`duplicate service ${iface ?? '*'} port ${p.value} (first defined at line ${first})`)
      seen.set(key, lineNo)
      p.used = true
      current = { ...defaults, port: p.value, iface, ifaceText: raw, source: { file, line: lineNo } }
      services.push(current)
      continue
    }

    const kw = KEYWORDS.get(keyword)
    if (kw === undefined) fail(`unknown keyword ${JSON.stringify(keyword)}`)
    const k = kw as Keyword
    checkValue(d, file, k.value === 'word')
    if (k.unsupported !== undefined) fail(`"${keyword}" is not supported (${k.unsupported})`)
    if (k.scope === 'service' && port !== null && current === null) {
      fail(`"${keyword}" must follow an "interface" line (after "port ${(port as { value: number }).value}")`)
    }
    const value = raw === '-' ? '' : raw
    try {
      ;(k.apply as NonNullable<Keyword['apply']>)(current ?? defaults, globals, value, lookup, current !== null)
    } catch (err) {
      fail((err as TcpproxyError).message)
    }
  }
  closePort()

  if (services.length === 0) throw new ConfigError(file, lastLine(text), 'no service defined (expected "port" and "interface" lines)')
  for (const s of services) {
    const problem = serviceProblem(s)
    if (problem !== null) throw problemError(s, problem)
  }
  return { services, ports, globals }
}
