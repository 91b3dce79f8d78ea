// `maxConcurrent` on the breaker itself: its bulkhead lives in the breaker's
// memory, after its slots; the breaker admits a call first, then the call
// takes a permit, held until its task settles. Real workers and processes
// for the limits; events, stats and metrics; the options' errors.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import CircuitBreaker, {
  arrayLength,
  Bulkhead,
  BulkheadFullError,
  createSharedArray,
  isCircuitOpenError,
  isCircuitTimeoutError,
  openBreakerFile,
} from 'shared-circuit-breaker'
import { startWorker } from './support/messages.mjs'
import { LIMITS_WORKER as WORKER, countingServer, gate, startProcess, tempDir } from './support/limits.mjs'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function guarded(options) {
  return new CircuitBreaker(createSharedArray(options), options)
}

test('four workers on one breaker with maxConcurrent 2: never more than 2 tasks at once', async () => {
  const options = { failureThreshold: 5, maxConcurrent: 2, maxQueue: 8, queueTimeout: 20000 }
  const array = createSharedArray(options)
  const inFlight = new Int32Array(new SharedArrayBuffer(8))
  const workers = Array.from({ length: 4 }, () =>
    startWorker(WORKER, { role: 'calls', breaker: true, array, options, inFlight, calls: 39, lanes: 3, taskMs: 2 }),
  )
  const results = await Promise.all(workers.map((w) => w.next()))
  const ran = results.reduce((sum, r) => sum + r.ran, 0)
  const full = results.reduce((sum, r) => sum + r.full, 0)
  assert.equal(ran + full, 4 * 39)
  assert.ok(ran > 0)
  assert.ok(Atomics.load(inFlight, 1) <= 2, `${Atomics.load(inFlight, 1)} tasks in flight at once`)
  assert.equal(Atomics.load(inFlight, 1), 2, 'the bulkhead was full at times')
  const stats = new CircuitBreaker(array, options).getStats()
  assert.equal(stats.bulkhead.inUse, 0)
  assert.equal(stats.bulkhead.queued, 0)
  assert.equal(stats.bulkhead.rejected, full)
  assert.equal(stats.successes, ran)
  assert.equal(stats.state, 'CLOSED')
})

test('two processes over one breaker file with maxConcurrent 2: the dependency never sees more than 2 requests', async (t) => {
  const { url, counts } = await countingServer(t)
  const path = join(tempDir(t), 'breaker')
  const options = { maxConcurrent: 2, maxQueue: 8, queueTimeout: 30000 }
  const children = Array.from({ length: 2 }, () =>
    startProcess({ role: 'http', breaker: true, path, options, url, calls: 30, lanes: 3 }),
  )
  const results = await Promise.all(children.map((c) => c.next()))
  for (const c of children) assert.equal(await c.exited, 0)
  const ran = results.reduce((sum, r) => sum + r.ran, 0)
  assert.equal(ran + results.reduce((sum, r) => sum + r.full, 0), 60)
  assert.equal(counts.served, ran)
  assert.ok(counts.most <= 2, `${counts.most} requests in flight at once`)
  assert.equal(counts.most, 2, 'the bulkhead was full at times')
  const breaker = CircuitBreaker.fromFile(path, options)
  assert.equal(breaker.getStats().bulkhead.inUse, 0)
  assert.equal(breaker.getStats().successes, ran)
  breaker.dispose()
})

test('a full bulkhead rejects with its own error: not a failure, no fallback, the breaker stays closed', async () => {
  let fallbacks = 0
  const breaker = guarded({ failureThreshold: 1, maxConcurrent: 1, failureFallback: () => fallbacks++ })
  const { open, opened } = gate()
  const running = breaker.execute(() => opened.then(() => 'first'))
  let called = false
  const refused = await breaker.execute(() => (called = true)).catch((error) => error)
  assert.ok(refused instanceof BulkheadFullError, `got ${refused}`)
  assert.equal(refused.code, 'ERR_BULKHEAD_FULL')
  assert.equal(called, false)
  assert.equal(fallbacks, 0)
  assert.equal(breaker.getState(), 'CLOSED')
  const stats = breaker.getStats()
  assert.equal(stats.failures, 0)
  assert.equal(stats.rejections, 0)
  assert.equal(stats.bulkhead.rejected, 1)
  assert.equal(stats.bulkhead.inUse, 1)
  open()
  assert.equal(await running, 'first')
  assert.equal(breaker.getStats().bulkhead.inUse, 0)
  assert.equal(await breaker.execute(() => 'again'), 'again')
})

