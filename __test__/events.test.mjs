// Events across threads and processes: state events reach every thread that
// listens, per-call events stay in the calling thread, and the counters and
// the latency histogram add up the calls of every thread.
import { test, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'
import CircuitBreaker, { CircuitBreakerKeys, createSharedArray } from 'shared-circuit-breaker'
import { sleep, within, until, startWorker, terminateLeftovers } from './fixtures/policy-harness.mjs'

const WORKER = new URL('./fixtures/policy-worker.mjs', import.meta.url)
const CHILD = fileURLToPath(new URL('./fixtures/events-child.mjs', import.meta.url))
const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url))
const STATE_EVENTS = ['open', 'halfOpen', 'close']
const CALL_EVENTS = ['success', 'failure', 'reject', 'timeout', 'fallback']

afterEach(terminateLeftovers)

// Records the state events of `breaker` in this thread.
function record(breaker, events = STATE_EVENTS) {
  const seen = []
  for (const event of events) breaker.on(event, (payload) => seen.push({ event, payload }))
  return seen
}

test("when worker A trips the breaker, B's open listener fires once, with A's threadId", async () => {
  const options = { failureThreshold: 2, resetTimeout: 60000 }
  const array = createSharedArray(options)
  const a = await startWorker({ array, options })
  const b = await startWorker({ array, options })
  await b.ask('listen', { events: STATE_EVENTS })
  const tripped = await a.ask('calls', { outcomes: ['fail', 'fail'] })
  assert.ok(tripped.results.every((r) => r.ran && !r.ok))

  await until(() => b.events.length > 0, 2000, "B's open listener fired")
  const [{ event, payload }] = b.events
  assert.equal(event, 'open')
  assert.equal(payload.state, 'OPEN')
  assert.equal(payload.threadId, a.threadId, "A's threadId")
  assert.notEqual(a.threadId, b.threadId)
  assert.equal(typeof payload.generation, 'number')
  assert.ok(Number.isFinite(payload.time) && payload.time >= tripped.results[1].before - 1)
  assert.ok(payload.time <= tripped.results[1].after + 1)

  await sleep(300)
  assert.deepEqual((await b.ask('fired')).fired, { open: 1, halfOpen: 0, close: 0 })
  assert.equal(b.events.length, 1)
  assert.deepEqual(await Promise.all([a.end(), b.end()]), [0, 0])
})

test('state events reach the main thread: open, halfOpen, close in order', async () => {
  const options = { failureThreshold: 2, resetTimeout: 100 }
  const array = createSharedArray(options)
  const breaker = new CircuitBreaker(array, options)
  const seen = record(breaker)
  const worker = await startWorker({ array, options })

  await worker.ask('calls', { outcomes: ['fail', 'fail'] })
  await until(() => seen.length === 1, 2000, 'the main thread saw the open')
  await until(() => breaker.getState() === 'HALF_OPEN', 5000, 'the reset timeout passed')
  const probe = await worker.ask('call', { outcome: 'ok' })
  assert.equal(probe.ran, true)
  await until(() => seen.length >= 3, 2000, 'the main thread saw three transitions')
  await sleep(200) // nothing more arrives
  assert.deepEqual(
    seen.map(({ event, payload }) => [event, payload.state, payload.threadId]),
    [
      ['open', 'OPEN', worker.threadId],
      ['halfOpen', 'HALF_OPEN', worker.threadId],
      ['close', 'CLOSED', worker.threadId],
    ],
  )
  const generations = seen.map(({ payload }) => payload.generation)
  assert.ok(generations[0] < generations[1] && generations[1] < generations[2], `generations ${generations}`)
  const times = seen.map(({ payload }) => payload.time)
  assert.ok(times[0] <= times[1] && times[1] <= times[2], `times ${times}`)
  assert.ok(times[1] - times[0] >= 100, 'half-open no sooner than the reset timeout after opening')
  assert.equal(await worker.end(), 0)
})

