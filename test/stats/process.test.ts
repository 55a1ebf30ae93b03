// lib/stats/process.ts: this process's figures, and their sum over processes.
import t from 'tap'
import { openSync, closeSync } from 'node:fs'
import { processFigures, sumFigures } from '../../lib/stats/process.js'

t.test('this process: memory, CPU time, descriptors (one more while a file is open)', async t => {
  const before = processFigures()
  t.ok(before.residentMemoryBytes > 1e6)
  t.ok(before.cpuSecondsTotal > 0)
  const fd = openSync('/dev/null', 'r')
  t.equal(processFigures().openFds, before.openFds + 1)
  closeSync(fd)
})

t.test('figures add up', async t => {
  const f = { residentMemoryBytes: 10, cpuSecondsTotal: 0.5, openFds: 3 }
  t.same(sumFigures([f, f]), { residentMemoryBytes: 20, cpuSecondsTotal: 1, openFds: 6 })
  t.same(sumFigures([]), { residentMemoryBytes: 0, cpuSecondsTotal: 0, openFds: 0 })
})