test('an open breaker rejects without taking a permit, even with the bulkhead full', async () => {
  const breaker = guarded({ failureThreshold: 1, resetTimeout: 60000, maxConcurrent: 2 })
  const { open, opened } = gate()
  const slow = breaker.execute(() => opened)
  await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})
  assert.equal(breaker.getState(), 'OPEN')
  // One permit is held (the slow call), one is free: the open breaker takes neither.
  const refused = await breaker.execute(() => 'never').catch((error) => error)
  assert.ok(isCircuitOpenError(refused))
  assert.deepEqual([breaker.getStats().bulkhead.inUse, breaker.getStats().bulkhead.rejected], [1, 0])
  const other = guarded({ failureThreshold: 1, maxConcurrent: 1 })
  const { open: openOther, opened: otherOpened } = gate()
  const holding = other.execute(() => otherOpened)
  other.isolate()
  // Full and open: the breaker's refusal, not the bulkhead's.
  assert.ok(isCircuitOpenError(await other.execute(() => 'never').catch((error) => error)))
  assert.equal(other.getStats().bulkhead.rejected, 0)
  open()
  openOther()
  await Promise.all([slow, holding])
})

test('a probe the bulkhead refuses gives its half-open place back: the next call probes at once', async () => {
  const breaker = guarded({ failureThreshold: 1, resetTimeout: 60000, maxConcurrent: 1 })
  const { open, opened } = gate()
  const holding = breaker.execute(() => opened)
  breaker.transitionToHalfOpen()
  const refused = await breaker.execute(() => 'probe').catch((error) => error)
  assert.ok(refused instanceof BulkheadFullError, `got ${refused}`)
  assert.equal(breaker.getStats().failures, 0, 'the refused probe is not a failure')
  assert.equal(breaker.getState(), 'HALF_OPEN')
  open()
  await holding
  // Within the probe lease (resetTimeout, a minute): only a probe place
  // given back lets this call probe.
  assert.equal(await breaker.execute(() => 'probe'), 'probe')
  assert.equal(breaker.getState(), 'CLOSED')
})

test('permits come back when the task rejects or throws, and when a timed-out task ends', async () => {
  const breaker = guarded({ failureThreshold: 100, maxConcurrent: 1, timeout: 20 })
  await breaker.execute(() => Promise.reject(new Error('no'))).catch(() => {})
  assert.equal(breaker.getStats().bulkhead.inUse, 0)
  await breaker
    .execute(() => {
      throw new Error('sync')
    })
    .catch(() => {})
  assert.equal(breaker.getStats().bulkhead.inUse, 0)
  // The deadline's timer does not keep the process alive: this does.
  const alive = setInterval(() => {}, 1000)
  const { open, opened } = gate()
  let ended = false
  const late = opened.then(() => (ended = true))
  const timedOut = await breaker.execute(() => late).catch((error) => error)
  assert.ok(isCircuitTimeoutError(timedOut))
  // The task still runs: it keeps its permit until it ends.
  assert.equal(ended, false)
  assert.equal(breaker.getStats().bulkhead.inUse, 1)
  assert.ok((await breaker.execute(() => 'x').catch((error) => error)) instanceof BulkheadFullError)
  open()
  await late
  await sleep(0)
  assert.equal(breaker.getStats().bulkhead.inUse, 0)
  assert.equal(await breaker.execute((signal) => (signal instanceof AbortSignal ? 'signal' : 'none')), 'signal')
  assert.equal(await breaker.execute(() => 'y'), 'y')
  clearInterval(alive)
})

test('calls overlapping in one thread each release their own permit', async () => {
  const breaker = guarded({ maxConcurrent: 3 })
  const [a, c, d] = [gate(), gate(), gate()]
  // A takes this thread's permit on the fast path; B finds it held and
  // takes another; B ends first, so C takes B's permit on the fast path
  // while A still holds the first.
  const first = breaker.execute(() => a.opened)
  await breaker.execute(async () => 'B')
  const third = breaker.execute(() => c.opened)
  const fourth = breaker.execute(() => d.opened)
  const inUse = () => breaker.getStats().bulkhead.inUse
  assert.equal(inUse(), 3)
  a.open()
  await first
  assert.equal(inUse(), 2)
  d.open()
  await fourth
  assert.equal(inUse(), 1)
  c.open()
  await third
  assert.equal(inUse(), 0)
  assert.equal(breaker.getStats().bulkhead.lostReleases, 0)
  assert.deepEqual(await Promise.all([1, 2, 3].map((n) => breaker.execute(() => n))), [1, 2, 3])
})

