// The options past the seed, in one thread (workers: policies-workers.test.mjs).
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import parse from 'parse-prometheus-text-format'
import CircuitBreaker, {
  CircuitBreakerKeys,
  CircuitTimeoutError,
  arrayLength,
  createSharedArray,
  isCircuitOpenError,
  isCircuitTimeoutError,
} from 'shared-circuit-breaker'

const SLOTS = Object.keys(CircuitBreakerKeys).length
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
// A task like a request: pending (its timer keeps the process alive, as a
// socket would) until its signal aborts it.
const never = (signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, 10000, 'too late')
    signal?.addEventListener('abort', () => {
      clearTimeout(timer)
      reject(signal.reason)
    })
  })
const fail = () => Promise.reject(new Error('down'))
const ok = () => Promise.resolve('ok')
const make = (options) => new CircuitBreaker(createSharedArray(options), options)
// Lets this thread's held-back successes reach the shared counters.
const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('timeout', () => {
  test('a call still pending after the timeout rejects with a CircuitTimeoutError and counts as a failure', async () => {
    const breaker = make({ timeout: 20, failureThreshold: 2 })
    let signal
    const started = performance.now()
    const error = await breaker.execute((s) => ((signal = s), never(s))).catch((e) => e)
    assert.ok(performance.now() - started >= 19)
    assert.ok(error instanceof CircuitTimeoutError)
    assert.equal(error.code, 'ERR_CIRCUIT_TIMEOUT')
    assert.ok(isCircuitTimeoutError(error))
    assert.equal(error.timeout, 20)
    assert.equal(signal.aborted, true, 'the task was told')
    assert.equal(signal.reason, error)
    const stats = breaker.getStats()
    assert.equal(stats.failures, 1)
    assert.equal(stats.timeouts, 1)
    assert.equal(stats.consecutiveFailures, 1)
    await breaker.execute(never).catch(() => {})
    assert.equal(breaker.getState(), 'OPEN', 'two timeouts in a row reach the threshold')
  })

  test('a task that settles after its timeout changes nothing', async () => {
    const breaker = make({ timeout: 10 })
    let resolveLate
    const late = new Promise((resolve) => (resolveLate = resolve))
    const keepAlive = setTimeout(() => {}, 1000)
    await assert.rejects(breaker.execute(() => late), { code: 'ERR_CIRCUIT_TIMEOUT' })
    clearTimeout(keepAlive)
    resolveLate('too late')
    await tick()
    const stats = breaker.getStats()
    assert.deepEqual([stats.requests, stats.successes, stats.failures], [1, 0, 1])
  })

  test('a call that settles in time is not touched', async () => {
    const breaker = make({ timeout: 1000 })
    assert.equal(await breaker.execute(async (signal) => (signal.aborted ? 'aborted' : 'ok')), 'ok')
  })

  test('with a failureFallback a timed out call resolves with its result', async () => {
    const breaker = make({ timeout: 10, failureFallback: (e) => `fallback for ${e.code}` })
    assert.equal(await breaker.execute(never), 'fallback for ERR_CIRCUIT_TIMEOUT')
    const stats = breaker.getStats()
    assert.deepEqual([stats.timeouts, stats.fallbacks], [1, 1])
  })

  test('many pending calls share one timer, not one each', async () => {
    const breaker = make({ timeout: 30, failureThreshold: 10000 })
    const realSetTimeout = globalThis.setTimeout
    let timers = 0
    globalThis.setTimeout = (...args) => {
      timers++
      return realSetTimeout(...args)
    }
    const keepAlive = realSetTimeout(() => {}, 1000)
    let calls
    try {
      calls = Array.from({ length: 1000 }, () => breaker.execute(() => new Promise(() => {})).catch((e) => e.code))
    } finally {
      globalThis.setTimeout = realSetTimeout
    }
    assert.ok(timers <= 1, `${timers} timers for 1000 calls`)
    const codes = await Promise.all(calls)
    clearTimeout(keepAlive)
    assert.ok(codes.every((code) => code === 'ERR_CIRCUIT_TIMEOUT'))
  })

  test('a pending timed call does not keep the process alive', () => {
    const entry = fileURLToPath(new URL('../index.js', import.meta.url))
    const script = `
      const { CircuitBreaker, createSharedArray } = require(${JSON.stringify(entry)})
      const breaker = new CircuitBreaker(createSharedArray(), { timeout: 60000 })
      breaker.execute(() => new Promise(() => {}))
    `
    const started = Date.now()
    const child = spawnSync(process.execPath, ['-e', script], { timeout: 30000 })
    assert.equal(child.status, 0, String(child.stderr))
    assert.ok(Date.now() - started < 30000)
  })
})

