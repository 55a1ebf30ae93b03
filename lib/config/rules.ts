/**
 * What no single keyword can check: settings of a service that only make
 * sense together. Checked once a service is complete, whether it came from
 * a file or from the command line.
 */
import type { ServiceSettings } from './config.js'
import type { Problem } from './problem.js'

/** The reason a service is unusable, or null. */
export function serviceProblem(s: ServiceSettings): Problem | null {
  if (s.servers === null && s.exec === null && s.redirectMode !== 'forward-only') {
    return w => `has no ${w.setting('server')} or ${w.setting('exec')} (only ${w.setting('redirect-mode', 'forward-only')} needs neither)`
  }
  if (s.exec !== null && s.redirectMode === 'forward') {
    return w => `has a handler${w.handler}, so it cannot forward to the original destination (use ${w.advice('redirect-mode', 'accept')} or forward-only)`
  }
  if (s.forgePort && !s.forgeAddr) return w => `sets ${w.setting('forge-port', 'yes')} without ${w.setting('forge-addr', 'yes')}`
  if (s.forgeAddr && s.sourceAddress !== null) {
    return w => `sets both ${w.setting('srcip')} and ${w.setting('forge-addr', 'yes')}; an upstream connection has one source`
  }
  return null
}
