// The shared breaker as a cockatiel policy ('shared-circuit-breaker/cockatiel'),
// against the real cockatiel 4. Where cockatiel has an answer (what a retry
// does when it meets an open circuit, what a timeout around the breaker
// does), each scenario runs twice, once with cockatiel's own circuit breaker
// and once with ours, and both must come out the same.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  ConstantBackoff,
  IsolatedCircuitError,
  TaskCancelledError,
  TimeoutStrategy,
  circuitBreaker,
  handleAll,
  handleWhen,
  retry,
  timeout,
  wrap,
} from 'cockatiel'
import CircuitBreaker, { createSharedArray, isCircuitOpenError, isCircuitTimeoutError } from 'shared-circuit-breaker'
import { SharedCircuitBreakerPolicy, cockatielPolicy } from 'shared-circuit-breaker/cockatiel'

const BREAKERS = {
  "cockatiel's own": ({ threshold, resetTimeout }) =>
    circuitBreaker(handleAll, { halfOpenAfter: resetTimeout, breaker: new ConsecutiveBreaker(threshold) }),
  'the shared one': ({ threshold, resetTimeout }) =>
    cockatielPolicy(new CircuitBreaker(createSharedArray(), { failureThreshold: threshold, resetTimeout })),
}

// Runs `scenario` with each breaker; returns { [breaker]: result }.
async function both(settings, scenario) {
  const results = {}
  for (const [name, make] of Object.entries(BREAKERS)) results[name] = await scenario(make(settings))
  return results
}

function failingTask(log, failures = Infinity) {
  return async ({ signal }) => {
    log.calls++
    assert.ok(signal && typeof signal.aborted === 'boolean', 'the task gets the pipeline signal')
    if (log.calls <= failures) throw new Error(`failure ${log.calls}`)
    return 'ok'
  }
}

// Runs one call of a task that fails `failures` times (then returns 'ok')
// through retryPolicy around breaker; says how it ended, how often the task
// ran and how often the retry policy retried.
async function throughRetry(breaker, retryPolicy, failures = Infinity) {
  const log = { calls: 0, retries: 0 }
  retryPolicy.onRetry(() => log.retries++)
  const result = await outcome(wrap(retryPolicy, breaker).execute(failingTask(log, failures)))
  return { ...result, ...log, state: CircuitState[breaker.state] }
}

async function outcome(promise) {
  try {
    return { value: await promise }
  } catch (error) {
    return {
      error: error instanceof IsolatedCircuitError ? 'IsolatedCircuitError'
        : error instanceof BrokenCircuitError ? 'BrokenCircuitError'
          : error instanceof TaskCancelledError ? 'TaskCancelledError'
            : error.message,
    }
  }
}

test('retry(handleAll) around the breaker goes on retrying into the open circuit, then gives up with BrokenCircuitError, as with cockatiel\'s own', async () => {
  const results = await both({ threshold: 2, resetTimeout: 60000 }, (breaker) =>
    throughRetry(breaker, retry(handleAll, { maxAttempts: 4 })))
  assert.deepEqual(results['the shared one'], { error: 'BrokenCircuitError', calls: 2, retries: 4, state: 'Open' })
  assert.deepEqual(results['the shared one'], results["cockatiel's own"])
})

test('a retry that does not handle BrokenCircuitError stops at the open circuit, as with cockatiel\'s own', async () => {
  const results = await both({ threshold: 2, resetTimeout: 60000 }, (breaker) =>
    throughRetry(breaker, retry(handleWhen((error) => !(error instanceof BrokenCircuitError)), { maxAttempts: 10 })))
  assert.deepEqual(results['the shared one'], { error: 'BrokenCircuitError', calls: 2, retries: 2, state: 'Open' })
  assert.deepEqual(results['the shared one'], results["cockatiel's own"])
})

test('a retry whose backoff outlasts the open period waits, then the half-open probe runs and closes the circuit, as with cockatiel\'s own', async () => {
  const results = await both({ threshold: 2, resetTimeout: 100 }, (breaker) =>
    throughRetry(breaker, retry(handleAll, { maxAttempts: 3, backoff: new ConstantBackoff(150) }), 2))
  assert.deepEqual(results['the shared one'], { value: 'ok', calls: 3, retries: 2, state: 'Closed' })
  assert.deepEqual(results['the shared one'], results["cockatiel's own"])
})

test('the breaker inside an aggressive timeout: the task sees the abort, its failures open the circuit, as with cockatiel\'s own', async () => {
  const results = await both({ threshold: 2, resetTimeout: 60000 }, async (breaker) => {
    const log = { calls: 0, abortedSignals: 0 }
    const pipeline = wrap(timeout(20, TimeoutStrategy.Aggressive), breaker)
    const task = ({ signal }) => {
      log.calls++
      return new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, 2000, 'late')
        signal.addEventListener('abort', () => {
          log.abortedSignals++
          clearTimeout(timer)
          reject(new Error('aborted'))
        })
      })
    }
    const results = []
    for (let i = 0; i < 3; i++) {
      results.push((await outcome(pipeline.execute(task))).error)
      // The task's own rejection reaches the breaker a tick after the timeout's.
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    return { results, ...log, state: CircuitState[breaker.state] }
  })
  assert.deepEqual(results['the shared one'], {
    results: ['TaskCancelledError', 'TaskCancelledError', 'BrokenCircuitError'],
    calls: 2,
    abortedSignals: 2,
    state: 'Open',
  })
  assert.deepEqual(results['the shared one'], results["cockatiel's own"])
})