describe('errorFilter', () => {
  test('an error the filter accepts reaches the caller but is not counted as a failure', async () => {
    let fellBack = 0
    const breaker = make({
      failureThreshold: 1,
      errorFilter: (error) => error.status === 404,
      failureFallback: () => fellBack++,
    })
    const notFound = Object.assign(new Error('not found'), { status: 404 })
    const error = await breaker.execute(() => Promise.reject(notFound)).catch((e) => e)
    assert.equal(error, notFound)
    assert.equal(fellBack, 0, 'no fallback for an accepted error')
    assert.equal(breaker.getState(), 'CLOSED')
    const stats = breaker.getStats()
    assert.deepEqual([stats.successes, stats.filtered, stats.failures], [1, 1, 0])
    await breaker.execute(fail)
    assert.equal(breaker.getState(), 'OPEN', 'other errors still count')
    assert.equal(fellBack, 1)
  })

  test('a half-open probe whose error the filter accepts closes the breaker', async () => {
    const breaker = make({ failureThreshold: 1, resetTimeout: 10, errorFilter: (e) => e.message === 'ignored' })
    await breaker.execute(fail).catch(() => {})
    await sleep(15)
    await assert.rejects(breaker.execute(() => Promise.reject(new Error('ignored'))), /ignored/)
    assert.equal(breaker.getState(), 'CLOSED')
  })

  test('a filter that throws fails the call with its error, counted as a failure', async () => {
    const breaker = make({
      failureThreshold: 1,
      errorFilter: () => {
        throw new RangeError('filter broke')
      },
    })
    await assert.rejects(breaker.execute(fail), /filter broke/)
    assert.equal(breaker.getState(), 'OPEN')
  })
})

describe('failure rate', () => {
  test('opens when the failure percentage of the last N calls reaches the threshold', async () => {
    const options = { failureRateThreshold: 50, minimumCalls: 10, windowSize: 20 }
    const breaker = make(options)
    for (let i = 0; i < 6; i++) await breaker.execute(ok)
    for (let i = 0; i < 5; i++) await breaker.execute(fail).catch(() => {})
    assert.equal(breaker.getState(), 'CLOSED', '5 of 11 is under 50%')
    await breaker.execute(fail).catch(() => {})
    assert.equal(breaker.getState(), 'OPEN', '6 of 12')
    assert.deepEqual(breaker.getStats().window, { calls: 12, failures: 6, failureRate: 50 })
  })

  test('under the minimum number of calls even all failures do not open', async () => {
    const breaker = make({ failureRateThreshold: 50, minimumCalls: 10 })
    for (let i = 0; i < 9; i++) await breaker.execute(fail).catch(() => {})
    assert.equal(breaker.getState(), 'CLOSED')
  })

  test('a time window forgets calls older than its span', async () => {
    const breaker = make({ failureRateThreshold: 50, minimumCalls: 4, windowType: 'time', windowSize: 100, windowBuckets: 4 })
    for (let i = 0; i < 3; i++) await breaker.execute(fail).catch(() => {})
    await sleep(150)
    assert.equal(breaker.getStats().window.calls, 0)
    await breaker.execute(fail).catch(() => {})
    assert.equal(breaker.getState(), 'CLOSED', 'the old failures no longer count toward the minimum')
  })

  test('slow calls count as bad for the rate but still succeed', async () => {
    const breaker = make({ failureRateThreshold: 50, minimumCalls: 2, slowCallDuration: 10 })
    assert.equal(await breaker.execute(ok), 'ok')
    assert.equal(await breaker.execute(() => sleep(25).then(() => 'slow')), 'slow')
    assert.equal(breaker.getState(), 'OPEN')
    assert.equal(breaker.getStats().slowCalls, 1)
  })

  test('a call that times out after slowCallDuration is counted in slowCalls, like one that fails late', async () => {
    const breaker = make({ slowCallDuration: 20, timeout: 80, failureThreshold: 10 })
    await breaker.execute(() => sleep(50).then(fail)).catch(() => {})
    assert.equal(breaker.getStats().slowCalls, 1, 'a failure after 50 ms')
    const error = await breaker.execute(never).catch((e) => e)
    assert.ok(isCircuitTimeoutError(error), `${error}`)
    const stats = breaker.getStats()
    assert.equal(stats.timeouts, 1)
    assert.equal(stats.slowCalls, 2, 'a timeout at 80 ms')
  })

  test('a call that times out before slowCallDuration is not slow', async () => {
    const breaker = make({ slowCallDuration: 200, timeout: 20, failureThreshold: 10 })
    await breaker.execute(never).catch(() => {})
    assert.equal(breaker.getStats().timeouts, 1)
    assert.equal(breaker.getStats().slowCalls, 0)
  })

  test('with an explicit failureThreshold too, consecutive failures also open', async () => {
    const breaker = make({ failureThreshold: 2, failureRateThreshold: 100, minimumCalls: 100 })
    await breaker.execute(fail).catch(() => {})
    await breaker.execute(fail).catch(() => {})
    assert.equal(breaker.getState(), 'OPEN')
  })
})