test('a terminated worker does not stop delivery to others', async () => {
  const options = { failureThreshold: 1, resetTimeout: 60000 }
  const array = createSharedArray(options)
  const breaker = new CircuitBreaker(array, options)
  const seen = record(breaker)
  const doomed = await startWorker({ array, options })
  const survivor = await startWorker({ array, options })
  const tripper = await startWorker({ array, options })
  await doomed.ask('listen', { events: STATE_EVENTS })
  await survivor.ask('listen', { events: STATE_EVENTS })
  assert.equal(await doomed.worker.terminate(), 1)

  await tripper.ask('call', { outcome: 'fail' })
  await until(() => seen.length === 1 && survivor.events.length === 1, 2000, 'the open reached main and the survivor')
  breaker.reset()
  await until(() => seen.length === 2 && survivor.events.length === 2, 2000, 'the close reached main and the survivor')
  assert.deepEqual(
    seen.map(({ event, payload }) => [event, payload.threadId]),
    [
      ['open', tripper.threadId],
      ['close', 0],
    ],
  )
  assert.deepEqual(
    survivor.events.map(({ event, payload }) => [event, payload.threadId]),
    [
      ['open', tripper.threadId],
      ['close', 0],
    ],
  )
  assert.equal(doomed.events.length, 0)
  assert.deepEqual(await Promise.all([survivor.end(), tripper.end()]), [0, 0])
})

// A watch on a SharedArrayBuffer sleeps in Atomics.waitAsync until the
// thread that makes a transition wakes it: each of these must, and nothing
// else here does (the probe hangs, so no later transition covers for one).
test('every transition an admission or an override makes wakes a listener in another thread', async () => {
  const options = { failureThreshold: 1, resetTimeout: 50 }
  const array = createSharedArray(options)
  const breaker = new CircuitBreaker(array, options)
  const listener = await startWorker({ array, options })
  await listener.ask('listen', { events: STATE_EVENTS })
  const heard = async (count, what) => {
    await until(() => listener.events.length === count, 2000, `the listener heard ${what}`)
    return listener.events.at(-1).event
  }

  await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})
  assert.equal(await heard(1, 'the failure open it'), 'open')
  await sleep(60)
  // The admission after the reset timeout half-opens the breaker; its probe hangs.
  breaker.execute(() => new Promise(() => {}))
  assert.equal(breaker.getState(), 'HALF_OPEN')
  assert.equal(await heard(2, 'the admission half-open it'), 'halfOpen')
  breaker.reset()
  assert.equal(await heard(3, 'reset() close it'), 'close')
  const isolation = breaker.isolate()
  assert.equal(await heard(4, 'isolate() open it'), 'open')
  breaker.transitionToHalfOpen() // isolation wins: no transition
  isolation.release()
  assert.equal(await heard(5, 'the release close it'), 'close')
  breaker.transitionToHalfOpen()
  assert.equal(await heard(6, 'transitionToHalfOpen()'), 'halfOpen')
  breaker.disable()
  assert.equal(await heard(7, 'disable() close it'), 'close')
  breaker.enable()
  await sleep(100)
  assert.deepEqual(
    listener.events.map(({ event, payload }) => [event, payload.threadId]),
    [
      ['open', 0],
      ['halfOpen', 0],
      ['close', 0],
      ['open', 0],
      ['close', 0],
      ['halfOpen', 0],
      ['close', 0],
    ],
  )
  assert.equal(await listener.end(), 0)
})

test('a call on a breaker whose STATE slot holds junk is refused, and the OPEN it makes is heard', async () => {
  const options = { failureThreshold: 1, resetTimeout: 60_000 }
  const array = createSharedArray(options)
  const breaker = new CircuitBreaker(array, options)
  const seen = record(breaker)
  Atomics.store(array, CircuitBreakerKeys.STATE, 7)
  let ran = false
  const error = await breaker.execute(() => (ran = true)).catch((e) => e)
  assert.equal(ran, false, 'the task did not run')
  assert.equal(error?.code, 'ERR_CIRCUIT_OPEN')
  assert.equal(breaker.getState(), 'OPEN')
  await until(() => seen.length === 1, 2000, 'the open was heard')
  assert.equal(seen[0].event, 'open')
  breaker.removeAllListeners()
})

