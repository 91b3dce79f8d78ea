// The Bulkhead: permits shared by every thread (and, over a file, every
// process), the wait queue, leases, errors, and composition with the breaker.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import CircuitBreaker, {
  Bulkhead,
  BulkheadFullError,
  createSharedArray,
  isBulkheadFullError,
  isCircuitOpenError,
  openBreakerFile,
  RateLimiter,
} from 'shared-circuit-breaker'
import fc from 'fast-check'
import { createRequire } from 'node:module'
import { startWorker } from './support/messages.mjs'
import { gate } from './support/limits.mjs'

const WORKER = new URL('./fixtures/limits-worker.mjs', import.meta.url)
// The binding as the facade holds it (the same module instance).
const native = createRequire(import.meta.url)('../lib/native.js')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function bulkhead(options) {
  return new Bulkhead(Bulkhead.createSharedArray(options), options)
}

test('admits maxConcurrent calls at once and rejects the next without calling it', async () => {
  const b = bulkhead({ maxConcurrent: 2 })
  const { open, opened } = gate()
  const running = [b.execute(() => opened), b.execute(() => opened)]
  let called = false
  const refused = await b.execute(() => (called = true)).catch((error) => error)
  assert.equal(called, false)
  assert.ok(refused instanceof BulkheadFullError)
  assert.ok(refused instanceof Error)
  assert.equal(refused.code, 'ERR_BULKHEAD_FULL')
  assert.equal(refused.stack, 'BulkheadFullError: Bulkhead is full')
  assert.ok(isBulkheadFullError(refused))
  assert.ok(isBulkheadFullError({ code: 'ERR_BULKHEAD_FULL' }))
  assert.equal(isBulkheadFullError(new Error('x')), false)
  assert.deepEqual({ ...b.getStats(), name: undefined }, {
    name: undefined,
    maxConcurrent: 2,
    maxQueue: 0,
    inUse: 2,
    queued: 0,
    rejected: 1,
    queueTimeouts: 0,
    reclaimed: 0,
    lostReleases: 0,
  })
  open()
  await Promise.all(running)
  assert.equal(b.getStats().inUse, 0)
  assert.equal(await b.execute(() => 7), 7)
})

test('a permit comes back when the task fails or throws', async () => {
  const b = bulkhead({ maxConcurrent: 1 })
  await assert.rejects(b.execute(() => Promise.reject(new Error('down'))), /down/)
  await assert.rejects(
    b.execute(() => {
      throw new Error('sync')
    }),
    /sync/,
  )
  assert.equal(b.getStats().inUse, 0)
  assert.equal(await b.execute(async () => 'ok'), 'ok')
})

test('calls overlapping in one thread each release their own permit, whichever path took it', async () => {
  const b = bulkhead({ maxConcurrent: 3 })
  const [a, c, d] = [gate(), gate(), gate()]
  // A takes this thread's permit on the fast path; B finds it held and
  // takes another; B ends first, so C takes B's permit on the fast path
  // while A still holds the first.
  const first = b.execute(() => a.opened)
  await b.execute(async () => 'B')
  const third = b.execute(() => c.opened)
  const fourth = b.execute(() => d.opened)
  assert.equal(b.getStats().inUse, 3)
  a.open()
  await first
  assert.equal(b.getStats().inUse, 2)
  d.open()
  await fourth
  assert.equal(b.getStats().inUse, 1)
  c.open()
  await third
  assert.equal(b.getStats().inUse, 0)
  assert.equal(b.getStats().lostReleases, 0)
  const permits = [b.tryAcquire(), b.tryAcquire(), b.tryAcquire()]
  assert.ok(permits.every((p) => p !== null), 'every permit is free again')
  for (const p of permits) p.release()
})

test('a queued call runs when a permit frees, in arrival of the release', async () => {
  const b = bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeout: 5000 })
  const { open, opened } = gate()
  const first = b.execute(() => opened)
  let ran = false
  const second = b.execute(() => (ran = true))
  await sleep(20)
  assert.equal(ran, false)
  assert.equal(b.getStats().queued, 1)
  // The queue holds one call: a third is refused.
  await assert.rejects(b.execute(() => 3), { code: 'ERR_BULKHEAD_FULL' })
  open()
  await first
  assert.equal(await second, true)
  assert.equal(b.getStats().queued, 0)
})

