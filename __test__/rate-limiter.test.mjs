// The RateLimiter: GCRA shared by every thread, tryAcquire, execute with a
// bounded wait, errors and options.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RateLimiter, RateLimitedError, isRateLimitedError, Bulkhead } from 'shared-circuit-breaker'
import { startWorker } from './support/messages.mjs'

const WORKER = new URL('./fixtures/limits-worker.mjs', import.meta.url)

function limiter(options) {
  return new RateLimiter(RateLimiter.createSharedArray(), options)
}

test('tryAcquire admits a burst, then refuses until the next emission interval', async () => {
  const r = limiter({ limit: 10, interval: 1000, burst: 3 })
  assert.deepEqual([1, 2, 3, 4].map(() => r.tryAcquire()), [true, true, true, false])
  await new Promise((resolve) => setTimeout(resolve, 110)) // one emission interval: 100 ms
  assert.equal(r.tryAcquire(), true)
  assert.equal(r.tryAcquire(), false)
  const stats = r.getStats()
  assert.equal(stats.admitted, 4)
  assert.equal(stats.rejected, 2)
  assert.equal(stats.delayed, 0)
})

test('execute waits until the call is due, up to maxWait', async () => {
  const r = limiter({ limit: 20, interval: 1000, maxWait: 200 }) // one call per 50 ms
  const started = performance.now()
  const times = await Promise.all([1, 2, 3].map(() => r.execute(() => performance.now() - started)))
  assert.ok(times[0] < 40, `the first went at once (${times[0]} ms)`)
  assert.ok(times[1] >= 45, `the second waited one interval (${times[1]} ms)`)
  assert.ok(times[2] >= 95, `the third waited two (${times[2]} ms)`)
  assert.equal(r.getStats().delayed, 2)
})

test('execute rejects without calling the task when the wait would exceed maxWait', async () => {
  const r = limiter({ limit: 1, interval: 1000, maxWait: 100 })
  assert.equal(await r.execute(() => 'first'), 'first')
  let called = false
  const error = await r.execute(() => (called = true)).catch((e) => e)
  assert.equal(called, false)
  assert.ok(error instanceof RateLimitedError)
  assert.equal(error.code, 'ERR_RATE_LIMITED')
  assert.ok(isRateLimitedError(error))
  assert.ok(error.retryAfter > 800 && error.retryAfter <= 1000, `retryAfter ${error.retryAfter}`)
  assert.equal(error.stack, `RateLimitedError: ${error.message}`)
})

test('four workers share one limit', async () => {
  const options = { limit: 20, interval: 100 } // one call per 5 ms, no burst
  const array = RateLimiter.createSharedArray()
  const ms = 400
  const workers = Array.from({ length: 4 }, () => startWorker(WORKER, { role: 'rate', array, options, ms }))
  const results = await Promise.all(workers.map((w) => w.next()))
  const admitted = results.flatMap((r) => r.admitted).sort((a, b) => a - b)
  // Between the first and the last admission (the workers start a little
  // apart) at most 1 + span / 5 ms, and in any 100 ms span at most 20 (+1
  // each: the times are read just after admission, up to a ms apart).
  const span = admitted.at(-1) - admitted[0]
  assert.ok(admitted.length <= 2 + Math.floor(span / 5), `${admitted.length} admitted in ${span} ms`)
  assert.ok(admitted.length >= 20, `${admitted.length} admitted: the limiter let calls through`)
  for (let i = 0, j = 0; i < admitted.length; i++) {
    while (admitted[i] - admitted[j] >= 100) j++
    assert.ok(i - j + 1 <= 21, `${i - j + 1} calls within 100 ms`)
  }
  assert.equal(new RateLimiter(array, options).getStats().admitted, admitted.length)
})

test('options are checked, naming the option, its range and what was received', () => {
  const array = RateLimiter.createSharedArray()
  assert.throws(() => new RateLimiter(array, { limit: '1', interval: 1000 }), {
    name: 'TypeError',
    message: 'options.limit must be a number, got the string "1"',
  })
  assert.throws(() => new RateLimiter(array, { limit: 0, interval: 1000 }), {
    name: 'RangeError',
    message: 'limit must be an integer from 1 to 4294967295, got 0',
  })
  assert.throws(() => new RateLimiter(array, { limit: 1, interval: 0.5 }), {
    name: 'RangeError',
    message: 'interval must be an integer number of milliseconds from 1 to 2147483647, got 0.5',
  })
  assert.throws(() => new RateLimiter(array, { limit: 1, interval: 10, burst: 0 }), {
    name: 'RangeError',
    message: 'burst must be an integer from 1 to 4294967295, got 0',
  })
  assert.throws(() => new RateLimiter(array, { limit: 1, interval: 10, maxWait: -1 }), {
    name: 'RangeError',
    message: 'options.maxWait must be a number of milliseconds from 0 to 2147483647, got -1',
  })
  new RateLimiter(array, { limit: 1, interval: 10 })
  assert.throws(() => new RateLimiter(array, { limit: 2, interval: 10 }), {
    name: 'RangeError',
    message: /already holds a rate limiter with another limit, interval or burst/,
  })
  const bulkheadArray = Bulkhead.createSharedArray({ maxConcurrent: 1 })
  new Bulkhead(bulkheadArray, { maxConcurrent: 1 })
  assert.throws(() => new RateLimiter(bulkheadArray, { limit: 1, interval: 10 }), {
    name: 'RangeError',
    message: /holds data that is not a rate limiter/,
  })
  assert.throws(() => new RateLimiter(new Int32Array(16), { limit: 1, interval: 10 }), { name: 'TypeError' })
})

test('rate limiter files share one limit between limiters', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cbjs-rate-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'limiter')
  const options = { limit: 1, interval: 60000 }
  const a = RateLimiter.fromFile(path, options)
  const b = RateLimiter.fromFile(path, options)
  assert.equal(a.tryAcquire(), true)
  assert.equal(b.tryAcquire(), false)
  assert.throws(() => Bulkhead.fromFile(path, { maxConcurrent: 1 }), { code: 'ERR_CIRCUIT_BREAKER_FILE' })
})

test('an array another thread wrote over: execute rejects, never throws', async () => {
  const array = RateLimiter.createSharedArray()
  const limiter = new RateLimiter(array, { limit: 5, interval: 1000 })
  const worker = startWorker(WORKER, { role: 'scribble', array, writes: [[5, 1]] })
  assert.equal(await worker.next(), 'written')
  assert.equal(await worker.exited, 0)
  let refused
  assert.doesNotThrow(() => (refused = limiter.execute(() => 'never')))
  await assert.rejects(refused, { name: 'RangeError', message: /not a rate limiter/ })
})
