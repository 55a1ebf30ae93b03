/**
 * The process edge: argv, files, stdout/stderr, signals and the exit status.
 * Everything below it (lib/proxy.ts and friends) is given what it needs.
 */
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { describeService } from './describe.js'
import { parseArgs } from './cli.js'
import { TcpproxyError, errorText } from './errors.js'
import { streamLogger } from './log.js'
import { Proxy } from './proxy.js'
import { resolveServices } from './resolve.js'
import { loadServices } from './services.js'
import { buildConfig } from './settings.js'
import { VERSION } from './version.js'

/** Seconds open sessions get to finish after SIGTERM/SIGINT. */
const GRACE_MS = 10_000

function fail(err: unknown): never {
  // Every expected failure is a TcpproxyError; anything else is a bug, still
  // reported as one line rather than a stack trace.
  /* c8 ignore next */
  const e = err instanceof TcpproxyError ? err : new TcpproxyError('ERR_RUNTIME', errorText(err))
  process.stderr.write(`tcpproxy: ${e.message}\n`)
  process.exit(e.exitCode)
}

/** Run tcpproxy with the process's arguments; returns once it serves (or exits). */
export async function run(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  try {
    const parsed = parseArgs(argv, VERSION)
    if (parsed.kind === 'exit') {
      process.stdout.write(parsed.output)
      process.exit(parsed.code)
    }
    const o = parsed.options
    const config = buildConfig(o, { readFile: path => readFileSync(path, 'utf8'), lookup: loadServices() })
    if (o.listPorts) {
      // For fuser(1)/netuser: bare decimal ports, one per line; nothing bound.
      process.stdout.write(config.ports.map(p => `${p}\n`).join(''))
      process.exit(0)
    }
    const services = await resolveServices(config.services)
    const proxy = new Proxy(services, {
      logger: streamLogger(process.stderr, basename(process.argv[1] as string), process.pid, o.debug),
    })
    if (o.check) {
      for (const s of services) process.stdout.write(describeService(s) + '\n')
      process.exit(0)
    }
    await proxy.listen()
    let stopping = false
    const stop = (): void => {
      // A second signal means "now".
      if (stopping) process.exit(1)
      stopping = true
      void proxy.close(GRACE_MS).then(() => process.exit(0))
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  } catch (err) {
    fail(err)
  }
}