test('a queued call gives up after queueTimeout', async () => {
  const b = bulkhead({ maxConcurrent: 1, maxQueue: 2, queueTimeout: 50 })
  const { open, opened } = gate()
  const first = b.execute(() => opened)
  const started = performance.now()
  const error = await b.execute(() => 'never').catch((e) => e)
  const waited = performance.now() - started
  assert.ok(isBulkheadFullError(error))
  assert.equal(error.queueTimeout, 50)
  assert.match(error.message, /waited 50 ms/)
  assert.ok(waited >= 45, `waited ${waited} ms`)
  const stats = b.getStats()
  assert.equal(stats.queueTimeouts, 1)
  assert.equal(stats.rejected, 1)
  assert.equal(stats.queued, 0)
  open()
  await first
})

test('a permit released in another worker wakes a call queued here at once', async () => {
  const options = { maxConcurrent: 1, maxQueue: 1, queueTimeout: 10000 }
  const array = Bulkhead.createSharedArray(options)
  const control = new Int32Array(new SharedArrayBuffer(4))
  const worker = startWorker(WORKER, { role: 'release', array, options, control })
  assert.equal(await worker.next(), 'held')
  const b = new Bulkhead(array, options)
  const queued = b.execute(() => performance.now())
  await sleep(50)
  const released = performance.now()
  Atomics.store(control, 0, 1)
  const ranAt = await queued
  // The worker polls its control slot every 2 ms; the wake itself is a notify.
  assert.ok(ranAt - released < 1000, `ran ${ranAt - released} ms after the release`)
  assert.equal(await worker.next(), 'released')
  assert.equal(await worker.exited, 0)
})

test('a permit held by a terminated worker comes back after the lease, once', async () => {
  const options = { maxConcurrent: 1, lease: 100 }
  const array = Bulkhead.createSharedArray(options)
  const worker = startWorker(WORKER, { role: 'hold', array, options })
  assert.equal(await worker.next(), 'held')
  await worker.worker.terminate()
  const b = new Bulkhead(array, options)
  // Full: the first look starts the lease.
  assert.equal(b.tryAcquire(), null)
  await sleep(30)
  assert.equal(b.tryAcquire(), null, 'not before the lease')
  await sleep(120)
  const permit = b.tryAcquire()
  assert.notEqual(permit, null)
  assert.equal(b.getStats().reclaimed, 1)
  assert.equal(b.tryAcquire(), null, 'reclaimed once: the permit is held again')
  permit.release()
  permit.release() // once only
  assert.equal(b.getStats().inUse, 0)
})

test('a holder that outlives its lease frees nothing when it releases', async () => {
  const options = { maxConcurrent: 1, lease: 20 }
  const b = bulkhead(options)
  const slow = b.tryAcquire()
  assert.equal(b.tryAcquire(), null)
  await sleep(40)
  const taker = b.tryAcquire()
  assert.notEqual(taker, null, 'reclaimed after the lease')
  slow.release()
  assert.equal(b.getStats().lostReleases, 1)
  assert.equal(b.getStats().inUse, 1, "the reclaimer's permit is still held")
  taker.release()
  assert.equal(b.getStats().inUse, 0)
})

test('composes with the breaker in both orders', async () => {
  const b = bulkhead({ maxConcurrent: 1 })
  const breaker = new CircuitBreaker(createSharedArray(), { failureThreshold: 1, resetTimeout: 60000 })
  assert.equal(await b.execute(() => breaker.execute(() => 1)), 1)
  assert.equal(await breaker.execute(() => b.execute(() => 2)), 2)
  // A full bulkhead inside the breaker is a failure of the call: it opens.
  const { open, opened } = gate()
  const holding = b.execute(() => opened)
  await assert.rejects(breaker.execute(() => b.execute(() => 3)), { code: 'ERR_BULKHEAD_FULL' })
  assert.equal(breaker.getState(), 'OPEN')
  // The open breaker inside the bulkhead rejects, and the permit comes back.
  open()
  await holding
  const error = await b.execute(() => breaker.execute(() => 4)).catch((e) => e)
  assert.ok(isCircuitOpenError(error))
  assert.equal(b.getStats().inUse, 0)
})

