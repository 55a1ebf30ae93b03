/**
 * Background mode without fork(2): the command re-runs itself detached (a
 * new session, stdin and stdout on /dev/null, stderr kept for the last
 * words before syslog takes over) and waits until the daemon reports on a
 * status pipe that every listener is bound. So `tcpproxy -c FILE` returns 0
 * only when the daemon runs, and a bind error reaches the terminal instead
 * of only syslog (the original's weakness).
 */
import { spawn } from 'node:child_process'
import { closeSync, writeSync } from 'node:fs'

/** The environment variable that tells the re-run process which fd reports its status. */
export const STATUS_FD_ENV = 'TCPPROXY_STATUS_FD'

export type LaunchResult = { ok: true; pid: number } | { ok: false; code: number; message: string }

/**
 * Start `execPath args` detached with a status pipe on fd 3, and wait for
 * its verdict: a line `ok` or `err CODE MESSAGE`. A daemon that dies
 * without a word fails with what it left behind.
 */
export function launchDetached(execPath: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<LaunchResult> {
  return new Promise(resolve => {
    const child = spawn(execPath, args, {
      detached: true,
      stdio: ['ignore', 'ignore', 'inherit', 'pipe'],
      env: { ...env, [STATUS_FD_ENV]: '3' },
    })
    let text = ''
    const status = child.stdio[3] as NodeJS.ReadableStream
    status.setEncoding('utf8')
    status.on('data', (d: string) => (text += d))
    status.on('end', () => {
      const line = text.split('\n')[0] as string
      const m = /^err (\d+) (.*)$/.exec(line)
      if (line === 'ok') resolve({ ok: true, pid: child.pid as number })
      else if (m !== null) resolve({ ok: false, code: Number(m[1]), message: m[2] as string })
      else resolve({ ok: false, code: 1, message: 'the daemon exited before it was ready' })
      // The daemon lives on without us.
      child.unref()
    })
  })
}

/** In the daemon: tell the launcher how the start went, once; then the pipe is closed. */
export function reportStatus(fd: number, result: { ok: true } | { ok: false; code: number; message: string }): void {
  const line = result.ok ? 'ok\n' : `err ${result.code} ${result.message.replace(/\n/g, ' ')}\n`
  try {
    writeSync(fd, line)
    closeSync(fd)
  } catch {
    // The launcher is gone (killed): nobody is left to tell.
  }
}