describe('half-open policy and backoff', () => {
  test('halfOpenMaxCalls probes run at once; the others are rejected', async () => {
    const breaker = make({ failureThreshold: 1, resetTimeout: 10, halfOpenMaxCalls: 3 })
    await breaker.execute(fail).catch(() => {})
    await sleep(15)
    let ran = 0
    let release
    const gate = new Promise((resolve) => (release = resolve))
    const calls = Array.from({ length: 5 }, () => breaker.execute(() => (ran++, gate)).catch((e) => e))
    assert.equal(ran, 3)
    release('done')
    const results = await Promise.all(calls)
    assert.equal(results.filter(isCircuitOpenError).length, 2)
    assert.equal(breaker.getStats().probes, 3)
  })

  test('successThreshold probe successes close the breaker; any failure reopens it', async () => {
    const breaker = make({ failureThreshold: 1, resetTimeout: 10, successThreshold: 2 })
    await breaker.execute(fail).catch(() => {})
    await sleep(15)
    await breaker.execute(ok)
    assert.equal(breaker.getState(), 'HALF_OPEN')
    await breaker.execute(fail).catch(() => {})
    assert.equal(breaker.getState(), 'OPEN')
    await sleep(15)
    await breaker.execute(ok)
    await breaker.execute(ok)
    assert.equal(breaker.getState(), 'CLOSED')
  })

  test('each failed probe multiplies the open period, up to maxResetTimeout', async () => {
    const breaker = make({ failureThreshold: 1, resetTimeout: 10, maxResetTimeout: 50, backoffMultiplier: 3 })
    await breaker.execute(fail).catch(() => {})
    const periods = [breaker.getStats().openDuration]
    for (let i = 0; i < 3; i++) {
      await sleep(periods.at(-1) + 5)
      await breaker.execute(fail).catch(() => {}) // the probe fails
      periods.push(breaker.getStats().openDuration)
    }
    assert.deepEqual(periods, [10, 30, 50, 50])
    await sleep(55)
    await breaker.execute(ok)
    assert.equal(breaker.getStats().openDuration, 10, 'closing starts over')
  })
})

describe('manual control', () => {
  test('isolate() holds the breaker open until its handle is released', async () => {
    const breaker = make({ resetTimeout: 0 })
    const first = breaker.isolate()
    const second = breaker.isolate()
    let ran = false
    await assert.rejects(breaker.execute(() => (ran = true)), { code: 'ERR_CIRCUIT_OPEN' })
    assert.equal(ran, false)
    assert.equal(breaker.getStats().isolated, true)
    first.release()
    first.release() // once only
    assert.equal(breaker.getState(), 'OPEN', 'one isolation still held')
    second[Symbol.dispose]?.() ?? second.release()
    assert.equal(breaker.getState(), 'CLOSED')
    assert.equal(await breaker.execute(ok), 'ok')
  })

  test('reset() ends isolations and clears the failure run', async () => {
    const breaker = make({ failureThreshold: 2 })
    breaker.isolate()
    await breaker.execute(fail).catch(() => {}) // rejected: not a failure of the task
    breaker.reset()
    assert.equal(breaker.getState(), 'CLOSED')
    await breaker.execute(fail).catch(() => {})
    assert.equal(breaker.getState(), 'CLOSED', 'one failure after the reset')
    breaker.close()
    assert.equal(breaker.getStats().consecutiveFailures, 0)
  })

  test('disable() lets every call through and counts, enable() restores opening', async () => {
    const breaker = make({ failureThreshold: 1 })
    breaker.disable()
    for (let i = 0; i < 5; i++) await assert.rejects(breaker.execute(fail), /down/)
    assert.equal(breaker.getState(), 'CLOSED')
    assert.equal(breaker.getStats().failures, 5)
    assert.equal(breaker.getStats().disabled, true)
    breaker.enable()
    await breaker.execute(fail).catch(() => {})
    assert.equal(breaker.getState(), 'OPEN')
  })

  test('isolated and disabled at once: isolation wins, every call is refused', async () => {
    for (const disableFirst of [true, false]) {
      const breaker = make({ failureThreshold: 1 })
      let isolation
      if (disableFirst) {
        breaker.disable()
        isolation = breaker.isolate()
      } else {
        isolation = breaker.isolate()
        breaker.disable()
      }
      let ran = 0
      const error = await breaker.execute(() => (ran++, ok())).catch((e) => e)
      assert.ok(isCircuitOpenError(error), `${error}`)
      assert.equal(ran, 0)
      assert.equal(breaker.getState(), 'OPEN')
      isolation.release()
      assert.equal(await breaker.execute(ok), 'ok', 'disabled once the isolation ends')
      assert.equal(breaker.getState(), 'CLOSED')
    }
  })
})