test('a queued call runs when a permit frees; after queueTimeout it is refused', async () => {
  const breaker = guarded({ maxConcurrent: 1, maxQueue: 1, queueTimeout: 50 })
  const timeouts = []
  breaker.on('bulkheadRejected', (error) => timeouts.push(error.queueTimeout))
  const { open, opened } = gate()
  const first = breaker.execute(() => opened.then(() => 1))
  const queued = breaker.execute(() => 2)
  assert.equal(breaker.getStats().bulkhead.queued, 1)
  const full = await breaker.execute(() => 3).catch((error) => error)
  assert.ok(full instanceof BulkheadFullError)
  open()
  assert.deepEqual(await Promise.all([first, queued]), [1, 2])
  const { open: release, opened: held } = gate()
  const holder = breaker.execute(() => held)
  const waited = await breaker.execute(() => 4).catch((error) => error)
  assert.ok(waited instanceof BulkheadFullError)
  assert.equal(waited.queueTimeout, 50)
  assert.deepEqual(timeouts, [undefined, 50])
  const stats = breaker.getStats().bulkhead
  assert.deepEqual([stats.rejected, stats.queueTimeouts, stats.queued], [2, 1, 0])
  release()
  await holder
})

test('events: bulkheadRejected on the breaker, rejected on a Bulkhead; nothing made when nobody listens', async () => {
  const breaker = guarded({ maxConcurrent: 1, name: 'api' })
  const seen = []
  const listener = (error) => seen.push(error)
  breaker.on('bulkheadRejected', listener)
  const { open, opened } = gate()
  const running = breaker.execute(() => opened)
  const refused = await breaker.execute(() => 'x').catch((error) => error)
  assert.deepEqual(seen, [refused])
  breaker.off('bulkheadRejected', listener)
  await breaker.execute(() => 'x').catch(() => {})
  assert.equal(seen.length, 1)
  open()
  await running

  const options = { maxConcurrent: 1, maxQueue: 1, queueTimeout: 20 }
  const bulkhead = new Bulkhead(Bulkhead.createSharedArray(options), options)
  const rejected = []
  bulkhead.on('rejected', (error) => rejected.push(error))
  const { open: release, opened: held } = gate()
  const holder = bulkhead.execute(() => held)
  const [waited, full] = await Promise.all([
    bulkhead.execute(() => 'x').catch((error) => error),
    bulkhead.execute(() => 'x').catch((error) => error),
  ])
  assert.deepEqual(rejected, [full, waited])
  assert.equal(waited.queueTimeout, 20)
  assert.equal(full.queueTimeout, undefined)
  release()
  await holder
})