for (const mode of ['main', 'worker']) {
  const where = mode === 'main' ? 'its main thread' : 'a worker thread'
  test(`a process whose breaker has state listeners exits as soon as its work ends (calls from ${where})`, async (t) => {
    const started = Date.now()
    const child = spawn(process.execPath, [CHILD, mode], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => (stderr += chunk))
    const exited = once(child, 'exit')
    let code
    let signal
    try {
      ;[code, signal] = await within(exited, 10000, 'the child did not exit by itself')
    } finally {
      child.kill() // a no-op once it has exited
      t.diagnostic(`child ended after ${Date.now() - started} ms`)
    }
    assert.equal(stderr, '')
    assert.deepEqual({ code, signal }, { code: 0, signal: null })
    const printed = JSON.parse(stdout)
    const calls = ['failure', 'open', 'success', 'halfOpen', 'close']
    if (mode === 'main') {
      // Call events at once; state events a turn later.
      assert.deepEqual(printed.main.toSorted(), calls.toSorted())
      assert.deepEqual(printed.main.filter((e) => STATE_EVENTS.includes(e)), STATE_EVENTS)
    } else {
      assert.deepEqual(printed.main, STATE_EVENTS)
      assert.deepEqual(printed.worker.filter((e) => STATE_EVENTS.includes(e)), STATE_EVENTS)
      assert.deepEqual(printed.worker.toSorted(), calls.toSorted())
    }
  })
}

// Builds BREAKERS breakers in a child with --expose-gc; each adds an `open`
// listener and lets it go as `how` says. Prints how many of their buffers
// were collected and how much `arrayBuffers` and the heap grew.
const BREAKERS = 30000
const dropListeners = (how) => `
  const { CircuitBreaker, createSharedArray } = require('shared-circuit-breaker')
  let collected = 0
  const registry = new FinalizationRegistry(() => collected++)
  const listener = () => {}
  const turn = () => new Promise((resolve) => setImmediate(resolve))
  ;(async () => {
    gc()
    const before = process.memoryUsage()
    for (let i = 0; i < ${BREAKERS}; i++) {
      const array = createSharedArray()
      const breaker = new CircuitBreaker(array)
      registry.register(array.buffer, i)
      ${how}
    }
    for (let i = 0; i < 10; i++) { await turn(); gc() }
    await new Promise((resolve) => setTimeout(resolve, 20))
    gc()
    await turn()
    const after = process.memoryUsage()
    const mib = (key) => (after[key] - before[key]) / 1048576
    console.log(JSON.stringify({ collected, arrayBuffers: mib('arrayBuffers'), heap: mib('heapUsed') }))
  })()
`
function runDropListeners(how) {
  const run = spawnSync(process.execPath, ['--expose-gc', '-e', dropListeners(how)], {
    cwd: PACKAGE_ROOT,
    encoding: 'utf8',
    timeout: 60000,
  })
  assert.equal(run.stderr, '')
  assert.equal(run.status, 0)
  return JSON.parse(run.stdout)
}

test(`${BREAKERS} breakers whose state listener is gone are all collected, as without a listener`, async (t) => {
  const baseline = runDropListeners('')
  t.diagnostic(`no listener: ${JSON.stringify(baseline)}`)
  assert.equal(baseline.collected, BREAKERS)
  const bytes = BREAKERS * createSharedArray().byteLength / 1048576
  for (const how of [
    "breaker.on('open', listener); breaker.off('open', listener)",
    "breaker.on('open', listener); breaker.removeAllListeners('open')",
    "breaker.on('open', listener); breaker.removeAllListeners()",
    "breaker.on('open', listener); breaker.dispose()",
  ]) {
    const measured = runDropListeners(how)
    t.diagnostic(`${how}: ${JSON.stringify(measured)}`)
    assert.equal(measured.collected, BREAKERS, how)
    assert.ok(measured.arrayBuffers < baseline.arrayBuffers + bytes / 4, `${how}: arrayBuffers +${measured.arrayBuffers} MiB`)
    assert.ok(measured.heap < baseline.heap + 8, `${how}: heap +${measured.heap} MiB`)
  }
})

test('removeAllListeners() without an argument removes the listeners of every event', () => {
  const breaker = new CircuitBreaker(createSharedArray())
  breaker.on('open', () => {})
  breaker.on('success', () => {})
  breaker.removeAllListeners()
  assert.deepEqual(breaker.eventNames(), [])
})