describe('options and array length', () => {
  test('a window or histogram needs a longer array, and the error says how long', () => {
    const options = { failureRateThreshold: 50, windowSize: 100, histogram: true }
    const length = arrayLength(options)
    assert.ok(length > SLOTS)
    assert.equal(CircuitBreaker.arrayLength(options), length)
    assert.equal(arrayLength({}), SLOTS)
    assert.equal(createSharedArray(options).length, length)
    assert.throws(() => new CircuitBreaker(createSharedArray(), options), (error) => {
      assert.ok(error instanceof RangeError)
      assert.match(error.message, new RegExp(`at least ${length} elements`))
      return true
    })
  })

  test('breakers asking for other regions cannot share an array', () => {
    const array = createSharedArray({ failureRateThreshold: 50, histogram: true })
    new CircuitBreaker(array, { failureRateThreshold: 50, histogram: true })
    assert.throws(() => new CircuitBreaker(array, { histogram: true, failureRateThreshold: 50, windowSize: 10 }), {
      name: 'RangeError',
      message: /already used by breakers with a window of the last 100 calls/,
    })
    assert.throws(() => new CircuitBreaker(array, 5, 1000), RangeError)
  })

  const bad = [
    [{ timeout: 0 }, RangeError, /^timeout must be/],
    [{ timeout: 'soon' }, TypeError, /^timeout must be a number/],
    [{ errorFilter: 1 }, TypeError, /^errorFilter must be a function/],
    [{ failureRateThreshold: 101 }, RangeError, /^failureRateThreshold must be/],
    [{ failureRateThreshold: 50, minimumCalls: 0 }, RangeError, /^minimumCalls must be/],
    [{ failureRateThreshold: 50, windowType: 'sliding' }, TypeError, /^windowType must be 'count' or 'time'/],
    [{ failureRateThreshold: 50, windowType: 'time' }, RangeError, /^windowSize must be/],
    [{ windowSize: 0 }, RangeError, /^windowSize must be an integer from 1 to 100000, got 0/],
    [{ minimumCalls: 101 }, RangeError, /^minimumCalls must be an integer from 1 to 100, got 101/],
    [{ failureRateThreshold: 50, windowSize: 20, minimumCalls: 21 }, RangeError, /^minimumCalls must be an integer from 1 to 20/],
    [{ windowType: 'time', windowBuckets: 5 }, RangeError, /^windowSize must be a number of milliseconds for a time window/],
    [{ windowType: 'Count' }, TypeError, /^windowType must be 'count' or 'time', got the string "Count"/],
    [{ backoffMultiplier: 0.5 }, RangeError, /^backoffMultiplier must be a number from 1 to 1000, got 0.5/],
    [{ slowCallDuration: 0 }, RangeError, /^slowCallDuration must be a number of milliseconds above 0 and at most 2147483647, got 0/],
    [{ slowCallDuration: -1 }, RangeError, /^slowCallDuration must be/],
    [{ halfOpenMaxCalls: 0 }, RangeError, /^halfOpenMaxCalls must be an integer from 1 to 65535/],
    [{ successThreshold: 1.5 }, RangeError, /^successThreshold must be/],
    [{ resetTimeout: 100, maxResetTimeout: 50 }, RangeError, /^maxResetTimeout must be/],
    [{ backoffMultiplier: 0.5 }, RangeError, /^backoffMultiplier must be/],
    [{ histogram: 'yes' }, TypeError, /^histogram must be a boolean/],
    [{ name: 7 }, TypeError, /^name must be a string/],
  ]
  // Options that matter only with another change nothing without it, and
  // are accepted (checked as they would be with it).
  const alone = [
    { backoffMultiplier: 2 },
    { backoffMultiplier: 3 },
    { minimumCalls: 10 },
    { windowSize: 100 },
    { windowBuckets: 10 },
    { windowType: 'count' },
    { windowType: 'time' },
    { windowType: 'time', windowSize: 60000, windowBuckets: 6, minimumCalls: 20 },
  ]
  for (const options of alone) {
    test(`accepts ${JSON.stringify(options)} alone, which changes nothing`, async () => {
      assert.equal(arrayLength(options), SLOTS)
      const breaker = new CircuitBreaker(createSharedArray(), { ...options, failureThreshold: 2, resetTimeout: 60000 })
      await breaker.execute(fail).catch(() => {})
      await breaker.execute(fail).catch(() => {})
      assert.equal(breaker.getState(), 'OPEN', 'consecutive failures still open it')
      assert.equal(breaker.getStats().window, null)
    })
  }

  for (const [options, type, message] of bad) {
    test(`refuses ${JSON.stringify(options)} with a ${type.name} naming it`, () => {
      assert.throws(() => new CircuitBreaker(createSharedArray(), options), (error) => {
        assert.ok(error instanceof type, `${error}`)
        assert.match(error.message, message)
        return true
      })
    })
  }
})

