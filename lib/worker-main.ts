/** Entry point of a worker process (forked by lib/supervisor.ts). */
import { runWorker } from './worker.js'

runWorker(process)
