// State events: open, halfOpen and close fire in this thread, also for a
// transition another thread made.
import { Worker } from 'node:worker_threads'
import CircuitBreaker, { createSharedArray } from 'shared-circuit-breaker'
import { assertEqual, check, done } from './check.mjs'

await check('state events, for transitions made here and in a worker', async () => {
  const array = createSharedArray()
  const breaker = new CircuitBreaker(array, { failureThreshold: 2, resetTimeout: 60000 })
  const seen = []
  const next = (event) => new Promise((resolve) => breaker.once(event, (change) => resolve(change)))
  for (const event of ['open', 'halfOpen', 'close']) breaker.on(event, (change) => seen.push([event, change.state]))

  // Opened by a worker thread.
  const opened = next('open')
  await new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./workers-thread.mjs', import.meta.url), { workerData: { array, failures: 2, threshold: 2 } })
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  const change = await withTimeout(opened, 'open')
  assertEqual(change.threadId !== 0, true, 'the open event names the worker')
  // Half-open and closed from here.
  const halfOpen = next('halfOpen')
  breaker.transitionToHalfOpen()
  await withTimeout(halfOpen, 'halfOpen')
  const closed = next('close')
  await breaker.execute(async () => 'probe')
  await withTimeout(closed, 'close')
  assertEqual(seen, [['open', 'OPEN'], ['halfOpen', 'HALF_OPEN'], ['close', 'CLOSED']], 'events')
  breaker.removeAllListeners()
  return `open from thread ${change.threadId}, then halfOpen and close`
})

function withTimeout(promise, event) {
  let timer
  return Promise.race([
    promise,
    new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${event} event within 5 s`)), 5000)
    }),
  ]).finally(() => clearTimeout(timer))
}
done()
