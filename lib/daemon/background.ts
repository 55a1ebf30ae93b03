/**
 * Background mode without fork(2): the command re-runs itself detached (a
 * new session, standard input, output and error on /dev/null) and waits
 * until the daemon reports on a status pipe that every listener is bound.
 * So `tcpproxy -c FILE` returns 0 only when the daemon runs, and a bind
 * error reaches the terminal instead of only syslog (the original's
 * weakness).
 *
 * What the daemon would write to standard error while it starts (its last
 * words on failure, the syslog fallback) travels on the same pipe, in order,
 * and the launcher prints it. Once the start is reported the pipe is closed
 * and the daemon holds nothing of the caller's: `tcpproxy ... | cat`,
 * `$(tcpproxy ...)` and `ssh host tcpproxy ...` return at once.
 */
import { spawn } from 'node:child_process'
import { closeSync, writeSync } from 'node:fs'
import { Writable } from 'node:stream'

/** The environment variable that tells the re-run process which fd reports its status. */
export const STATUS_FD_ENV = 'TCPPROXY_STATUS_FD'

export type LaunchResult = { ok: true; pid: number } | { ok: false; code: number; message: string }

/**
 * Start `execPath args` detached with a status pipe on fd 3, print the
 * `log TEXT` lines it sends on `stderr`, and wait for its verdict: a line
 * `ok` or `err CODE MESSAGE`. A daemon that dies without a word fails with
 * what it left behind.
 */
export function launchDetached(execPath: string, args: readonly string[], env: NodeJS.ProcessEnv, stderr: NodeJS.WritableStream = process.stderr): Promise<LaunchResult> {
  return new Promise(resolve => {
    const child = spawn(execPath, args, {
      detached: true,
      stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
      env: { ...env, [STATUS_FD_ENV]: '3' },
    })
    let text = ''
    let done = false
    const verdict = (r: LaunchResult): void => {
      done = true
      status.destroy()
      // The daemon lives on without us.
      child.unref()
      resolve(r)
    }
    const status = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void }
    status.setEncoding('utf8')
    status.on('data', (d: string) => {
      text += d
      let nl: number
      while (!done && (nl = text.indexOf('\n')) !== -1) {
        const line = text.slice(0, nl)
        text = text.slice(nl + 1)
        const m = /^err (\d+) (.*)$/.exec(line)
        if (line.startsWith('log ')) stderr.write(line.slice(4) + '\n')
        else if (line === 'ok') verdict({ ok: true, pid: child.pid as number })
        else if (m !== null) verdict({ ok: false, code: Number(m[1]), message: m[2] as string })
      }
    })
    status.on('end', () => {
      if (!done) verdict({ ok: false, code: 1, message: 'the daemon exited before it was ready' })
    })
  })
}

/** The daemon's end of the status pipe. */
export interface StatusChannel {
  /**
   * The daemon's standard error until the start is reported: each line goes
   * to the launcher's terminal; afterwards lines are dropped (stderr is
   * /dev/null in the daemon, so a syslog that goes away later loses lines).
   */
  readonly stderr: Writable
  /** Tell the launcher how the start went, once; then the pipe is closed. */
  report(result: { ok: true } | { ok: false; code: number; message: string }): void
}

/** In the daemon: the status pipe on `fd`. */
export function statusChannel(fd: number): StatusChannel {
  let open = true
  // The launcher is gone (killed): nobody is left to tell.
  const send = (text: string): void => {
    if (!open) return
    try {
      writeSync(fd, text)
    } catch {
      open = false
    }
  }
  const stderr = new Writable({
    write(chunk: Buffer, _encoding, done) {
      send(chunk.toString().replace(/\n$/, '').split('\n').map(l => `log ${l}\n`).join(''))
      done()
    },
  })
  return {
    stderr,
    report(result) {
      send(result.ok ? 'ok\n' : `err ${result.code} ${result.message.replace(/\n/g, ' ')}\n`)
      if (!open) return
      open = false
      closeSync(fd)
    },
  }
}