describe('events, stats and metrics', () => {
  test('per-call events fire in the calling thread with their details', async () => {
    const breaker = make({ failureThreshold: 2, timeout: 20, openFallback: () => 'open fallback' })
    const seen = []
    for (const event of ['success', 'failure', 'reject', 'timeout', 'fallback']) {
      breaker.on(event, (a, b) => seen.push([event, a instanceof Error ? a.code ?? a.message : a, typeof b]))
    }
    await breaker.execute(ok)
    await breaker.execute(fail).catch(() => {})
    await breaker.execute(never).catch(() => {})
    assert.equal(await breaker.execute(ok), 'open fallback')
    assert.deepEqual(seen, [
      ['success', 'ok', 'number'],
      ['failure', 'down', 'number'],
      ['timeout', 'ERR_CIRCUIT_TIMEOUT', 'number'],
      ['failure', 'ERR_CIRCUIT_TIMEOUT', 'number'],
      ['reject', 'ERR_CIRCUIT_OPEN', 'undefined'],
      ['fallback', 'open fallback', 'object'],
    ])
  })

  test('without per-call listeners the CLOSED path hands back the task\'s own promise', async () => {
    const breaker = make({})
    const own = Promise.resolve(1)
    breaker.on('open', () => {}) // state listeners leave the fast path alone
    assert.equal(breaker.execute(() => own), own)
    const seen = []
    const listener = (value) => seen.push(value)
    breaker.on('success', listener)
    // The general path too: a listener only observes the task's promise, and
    // hears the call before the caller's continuation runs.
    const observed = breaker.execute(() => own)
    assert.equal(observed, own, 'a success listener observes the task\'s own promise')
    assert.equal(await observed, 1)
    assert.deepEqual(seen, [1])
    breaker.off('success', listener)
    assert.equal(breaker.execute(() => own), own)
    await own
  })

  test('only a timeout, a failureFallback or an errorFilter gives the caller a promise other than the task\'s', async () => {
    const own = Promise.resolve(1)
    for (const options of [{ failureRateThreshold: 50 }, { histogram: true }, { slowCallDuration: 1000 }]) {
      const breaker = make(options)
      assert.equal(breaker.execute(() => own), own, JSON.stringify(options))
      await own
    }
    for (const options of [{ timeout: 1000 }, { failureFallback: () => 2 }, { errorFilter: () => false }]) {
      const breaker = make(options)
      const promise = breaker.execute(() => own)
      assert.notEqual(promise, own, Object.keys(options)[0])
      assert.equal(await promise, 1)
    }
  })

  test('state events fire once per transition, after it', async () => {
    const breaker = make({ failureThreshold: 1, resetTimeout: 10 })
    const events = []
    for (const event of ['open', 'halfOpen', 'close']) breaker.on(event, (change) => events.push([event, change.state, change.threadId]))
    await breaker.execute(fail).catch(() => {})
    await sleep(15)
    await breaker.execute(ok)
    const deadline = Date.now() + 2000
    while (events.length < 3 && Date.now() < deadline) await sleep(5)
    await sleep(20)
    assert.deepEqual(events, [
      ['open', 'OPEN', 0],
      ['halfOpen', 'HALF_OPEN', 0],
      ['close', 'CLOSED', 0],
    ])
  })

  // A timed-out call ends the way a settled one does: its latency (the
  // timeout) in the histogram, a failure in the counts, its events.
  test('a call that times out is timed, counted and heard like one that failed', async () => {
    const breaker = make({ timeout: 20, histogram: true, failureThreshold: 5 })
    const seen = []
    for (const event of ['success', 'failure', 'timeout']) breaker.on(event, (error, ms) => seen.push([event, error.code, ms]))
    await assert.rejects(breaker.execute(never), { code: 'ERR_CIRCUIT_TIMEOUT' })
    assert.deepEqual(seen, [['timeout', 'ERR_CIRCUIT_TIMEOUT', 20], ['failure', 'ERR_CIRCUIT_TIMEOUT', 20]])
    const stats = breaker.getStats()
    assert.deepEqual([stats.requests, stats.failures, stats.timeouts, stats.latency.count], [1, 1, 1, 1])
    assert.equal(stats.latency.max, 0.02)
  })

  test('getStats() is a plain object, toJSON() serialises it, metrics() parses as Prometheus text', async () => {
    const breaker = make({ name: 'payments', histogram: true, failureThreshold: 3 })
    await breaker.execute(() => sleep(5).then(() => 'ok'))
    await breaker.execute(fail).catch(() => {})
    const stats = breaker.getStats()
    assert.equal(Object.getPrototypeOf(stats), Object.prototype)
    assert.deepEqual(JSON.parse(JSON.stringify(breaker)), stats)
    assert.equal(stats.name, 'payments')
    assert.deepEqual([stats.requests, stats.successes, stats.failures], [2, 1, 1])
    assert.equal(stats.latency.count, 2)
    assert.ok(stats.latency.max >= 0.004, `max ${stats.latency.max}`)
    const families = Object.fromEntries(parse(breaker.metrics()).map((f) => [f.name, f]))
    assert.equal(families.circuit_breaker_requests_total.type, 'COUNTER')
    assert.deepEqual(families.circuit_breaker_requests_total.metrics, [{ value: '2', labels: { name: 'payments' } }])
    assert.equal(families.circuit_breaker_call_duration_seconds.type, 'HISTOGRAM')
  })
})