test('a listener leaving on one thread wakes the others spuriously only: each still hears every transition once', async () => {
  const options = { failureThreshold: 1, resetTimeout: 60000 }
  const array = createSharedArray(options)
  const listener = await startWorker({ array, options })
  await listener.ask('listen', { events: STATE_EVENTS })
  const breaker = new CircuitBreaker(array, options)
  const other = () => {}
  for (let i = 0; i < 200; i++) {
    breaker.on('close', other)
    breaker.off('close', other)
    if (i % 20 === 0) await sleep(1)
  }
  await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})
  await until(() => listener.events.length === 1, 2000, "the worker's open listener fired")
  breaker.reset()
  await until(() => listener.events.length === 2, 2000, "the worker's close listener fired")
  await sleep(100) // nothing more arrives
  assert.deepEqual(
    listener.events.map(({ event, payload }) => [event, payload.threadId]),
    [
      ['open', 0],
      ['close', 0],
    ],
  )
  assert.equal(await listener.end(), 0)
})

test('stats summed across two workers equal the calls they made', async () => {
  const options = { failureThreshold: 5, resetTimeout: 60000 }
  const array = createSharedArray(options)
  const a = await startWorker({ array, options })
  const b = await startWorker({ array, options })
  // One failure in every ten calls, never two in a row in a thread: the
  // shared run of failures stays far below 5 while both call at once.
  const plan = (n) => Array.from({ length: n }, (_, i) => (i % 10 === 4 ? 'fail' : 'ok'))
  const [ra, rb] = await Promise.all([a.ask('calls', { outcomes: plan(100) }), b.ask('calls', { outcomes: plan(120) })])
  const trip = await a.ask('calls', { outcomes: ['fail', 'fail', 'fail', 'fail', 'fail'] })
  const after = [await a.ask('calls', { outcomes: ['ok', 'ok', 'ok'] }), await b.ask('calls', { outcomes: ['ok', 'ok', 'ok'] })]
  assert.deepEqual(await Promise.all([a.end(), b.end()]), [0, 0])

  const results = [ra, rb, trip, ...after].flatMap((r) => r.results)
  const made = {
    requests: results.length,
    successes: results.filter((r) => r.ran && r.ok).length,
    failures: results.filter((r) => r.ran && !r.ok).length,
    rejections: results.filter((r) => !r.ran && r.error.code === 'ERR_CIRCUIT_OPEN').length,
  }
  assert.deepEqual(made, { requests: 231, successes: 198, failures: 27, rejections: 6 })
  const stats = new CircuitBreaker(array, options).getStats()
  assert.deepEqual(
    { requests: stats.requests, successes: stats.successes, failures: stats.failures, rejections: stats.rejections },
    made,
  )
  assert.equal(stats.state, 'OPEN')
  assert.equal(stats.consecutiveFailures, 5)
})

test('per-call events fire in the calling thread with durations', async () => {
  const options = { failureThreshold: 3, resetTimeout: 60000, timeout: 200 }
  const array = createSharedArray(options)
  const breaker = new CircuitBreaker(array, options)
  const inMain = record(breaker, CALL_EVENTS)
  const caller = await startWorker({ array, options, fallbacks: true })
  const other = await startWorker({ array, options })
  await caller.ask('listen', { events: CALL_EVENTS })
  await other.ask('listen', { events: CALL_EVENTS })

  const answers = [
    await caller.ask('call', { outcome: 'ok', delay: 30 }),
    await caller.ask('call', { outcome: 'fail', delay: 20 }),
    await caller.ask('call', { outcome: 'hang' }), // times out: the third failure opens
    await caller.ask('call', { outcome: 'fail' }),
    await caller.ask('call', { outcome: 'ok' }),
  ]
  assert.deepEqual(
    answers.map(({ ran, value }) => ({ ran, value })),
    [
      { ran: true, value: 'ok' },
      { ran: true, value: 'failure fallback (dependency down)' },
      { ran: true, value: 'failure fallback (Timed out after 200 ms)' },
      { ran: true, value: 'failure fallback (dependency down)' },
      { ran: false, value: 'open fallback (ERR_CIRCUIT_OPEN)' },
    ],
  )
  const events = caller.events.map(({ event }) => event)
  assert.deepEqual(events, [
    'success',
    'failure',
    'fallback',
    'timeout',
    'failure',
    'fallback',
    'failure',
    'fallback',
    'reject',
    'fallback',
  ])
  const [success, failure, fallback, timeout, timedOutFailure] = caller.events.map(({ payload }) => payload)
  assert.equal(success.value, 'ok')
  assert.ok(success.ms >= 25, `success after ${success.ms} ms (task waited 30)`)
  assert.equal(failure.error.message, 'dependency down')
  assert.ok(failure.ms >= 15, `failure after ${failure.ms} ms (task waited 20)`)
  assert.deepEqual(fallback, {
    result: 'failure fallback (dependency down)',
    error: { message: 'dependency down', code: undefined, name: 'Error' },
  })
  assert.deepEqual(timeout, {
    error: { message: 'Timed out after 200 ms', code: 'ERR_CIRCUIT_TIMEOUT', name: 'CircuitTimeoutError' },
    ms: 200,
  })
  assert.equal(timedOutFailure.error.code, 'ERR_CIRCUIT_TIMEOUT')
  assert.equal(caller.events[8].payload.error.code, 'ERR_CIRCUIT_OPEN')
  assert.equal(caller.events[9].payload.result, 'open fallback (ERR_CIRCUIT_OPEN)')

  await sleep(200)
  assert.deepEqual(inMain, [], 'no call events in the main thread')
  assert.deepEqual(other.events, [], 'no call events in the other worker')
  const stats = breaker.getStats()
  assert.deepEqual(
    { timeouts: stats.timeouts, fallbacks: stats.fallbacks, rejections: stats.rejections, state: stats.state },
    { timeouts: 1, fallbacks: 4, rejections: 1, state: 'OPEN' },
  )
  assert.deepEqual(await Promise.all([caller.end(), other.end()]), [0, 0])
})

