// A breaker file shared by two processes: this one and a child started with
// the same runtime. The child's failures open the circuit here.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import CircuitBreaker, { isCircuitOpenError } from 'shared-circuit-breaker'
import { assertEqual, check, done, runtime } from './check.mjs'

// How to start this runtime on a script.
const command = runtime === 'deno' ? [process.execPath, 'run', '-A'] : [process.execPath]

await check('a breaker file shared by two processes', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'runtimes-file-'))
  try {
    const file = path.join(dir, 'breaker')
    const options = { failureThreshold: 3, resetTimeout: 60000 }
    const breaker = CircuitBreaker.fromFile(file, options)
    await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})
    const child = spawnSync(command[0], [...command.slice(1), fileURLToPath(new URL('./file-process.mjs', import.meta.url)), file], {
      encoding: 'utf8',
      timeout: 60000,
    })
    if (child.status !== 0) throw new Error(`the child exited ${child.status}: ${child.stderr}`)
    const report = JSON.parse(child.stdout.trim().split('\n').pop())
    assertEqual(report, { sawFailures: 1, state: 'OPEN', pid: report.pid }, 'the child')
    assertEqual(report.pid !== process.pid, true, 'another process')
    assertEqual(breaker.getState(), 'OPEN', 'state here')
    const error = await breaker.execute(async () => 'ran').then(() => null, (e) => e)
    assertEqual(isCircuitOpenError(error), true, 'refused here')
    assertEqual(breaker.getStats().failures, 3, 'failures of both')
    breaker.dispose()
    return `process ${report.pid} and ${process.pid} over ${file}`
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
done()