test('fallbacks are counted on every path', async () => {
  const breaker = make({ failureThreshold: 2, failureFallback: () => 'f', openFallback: () => 'o' })
  assert.equal(await breaker.execute(fail), 'f')
  assert.equal(await breaker.execute(() => {
    throw new Error('sync')
  }), 'f')
  assert.equal(await breaker.execute(ok), 'o')
  const stats = breaker.getStats()
  assert.deepEqual([stats.failures, stats.rejections, stats.fallbacks], [2, 1, 3])
})

test('an isolation handle from before reset() releases nothing', () => {
  const breaker = make({})
  const stale = breaker.isolate()
  breaker.reset()
  const current = breaker.isolate()
  stale.release()
  assert.equal(breaker.getState(), 'OPEN', 'the new isolation still holds')
  current.release()
  assert.equal(breaker.getState(), 'CLOSED')
})

test('an isolation handle from 32768 or 65536 resets before releases nothing', () => {
  const breaker = make({})
  const stale = breaker.isolate()
  for (let resets = 1; resets <= 65536; resets++) {
    breaker.reset()
    if (resets === 32768 || resets === 65536) {
      const current = breaker.isolate()
      stale.release()
      assert.equal(breaker.getState(), 'OPEN', `the live isolation still holds after ${resets} resets`)
      assert.equal(breaker.getStats().isolated, true)
      current.release()
      assert.equal(breaker.getState(), 'CLOSED')
    }
  }
})

test('65535 isolations may be held at once; one more is a RangeError, and none is lost', () => {
  const breaker = make({})
  const handles = Array.from({ length: 65535 }, () => breaker.isolate())
  assert.throws(() => breaker.isolate(), (error) => {
    assert.ok(error instanceof RangeError, `${error}`)
    assert.match(error.message, /^isolations held at once must be at most 65535, and 65535 are held/)
    return true
  })
  const last = handles.pop()
  for (const handle of handles) handle.release()
  assert.equal(breaker.getState(), 'OPEN', 'one isolation still held')
  last.release()
  assert.equal(breaker.getState(), 'CLOSED')
  const again = breaker.isolate()
  assert.equal(breaker.getState(), 'OPEN')
  again.release()
  assert.equal(breaker.getState(), 'CLOSED')
})

test('releasing an isolation through a disposed breaker throws instead of holding it forever', () => {
  const array = createSharedArray()
  const a = new CircuitBreaker(array, {})
  const b = new CircuitBreaker(array, {})
  const handle = a.isolate()
  a.dispose()
  assert.throws(() => handle.release(), TypeError)
  assert.equal(b.getState(), 'OPEN')
  b.reset()
  assert.equal(b.getState(), 'CLOSED')
})

test('a timed task gets its own signal only if it declares a parameter', async () => {
  const breaker = make({ timeout: 1000 })
  assert.equal(await breaker.execute((...args) => args.length), 0, 'rest parameters declare none')
  const signals = await Promise.all([breaker.execute(async (signal) => signal), breaker.execute(async (signal) => signal)])
  assert.ok(signals[0] instanceof AbortSignal)
  assert.notEqual(signals[0], signals[1], 'one signal per call')
  assert.equal(signals[0].aborted, false, 'a call that settled in time is never aborted')
})

test('two breakers at different offsets of one buffer each hear only their own transitions', async () => {
  const length = CircuitBreaker.arrayLength({})
  const buffer = new SharedArrayBuffer(length * 2 * 4)
  const a = new CircuitBreaker(new Int32Array(buffer, 0, length), { failureThreshold: 1 })
  const c = new CircuitBreaker(new Int32Array(buffer, length * 4, length), { failureThreshold: 1 })
  const heard = []
  a.on('open', () => heard.push('a'))
  c.on('open', () => heard.push('c'))
  await c.execute(fail).catch(() => {})
  await sleep(50)
  assert.deepEqual(heard, ['c'])
  await a.execute(fail).catch(() => {})
  await sleep(50)
  assert.deepEqual(heard, ['c', 'a'])
})

test('a listener added by a once listener hears the transition right after', async () => {
  const breaker = make({ failureThreshold: 1, resetTimeout: 0 })
  const heard = []
  breaker.once('open', () => breaker.once('halfOpen', () => heard.push('halfOpen')))
  await breaker.execute(fail).catch(() => {})
  await breaker.execute(ok) // half-open, probe, close: all in one batch
  await sleep(50)
  assert.deepEqual(heard, ['halfOpen'])
})

