/** Entry point of a worker process (forked by lib/supervisor.ts). */
import * as inspector from 'node:inspector'
import { refuseDebugger } from './node-flags.js'
import { runWorker } from './worker.js'

refuseDebugger(process, inspector)
runWorker(process)
