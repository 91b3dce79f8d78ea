// Two worker threads share one breaker over a SharedArrayBuffer: their
// failures add up, and once it opens, every thread (this one too) is refused.
import { Worker } from 'node:worker_threads'
import CircuitBreaker, { createSharedArray } from 'shared-circuit-breaker'
import { assertEqual, check, done } from './check.mjs'

await check('two worker threads share one breaker', async () => {
  const array = createSharedArray()
  const breaker = new CircuitBreaker(array, { failureThreshold: 4, resetTimeout: 60000 })
  const run = (failures) => new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./workers-thread.mjs', import.meta.url), { workerData: { array, failures, threshold: 4 } })
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  const reports = await Promise.all([run(2), run(2)])
  assertEqual(reports.map((r) => r.failed), [2, 2], 'failures per worker')
  assertEqual(breaker.getStats().failures, 4, 'failures seen by the main thread')
  assertEqual(breaker.getState(), 'OPEN', 'state in the main thread')
  const last = await run(0)
  assertEqual([last.state, last.refused], ['OPEN', true], 'a third worker is refused')
  return `threads ${reports.map((r) => r.threadId).join(', ')} opened it together`
})
done()