describe('the general path pays only for what its features need', () => {
  test('a count window sees one thread\'s calls in order: a failure publishes the successes held back first', async () => {
    // F S S F: the last 3 are S S F (33%), which does not open it; were the
    // two successes (held back until the end of the tick) to reach the
    // window after the second failure, it would hold F F (100%) and open.
    const options = { failureRateThreshold: 60, windowSize: 3, minimumCalls: 2 }
    const breaker = make(options)
    await breaker.execute(fail).catch(() => {})
    await breaker.execute(ok)
    await breaker.execute(ok)
    await breaker.execute(fail).catch(() => {})
    assert.equal(breaker.getState(), 'CLOSED')
    assert.deepEqual(breaker.getStats().window, { calls: 3, failures: 1, failureRate: 100 / 3 })
  })

  test('every call\'s latency, staged in the thread, is in the thread\'s own next read (past a batch, failures too)', async () => {
    const breaker = make({ histogram: true, failureThreshold: 1e9 })
    for (let i = 0; i < 300; i++) {
      await breaker.execute(i % 3 === 0 ? fail : ok).catch(() => {})
      if (i === 10 || i === 299) {
        const stats = breaker.getStats()
        assert.equal(stats.latency.count, i + 1, `after ${i + 1} calls`)
        assert.equal(stats.requests, i + 1)
      }
    }
    assert.equal(breaker.getStats().failures, 100)
  })

  test('a plain success makes no native call: its count and latency reach the core with the batch', async () => {
    const native = createRequire(import.meta.url)('../lib/native.js')
    const breaker = make({ histogram: true })
    breaker.on('success', () => {})
    const counted = { latencies: 0, success: 0, latency: 0, markedSuccess: 0 }
    const originals = {}
    for (const name of Object.keys(counted)) {
      originals[name] = native[name]
      native[name] = (...args) => {
        counted[name]++
        return originals[name](...args)
      }
    }
    try {
      // Awaiting settled promises does not end the tick: the batch waits.
      for (let i = 0; i < 100; i++) await breaker.execute(ok)
      assert.deepEqual(counted, { latencies: 0, success: 0, latency: 0, markedSuccess: 0 })
      const stats = breaker.getStats() // a read publishes this thread's batch
      assert.deepEqual(counted, { latencies: 1, success: 1, latency: 0, markedSuccess: 0 })
      assert.equal(stats.successes, 100)
      assert.equal(stats.latency.count, 100)
    } finally {
      Object.assign(native, originals)
    }
  })

  test('a failure on the fast path is one native call; with a failure-rate window, the successes held back go first', async () => {
    const native = createRequire(import.meta.url)('../lib/native.js')
    const counts = async (options) => {
      const breaker = make(options)
      const calls = []
      const originals = { success: native.success, failure: native.failure }
      native.success = (...args) => (calls.push('success'), originals.success(...args))
      native.failure = (...args) => (calls.push('failure'), originals.failure(...args))
      try {
        for (let i = 0; i < 3; i++) await breaker.execute(ok)
        await breaker.execute(fail).catch(() => {})
      } finally {
        Object.assign(native, originals)
      }
      assert.equal(breaker.getStats().successes, 3)
      return calls
    }
    // A plain breaker: held-back successes never end a run of failures, so
    // they wait for the batch; the failure is reported alone.
    assert.deepEqual(await counts({ failureThreshold: 5 }), ['failure'])
    assert.deepEqual(await counts({ failureThreshold: 5, failureRateThreshold: 50 }), ['success', 'failure'])
  })

  test('a call reads the clock only for a duration: none with a timeout alone, one at each end with every feature', async () => {
    const countReads = async (options, listen) => {
      const breaker = make(options)
      if (listen) {
        breaker.on('success', () => {})
        breaker.on('failure', () => {})
      }
      const now = performance.now
      let reads = 0
      performance.now = function () {
        reads++
        return now.call(this)
      }
      try {
        for (let i = 0; i < 200; i++) await breaker.execute(i % 4 === 0 ? fail : ok).catch(() => {})
      } finally {
        delete performance.now
      }
      return reads
    }
    // A timeout's closer reads the clock once per tick (100 ms here), not per call.
    assert.ok((await countReads({ timeout: 10_000 })) <= 5)
    const all = {
      timeout: 10_000,
      histogram: true,
      slowCallDuration: 10_000,
      failureRateThreshold: 50,
      windowType: 'time',
      windowSize: 10_000,
      failureThreshold: 1e9,
    }
    const reads = await countReads(all, true)
    assert.ok(reads >= 400 && reads <= 405, `${reads} reads for 200 calls`)
  })

  test('a call times out between its timeout and a tick (a sixteenth of it) later', () => {
    // In a process of its own: this runner's own work would delay the timers.
    const entry = fileURLToPath(new URL('../index.js', import.meta.url))
    const timeout = 320 // a tick of 20 ms
    const script = `
      const { CircuitBreaker, createSharedArray } = require(${JSON.stringify(entry)})
      const options = { timeout: ${timeout}, failureThreshold: 1e9 }
      const breaker = new CircuitBreaker(createSharedArray(options), options)
      const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
      const never = () => new Promise((resolve) => setTimeout(resolve, 10000))
      ;(async () => {
        const calls = []
        // Calls begin all through several ticks, so buckets close at every point.
        for (let i = 0; i < 12; i++) {
          const began = performance.now()
          calls.push(breaker.execute(never).catch((error) => [error.code, performance.now() - began]))
          await sleep(7)
        }
        console.log(JSON.stringify({ ended: await Promise.all(calls), timeouts: breaker.getStats().timeouts }))
        process.exit(0)
      })()
    `
    const child = spawnSync(process.execPath, ['-e', script], { timeout: 30000, encoding: 'utf8' })
    assert.equal(child.status, 0, child.stderr)
    const { ended, timeouts } = JSON.parse(child.stdout)
    assert.equal(timeouts, 12)
    for (const [code, elapsed] of ended) {
      assert.equal(code, 'ERR_CIRCUIT_TIMEOUT')
      assert.ok(elapsed >= timeout, `timed out early, after ${elapsed} ms`)
      // 20 ms of tick; the rest is room for a loaded machine's event loop
      // (two timers in series, each may be descheduled: the bound that
      // matters is never early; this one only catches a lost tick or more).
      assert.ok(elapsed <= timeout + 20 + 250, `timed out late, after ${elapsed} ms`)
    }
  })

  test('with many calls pending, exactly the unsettled ones time out, in order, never early', async () => {
    const timeout = 40
    const breaker = make({ timeout, failureThreshold: 1e9 })
    const ended = []
    const start = (name, task) => {
      const began = performance.now()
      return breaker.execute(task).then(
        () => ended.push([name, 'settled']),
        (error) => {
          ended.push([name, error.code])
          if (error.code === 'ERR_CIRCUIT_TIMEOUT') assert.ok(performance.now() - began >= timeout, `${name} timed out early`)
        },
      )
    }
    const calls = []
    // Settled calls between pending ones leave the pending ones' order alone.
    for (let i = 0; i < 4; i++) {
      calls.push(start(`a${i}`, never))
      calls.push(start(`s${i}`, () => sleep(5)))
    }
    await sleep(15)
    for (let i = 0; i < 3; i++) calls.push(start(`b${i}`, never))
    await Promise.all(calls)
    const timedOut = ended.filter(([, how]) => how === 'ERR_CIRCUIT_TIMEOUT').map(([name]) => name)
    assert.deepEqual(timedOut, ['a0', 'a1', 'a2', 'a3', 'b0', 'b1', 'b2'])
    assert.equal(ended.filter(([, how]) => how === 'settled').length, 4)
    assert.equal(breaker.getStats().timeouts, 7)
  })

  test('each per-call event is emitted to its own listeners only, with exactly its arguments', async () => {
    const breaker = make({ failureThreshold: 1, resetTimeout: 60_000 })
    const heard = []
    breaker.once('success', function (...args) {
      heard.push(['success', args.length, args[0], typeof args[1], this === breaker])
    })
    breaker.on('reject', (...args) => heard.push(['reject', args.length, args[0].code]))
    await breaker.execute(ok)
    await breaker.execute(ok) // the once listener is gone
    await breaker.execute(fail).catch(() => {}) // nobody listens to failures: opens it
    await breaker.execute(ok).catch(() => {})
    assert.deepEqual(heard, [
      ['success', 2, 'ok', 'number', true],
      ['reject', 1, 'ERR_CIRCUIT_OPEN'],
    ])
  })
})