test('getStats().bulkhead and metrics() with the bulkhead_* families; null and absent without maxConcurrent', async () => {
  const breaker = guarded({ maxConcurrent: 3, maxQueue: 2, name: 'api' })
  const { open, opened } = gate()
  const running = breaker.execute(() => opened)
  assert.deepEqual(breaker.getStats().bulkhead, {
    maxConcurrent: 3,
    maxQueue: 2,
    inUse: 1,
    queued: 0,
    rejected: 0,
    queueTimeouts: 0,
    reclaimed: 0,
    lostReleases: 0,
  })
  const text = breaker.metrics()
  assert.match(text, /^# TYPE bulkhead_in_use gauge$/m)
  assert.match(text, /^bulkhead_in_use\{name="api"\} 1$/m)
  assert.match(text, /^bulkhead_max_concurrent\{name="api"\} 3$/m)
  assert.match(text, /^bulkhead_rejected_total\{name="api"\} 0$/m)
  assert.match(text, /^circuit_breaker_requests_total\{name="api"\} 0$/m)
  open()
  await running
  const plain = new CircuitBreaker(createSharedArray(), { name: 'plain' })
  assert.equal(plain.getStats().bulkhead, null)
  assert.doesNotMatch(plain.metrics(), /bulkhead/)
})

test('arrayLength counts the bulkhead after the breaker\'s regions; a short array names the length needed', () => {
  const options = { maxConcurrent: 4, maxQueue: 2 }
  const plain = arrayLength()
  const length = arrayLength(options)
  assert.equal(length, plain + Bulkhead.arrayLength(options))
  assert.equal(createSharedArray(options).length, length)
  assert.equal(CircuitBreaker.arrayLength(options), length)
  const windowed = { ...options, failureRateThreshold: 50, histogram: true }
  assert.ok(arrayLength(windowed) >= arrayLength({ failureRateThreshold: 50, histogram: true }) + Bulkhead.arrayLength(options))
  assert.equal(guarded(windowed).getStats().bulkhead.maxConcurrent, 4)
  assert.throws(() => new CircuitBreaker(createSharedArray(), options), {
    name: 'RangeError',
    message: `sharedArray must have at least ${length} elements for these options (CircuitBreaker.arrayLength(options)), got ${plain}`,
  })
})

test('bad options name the option, its range and what was received', () => {
  const cases = [
    [{ maxConcurrent: 0 }, RangeError, 'maxConcurrent must be an integer from 1 to 65535, got 0'],
    [{ maxConcurrent: 1.5 }, RangeError, 'maxConcurrent must be an integer from 1 to 65535, got 1.5'],
    [{ maxConcurrent: 70000 }, RangeError, 'maxConcurrent must be an integer from 1 to 65535, got 70000'],
    [{ maxConcurrent: '2' }, TypeError, 'maxConcurrent must be a number, got the string "2"'],
    [{ maxConcurrent: 2, maxQueue: -1 }, RangeError, 'maxQueue must be an integer from 0 to 65535, got -1'],
    [{ maxConcurrent: 2, queueTimeout: 0 }, RangeError, 'queueTimeout must be a number of milliseconds from 1 to 2147483647, got 0'],
    [{ maxConcurrent: 2, lease: 'long' }, TypeError, 'lease must be a number, got the string "long"'],
  ]
  for (const [options, type, message] of cases) {
    assert.throws(() => arrayLength(options), { name: type.name, message }, JSON.stringify(options))
    assert.throws(() => new CircuitBreaker(createSharedArray(), options), { name: type.name, message }, JSON.stringify(options))
  }
})

test('every breaker over one memory must agree on maxConcurrent and maxQueue, and on having a bulkhead', () => {
  const options = { maxConcurrent: 2, maxQueue: 1 }
  const array = createSharedArray({ maxConcurrent: 3, maxQueue: 1 })
  new CircuitBreaker(array, { maxConcurrent: 3, maxQueue: 1 })
  assert.throws(() => new CircuitBreaker(array, { maxConcurrent: 2, maxQueue: 1 }), {
    name: 'RangeError',
    message: /already holds a bulkhead with maxConcurrent 3 and maxQueue 1/,
  })
  assert.throws(() => new CircuitBreaker(array, {}), {
    name: 'RangeError',
    message: /a bulkhead \(maxConcurrent\); these options ask for .* no bulkhead/,
  })
  const plain = createSharedArray(options)
  new CircuitBreaker(plain, {})
  assert.throws(() => new CircuitBreaker(plain, options), { name: 'RangeError', message: /no bulkhead .* ask for .* a bulkhead/ })
  // A Bulkhead's array is not a breaker's.
  assert.throws(() => new CircuitBreaker(Bulkhead.createSharedArray(options), options), RangeError)
})

test('breaker files: made long enough; a plain breaker file and a bulkhead file are refused clearly', (t) => {
  const dir = tempDir(t)
  const options = { maxConcurrent: 2 }
  const path = join(dir, 'guarded')
  const a = CircuitBreaker.fromFile(path, options)
  const b = CircuitBreaker.fromFile(path, options)
  const { open, opened } = gate()
  const running = [a.execute(() => opened), b.execute(() => opened)]
  assert.equal(a.getStats().bulkhead.inUse, 2)
  assert.equal(openBreakerFile(path).length, arrayLength(options))
  assert.throws(() => CircuitBreaker.fromFile(path, {}), { name: 'RangeError', message: /no bulkhead/ })
  const plainPath = join(dir, 'plain')
  CircuitBreaker.fromFile(plainPath, {}).dispose()
  assert.throws(() => CircuitBreaker.fromFile(plainPath, options), {
    name: 'RangeError',
    message: new RegExp(`at least ${arrayLength(options)} elements`),
  })
  const bulkheadPath = join(dir, 'bulkhead')
  Bulkhead.fromFile(bulkheadPath, options)
  assert.throws(() => CircuitBreaker.fromFile(bulkheadPath, options), RangeError)
  assert.throws(() => Bulkhead.fromFile(path, options), { code: 'ERR_CIRCUIT_BREAKER_FILE' })
  open()
  return Promise.all(running).then(() => {
    assert.equal(a.getStats().bulkhead.inUse, 0)
    a.dispose()
    b.dispose()
  })
})

test('a task that is no function, or a revoked proxy, rejects (never a synchronous throw) and gives its permit back', async () => {
  // Found by the fuzz: the permit's wrapper read `task.length` outside any try.
  const breaker = guarded({ failureThreshold: 100, maxConcurrent: 1 })
  const { proxy, revoke } = Proxy.revocable(() => 1, {})
  revoke()
  for (const task of [proxy, null, undefined, 42]) {
    let promise
    assert.doesNotThrow(() => {
      promise = breaker.execute(task)
    })
    await assert.rejects(promise, TypeError)
    assert.equal(breaker.getStats().bulkhead.inUse, 0)
  }
  assert.equal(await breaker.execute(() => 'ok'), 'ok')
})