test('the signal given to execute reaches the task; with a breaker timeout the task gets a signal that aborts on either', async () => {
  const policy = cockatielPolicy(new CircuitBreaker(createSharedArray(), { failureThreshold: 5 }))
  const controller = new AbortController()
  let seen
  const pending = wrap(retry(handleAll, { maxAttempts: 0 }), policy).execute(({ signal }) => {
    seen = signal
    return new Promise((resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
  }, controller.signal)
  controller.abort(new Error('caller gave up'))
  assert.deepEqual(await outcome(pending), { error: 'caller gave up' })
  assert.equal(seen.aborted, true)

  const timed = cockatielPolicy(new CircuitBreaker(createSharedArray(), { failureThreshold: 5, timeout: 20 }))
  const outer = new AbortController()
  let inner
  const error = await timed.execute(({ signal }) => {
    inner = signal
    return new Promise((resolve) => setTimeout(resolve, 500))
  }, outer.signal).then(() => null, (e) => e)
  assert.ok(isCircuitTimeoutError(error), `got ${error}`)
  assert.equal(inner.aborted, true)
  assert.ok(isCircuitTimeoutError(inner.reason))
  assert.equal(outer.signal.aborted, false)
})

test('events: onSuccess/onFailure for calls it ran, onBreak/onHalfOpen/onReset/onStateChange for the shared state; state and isolate()', async () => {
  const breaker = new CircuitBreaker(createSharedArray(), { failureThreshold: 2, resetTimeout: 60000 })
  const policy = cockatielPolicy(breaker)
  const seen = []
  policy.onSuccess(({ duration }) => seen.push(['success', typeof duration]))
  policy.onFailure(({ handled, reason }) => seen.push(['failure', handled, reason.error.message]))
  const breaks = policy.onBreak(({ isolated }) => seen.push(['break', isolated]))
  policy.onHalfOpen(() => seen.push(['halfOpen']))
  policy.onReset(() => seen.push(['reset']))
  policy.onStateChange((state) => seen.push(['state', CircuitState[state]]))
  const settle = () => new Promise((resolve) => setTimeout(resolve, 50))

  assert.equal(policy.state, CircuitState.Closed)
  assert.equal(await policy.execute(() => 1), 1)
  for (const n of [1, 2]) await outcome(policy.execute(() => Promise.reject(new Error(`e${n}`))))
  const refused = await policy.execute(() => 'not run').then(() => null, (e) => e)
  assert.ok(refused instanceof BrokenCircuitError)
  assert.ok(isCircuitOpenError(refused.cause), 'the cause is the breaker\'s CircuitOpenError')
  assert.equal(policy.state, CircuitState.Open)
  await settle()
  breaker.transitionToHalfOpen()
  await settle()
  assert.equal(policy.state, CircuitState.HalfOpen)
  breaker.reset()
  await settle()
  breaks.dispose()
  const isolation = policy.isolate()
  assert.equal(policy.state, CircuitState.Isolated)
  assert.deepEqual(await outcome(policy.execute(() => 'not run')), { error: 'IsolatedCircuitError' })
  await settle()
  isolation.dispose()
  await settle()
  assert.equal(policy.state, CircuitState.Closed)
  assert.deepEqual(seen, [
    ['success', 'number'],
    ['failure', true, 'e1'],
    ['failure', true, 'e2'],
    ['break', false], ['state', 'Open'],
    ['halfOpen'], ['state', 'HalfOpen'],
    ['reset'], ['state', 'Closed'],
    ['state', 'Isolated'],
    ['reset'], ['state', 'Closed'],
  ])
  breaker.removeAllListeners()
})

test('cockatielPolicy refuses what is not a breaker; the policy is an instance of SharedCircuitBreakerPolicy', () => {
  for (const value of [undefined, null, {}, createSharedArray()]) {
    assert.throws(() => cockatielPolicy(value), (error) => {
      assert.ok(error instanceof TypeError)
      assert.match(error.message, /^breaker must be a CircuitBreaker, got /)
      return true
    })
  }
  assert.ok(cockatielPolicy(new CircuitBreaker(createSharedArray())) instanceof SharedCircuitBreakerPolicy)
})

test('two worker threads, each with the pipeline over one shared breaker: the failures of both open it for both', async () => {
  const array = createSharedArray()
  const go = new Int32Array(new SharedArrayBuffer(4))
  const threshold = 6
  const calls = 20
  const run = () => new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./fixtures/cockatiel-worker.mjs', import.meta.url), {
      workerData: { array, calls, threshold, go },
    })
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  const reports = await Promise.all([run(), run()])
  const ran = reports[0].ran + reports[1].ran
  // Each worker has at most one call in flight, so at most one more than the
  // threshold can run before every thread sees the circuit open.
  assert.ok(ran >= threshold && ran <= threshold + 1, `the task ran ${ran} times in all`)
  let attempts = 0
  for (const { ran: own, retries, outcomes } of reports) {
    // Every call ends with the task's error or with BrokenCircuitError, and
    // every call that failed was retried once.
    assert.equal(outcomes.failed + outcomes.broken, calls)
    assert.equal(outcomes.other, 0)
    assert.equal(retries, calls)
    assert.ok(outcomes.broken >= calls - own, `${outcomes.broken} calls met the open circuit`)
    attempts += calls + retries
  }
  const stats = new CircuitBreaker(array).getStats()
  assert.equal(stats.state, 'OPEN')
  assert.equal(stats.failures, ran)
  assert.equal(stats.rejections, attempts - ran)
})

test('the types: a TypeScript user (strict) of the adapter and of maxConcurrent type-checks, and what the runtime refuses does not', () => {
  const root = fileURLToPath(new URL('..', import.meta.url))
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const run = spawnSync(process.execPath, [tsc, '-p', path.join(root, '__test__', 'types', 'tsconfig.json')], {
    encoding: 'utf8',
    timeout: 120000,
  })
  assert.equal(`${run.stdout}${run.stderr}`, '')
  assert.equal(run.status, 0)
})