test('tryAcquire hands out a permit to release, or null', () => {
  const b = bulkhead({ maxConcurrent: 1 })
  const permit = b.tryAcquire()
  assert.equal(typeof permit.release, 'function')
  assert.equal(b.tryAcquire(), null)
  if (typeof Symbol.dispose === 'symbol') permit[Symbol.dispose]()
  else permit.release()
  assert.notEqual(b.tryAcquire(), null)
})

test('options are checked, naming the option, its range and what was received', () => {
  const array = Bulkhead.createSharedArray({ maxConcurrent: 2 })
  assert.throws(() => new Bulkhead(array), { name: 'TypeError', message: 'options must be an object, got undefined' })
  assert.throws(() => new Bulkhead(array, { maxConcurrent: '2' }), {
    name: 'TypeError',
    message: 'options.maxConcurrent must be a number, got the string "2"',
  })
  assert.throws(() => new Bulkhead(array, { maxConcurrent: 0 }), {
    name: 'RangeError',
    message: 'maxConcurrent must be an integer from 1 to 65535, got 0',
  })
  assert.throws(() => new Bulkhead(array, { maxConcurrent: 2, maxQueue: 1.5 }), {
    name: 'RangeError',
    message: 'maxQueue must be an integer from 0 to 65535, got 1.5',
  })
  assert.throws(() => new Bulkhead(array, { maxConcurrent: 2, lease: 0 }), {
    name: 'RangeError',
    message: 'options.lease must be a number of milliseconds from 1 to 2147483647, got 0',
  })
  assert.throws(() => new Bulkhead(array, { maxConcurrent: 2, queueTimeout: NaN }), {
    name: 'RangeError',
    message: 'options.queueTimeout must be a number of milliseconds from 1 to 2147483647, got NaN',
  })
  assert.throws(() => new Bulkhead(new Int32Array(64), { maxConcurrent: 1 }), {
    name: 'TypeError',
    message: /array must be an Int32Array over a SharedArrayBuffer .*got an Int32Array over an ArrayBuffer that is not shared/,
  })
  assert.throws(() => new Bulkhead(new Float64Array(new SharedArrayBuffer(64)), { maxConcurrent: 1 }), {
    name: 'TypeError',
    message: /got an instance of Float64Array/,
  })
  assert.throws(() => new Bulkhead(array, { maxConcurrent: 3 }), {
    name: 'RangeError',
    message: /must have at least 96 elements \(Bulkhead.arrayLength\(options\)\), got 80/,
  })
  new Bulkhead(array, { maxConcurrent: 2 })
  const wider = Bulkhead.createSharedArray({ maxConcurrent: 3 })
  new Bulkhead(wider, { maxConcurrent: 3 })
  assert.throws(() => new Bulkhead(wider, { maxConcurrent: 2 }), {
    name: 'RangeError',
    message: /already holds a bulkhead with maxConcurrent 3 and maxQueue 0/,
  })
  // A breaker's array and a bulkhead's refuse each other.
  const breakerArray = createSharedArray()
  new CircuitBreaker(breakerArray, {})
  assert.throws(() => new Bulkhead(breakerArray, { maxConcurrent: 1 }), {
    name: 'RangeError',
    message: /holds data that is not a bulkhead/,
  })
  const bulkheadArray = new Int32Array(new SharedArrayBuffer(createSharedArray().byteLength))
  new Bulkhead(bulkheadArray, { maxConcurrent: 1 })
  assert.throws(() => new CircuitBreaker(bulkheadArray, {}), {
    name: 'RangeError',
    message: /holds data that is not a circuit breaker of this layout/,
  })
})

test('metrics() gives the stats in the Prometheus text format', async () => {
  const b = bulkhead({ maxConcurrent: 1, name: 'db "main"' })
  const permit = b.tryAcquire()
  await b.execute(() => 1).catch(() => {})
  const text = b.metrics()
  assert.match(text, /^# TYPE bulkhead_in_use gauge$/m)
  assert.match(text, /^bulkhead_in_use\{name="db \\"main\\""\} 1$/m)
  assert.match(text, /^bulkhead_rejected_total\{name="db \\"main\\""\} 1$/m)
  permit.release()
})

test('bulkhead files: two bulkheads over one file share the permits; breakers and bulkheads refuse each other', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cbjs-bulkhead-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'bulkhead')
  const options = { maxConcurrent: 1 }
  const a = Bulkhead.fromFile(path, options)
  const b = Bulkhead.fromFile(path, options)
  const permit = a.tryAcquire()
  assert.equal(b.tryAcquire(), null)
  permit.release()
  assert.notEqual(b.tryAcquire(), null)
  assert.throws(() => CircuitBreaker.fromFile(path, {}), /not a circuit breaker of this layout|holds/)
  const breakerPath = join(dir, 'breaker')
  new CircuitBreaker(openBreakerFile(breakerPath, {}), {})
  assert.throws(() => Bulkhead.fromFile(breakerPath, options), { code: 'ERR_CIRCUIT_BREAKER_FILE' })
})