test('a per-call listener that throws changes no outcome, stops no later event, and its error is uncaught after the call', () => {
  const entry = fileURLToPath(new URL('../index.js', import.meta.url))
  const script = `
    const { CircuitBreaker, createSharedArray } = require(${JSON.stringify(entry)})
    const breaker = new CircuitBreaker(createSharedArray(), { failureFallback: () => 'fallback' })
    process.on('uncaughtException', (error) => console.log('uncaught', error.message))
    breaker.on('success', function () { throw new Error('success listener, this is the breaker: ' + (this === breaker)) })
    breaker.on('failure', () => { throw new Error('failure listener') })
    breaker.on('fallback', (result) => console.log('fallback event', result))
    ;(async () => {
      console.log('value', await breaker.execute(async () => 1))
      console.log('value', await breaker.execute(async () => { throw new Error('down') }))
      const stats = breaker.getStats()
      console.log('counted', stats.successes, stats.failures)
    })()
  `
  const child = spawnSync(process.execPath, ['-e', script], { timeout: 30000, encoding: 'utf8' })
  assert.equal(child.status, 0, child.stderr)
  assert.deepEqual(child.stdout.trim().split('\n').sort(), [
    'counted 1 1',
    'fallback event fallback',
    'uncaught failure listener',
    'uncaught success listener, this is the breaker: true',
    'value 1',
    'value fallback',
  ])
})
