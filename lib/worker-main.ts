/** Entry point of a worker process (forked by lib/daemon/supervisor.ts). */
import * as inspector from 'node:inspector'
import { refuseDebugger } from './daemon/node-flags.js'
import { runWorker } from './daemon/worker.js'

refuseDebugger(process, inspector)
runWorker(process)