test('the shared histogram gives percentiles of calls from two workers', async () => {
  const options = { failureThreshold: 1000, resetTimeout: 60000, histogram: true }
  const array = createSharedArray(options)
  const workers = [await startWorker({ array, options }), await startWorker({ array, options })]
  // Per worker: 16 calls of 5 ms and 4 of 50 ms, mixed. Over both, 20 % are
  // slow: p50 is a fast call, p90 and p99 slow ones.
  const delays = Array.from({ length: 20 }, (_, i) => (i % 5 === 2 ? 50 : 5))
  const outcomes = delays.map(() => 'ok')
  for (const worker of workers) await worker.ask('listen', { events: ['success'] })
  await Promise.all(workers.map((worker) => worker.ask('calls', { outcomes, delays })))
  const durations = workers.flatMap((w) => w.events.map(({ payload }) => payload.ms))
  assert.deepEqual(await Promise.all(workers.map((w) => w.end())), [0, 0])

  const { latency } = new CircuitBreaker(array, options).getStats()
  assert.equal(latency.count, 40)
  assert.equal(durations.length, 40)
  const sorted = durations.toSorted((x, y) => x - y)
  const fast = sorted.slice(0, 32)
  const slow = sorted.slice(32)
  // Recorded in whole microseconds: the max and the sum are exact.
  assert.ok(Math.abs(latency.max - sorted.at(-1) / 1000) <= 1e-6, `max ${latency.max} s, slowest ${sorted.at(-1)} ms`)
  const sum = durations.reduce((x, y) => x + y, 0) / 1000
  assert.ok(Math.abs(latency.sum - sum) <= 40e-6, `sum ${latency.sum} s, calls took ${sum} s`)
  // Percentiles come from buckets a quarter of a power of two wide.
  const near = (value, low, high) => value >= (low / 1.25) * 0.001 && value <= high * 1.25 * 0.001
  assert.ok(near(latency.p50, fast[0], fast.at(-1)), `p50 ${latency.p50} s, fast calls ${fast[0]}..${fast.at(-1)} ms`)
  assert.ok(near(latency.p90, slow[0], slow.at(-1)), `p90 ${latency.p90} s, slow calls ${slow[0]}..${slow.at(-1)} ms`)
  assert.ok(near(latency.p99, slow[0], slow.at(-1)), `p99 ${latency.p99} s, slow calls ${slow[0]}..${slow.at(-1)} ms`)
  assert.ok(latency.p99 >= 0.04, `p99 ${latency.p99} s for calls of at least 50 ms`)
  assert.ok(latency.p50 < latency.p99)
  const counted = latency.buckets.at(-1).count
  assert.equal(counted, 40, 'the last (cumulative) bucket counts every call')
})
