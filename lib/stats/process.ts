/**
 * This process's own figures for the `process_*` metrics: resident memory,
 * CPU time, open descriptors. Each worker measures itself and ships them
 * with its counters; the supervisor adds its own at scrape time.
 */
import { readdirSync } from 'node:fs'

export interface ProcessFigures {
  residentMemoryBytes: number
  cpuSecondsTotal: number
  openFds: number
}

export function processFigures(): ProcessFigures {
  const cpu = process.cpuUsage()
  return {
    residentMemoryBytes: process.memoryUsage.rss(),
    cpuSecondsTotal: (cpu.user + cpu.system) / 1e6,
    // One entry is readdir's own descriptor, gone once it returns.
    openFds: readdirSync('/proc/self/fd').length - 1,
  }
}

/** Figures of several processes added up. */
export function sumFigures(all: readonly ProcessFigures[]): ProcessFigures {
  return {
    residentMemoryBytes: all.reduce((a, f) => a + f.residentMemoryBytes, 0),
    cpuSecondsTotal: all.reduce((a, f) => a + f.cpuSecondsTotal, 0),
    openFds: all.reduce((a, f) => a + f.openFds, 0),
  }
}