// Another thread (or a buggy process over a file) may write anything into
// the array: it writes `writes` ([slot, value] pairs) there.
async function scribble(array, writes) {
  const worker = startWorker(WORKER, { role: 'scribble', array, writes })
  assert.equal(await worker.next(), 'written')
  assert.equal(await worker.exited, 0)
}

// Runs `body`, then fails if any promise was rejected with nobody to handle it.
async function noUnhandledRejection(body) {
  const unhandled = []
  const record = (reason) => unhandled.push(reason)
  process.on('unhandledRejection', record)
  try {
    await body()
    await sleep(20)
  } finally {
    process.off('unhandledRejection', record)
  }
  assert.deepEqual(unhandled, [])
}

test('an array another thread wrote over: execute rejects, and a task settling afterwards throws nowhere', async () => {
  await noUnhandledRejection(async () => {
    const options = { maxConcurrent: 1 }
    const array = Bulkhead.createSharedArray(options)
    const b = new Bulkhead(array, options)
    const { open, opened } = gate()
    const running = b.execute(() => opened)
    // Junk over CONFIG (slots 4, 5) and over the held permit's HOLDER word.
    await scribble(array, [[4, 0x1234], [5, 0x5678], [native.bulkheadLayout().permitBase, 7]])
    let refused
    assert.doesNotThrow(() => (refused = b.execute(() => 'never')))
    await assert.rejects(refused, { name: 'RangeError', message: /holds no bulkhead/ })
    // Its release finds the permit taken from it, and no bulkhead to count that in.
    open()
    assert.equal(await running, undefined)
  })
})

test('a queued call whose array is written over as it gives up rejects with why', async () => {
  // The array is written over between the waiter's last retry and its
  // leaving the queue: a race with another thread that no test can time,
  // so leaving the queue is made to fail as it then does.
  const b = bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeout: 20 })
  const { open, opened } = gate()
  const first = b.execute(() => opened)
  const leave = native.bulkheadLeave
  const junk = new RangeError('array holds no bulkhead')
  native.bulkheadLeave = () => {
    throw junk
  }
  try {
    await noUnhandledRejection(async () => {
      assert.equal(await b.execute(() => 'never').catch((error) => error), junk)
    })
  } finally {
    native.bulkheadLeave = leave
  }
  open()
  await first
})

test('any options and arrays: a Bulkhead or RateLimiter is built, or a TypeError or RangeError is thrown', async () => {
  const value = fc.oneof(
    fc.integer({ min: -3, max: 70000 }),
    fc.double(),
    fc.constantFrom(undefined, null, NaN, Infinity, -0, '1', true, {}, [], () => 1, 2 ** 31, 2 ** 32),
  )
  const array = fc.oneof(
    fc.integer({ min: 0, max: 400 }).map((n) => new Int32Array(new SharedArrayBuffer(n * 4))),
    fc.constantFrom(new Int32Array(8), new Uint8Array(new SharedArrayBuffer(64)), null, 'x'),
    fc.integer({ min: 1, max: 63 }).map((n) => new Int32Array(new SharedArrayBuffer(512), n * 4)),
  )
  const options = fc.record(
    { maxConcurrent: value, maxQueue: value, queueTimeout: value, lease: value, limit: value, interval: value, burst: value, maxWait: value },
    { requiredKeys: [] },
  )
  fc.assert(
    fc.property(array, options, fc.boolean(), (memory, opts, which) => {
      try {
        const made = which ? new Bulkhead(memory, opts) : new RateLimiter(memory, opts)
        made.getStats()
      } catch (error) {
        assert.ok(error instanceof TypeError || error instanceof RangeError, String(error))
        assert.ok(error.message.length > 0)
      }
    }),
    { numRuns: 2000 },
  )
})

