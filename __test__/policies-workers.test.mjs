// The policies (failure rate, isolation, half-open limits, disable, backoff)
// decided once for every worker thread sharing one buffer.
import { test, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import CircuitBreaker, { createSharedArray } from 'shared-circuit-breaker'
import { sleep, within, until, startWorker, terminateLeftovers } from './fixtures/policy-harness.mjs'

const WORKER = new URL('./fixtures/policy-worker.mjs', import.meta.url)

afterEach(terminateLeftovers)

const OPEN = { ok: false, error: { message: 'Circuit is open', code: 'ERR_CIRCUIT_OPEN', name: 'CircuitOpenError' } }

// The parts of a call's answer that say how it went.
const outcome = ({ ran, ok, value, error }) => (ok ? { ran, ok, value } : { ran, ok, error })

test('a failure rate reached by calls spread over two workers opens the breaker for both', async () => {
  const options = { failureRateThreshold: 50, minimumCalls: 10, resetTimeout: 60000 }
  const array = createSharedArray(options)
  const breaker = new CircuitBreaker(array, options)
  const a = await startWorker({ array, options })
  const b = await startWorker({ array, options })
  // Five calls each, taking turns: a1 b1 a2 b2 ... a5 b5. Neither worker
  // alone reaches minimumCalls; together they do at b5, with 6 of 10 failed.
  const planA = ['fail', 'ok', 'fail', 'ok', 'fail']
  const planB = ['ok', 'fail', 'ok', 'fail', 'fail']
  for (let i = 0; i < 5; i++) {
    for (const [worker, plan] of [[a, planA], [b, planB]]) {
      if (worker === b && i === 4) {
        // Nine calls, five failed: the rate is above 50 % but the window is
        // not full enough to judge.
        const { window, state } = breaker.getStats()
        assert.deepEqual({ state, calls: window.calls, failures: window.failures }, { state: 'CLOSED', calls: 9, failures: 5 })
      }
      const answer = await worker.ask('call', { outcome: plan[i] })
      assert.equal(answer.ran, true, `call ${i + 1} of ${worker === a ? 'A' : 'B'} ran`)
    }
  }
  assert.equal(breaker.getState(), 'OPEN')
  for (const worker of [a, b]) {
    assert.deepEqual(outcome(await worker.ask('call', { outcome: 'ok' })), { ran: false, ...OPEN })
  }
  assert.deepEqual(await Promise.all([a.end(), b.end()]), [0, 0])
  const stats = breaker.getStats()
  assert.deepEqual(
    { requests: stats.requests, failures: stats.failures, rejections: stats.rejections },
    { requests: 12, failures: 6, rejections: 2 },
  )
})

test('isolate() in the main thread holds workers open until released', async () => {
  // A short reset timeout: the isolation, not the timer, keeps it open.
  const options = { failureThreshold: 3, resetTimeout: 50 }
  const array = createSharedArray(options)
  const breaker = new CircuitBreaker(array, options)
  const workers = [await startWorker({ array, options }), await startWorker({ array, options })]
  const everyone = async (expected, why) => {
    for (const worker of workers) {
      assert.deepEqual(outcome(await worker.ask('call', { outcome: 'ok' })), expected, why)
    }
  }
  const ran = { ran: true, ok: true, value: 'ok' }
  const refused = { ran: false, ...OPEN }

  await everyone(ran, 'before isolate()')
  const handle = breaker.isolate()
  await everyone(refused, 'isolated')
  await sleep(150) // three reset timeouts: no probe gets through
  await everyone(refused, 'isolated, past the reset timeout')
  const seen = await workers[0].ask('stats')
  assert.deepEqual({ state: seen.stats.state, isolated: seen.stats.isolated }, { state: 'OPEN', isolated: true })
  handle.release()
  await everyone(ran, 'after release()')

  breaker.isolate()
  await everyone(refused, 'isolated again')
  breaker.reset()
  await everyone(ran, 'after reset()')
  assert.equal((await workers[1].ask('stats')).stats.isolated, false)
  assert.deepEqual(await Promise.all(workers.map((w) => w.end())), [0, 0])
})

test('halfOpenMaxCalls: 3 admits exactly three probes across four workers', async () => {
  const options = { failureThreshold: 1, resetTimeout: 200, halfOpenMaxCalls: 3 }
  const array = createSharedArray(options)
  const breaker = new CircuitBreaker(array, options)
  // control[0]: start, [1]: tasks started, [2]: release (see the fixture).
  const control = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT))
  const workers = await Promise.all(Array.from({ length: 4 }, () => startWorker({ array, options, control })))
  await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})
  assert.equal(breaker.getState(), 'OPEN')
  const answers = []
  const calls = workers.map((w) => w.ask('race').then((answer) => answers.push(answer)))
  await until(() => breaker.getState() === 'HALF_OPEN', 5000, 'the reset timeout passed')

  Atomics.store(control, 0, 1)
  Atomics.notify(control, 0)
  // Every worker has decided once each either holds a running task or has
  // answered with a refusal.
  await until(() => Atomics.load(control, 1) + answers.length >= 4, 10000, 'all four workers called')
  assert.equal(Atomics.load(control, 1), 3, 'tasks running across the four workers')
  assert.deepEqual(answers.map(outcome), [{ ran: false, ...OPEN }])

  Atomics.store(control, 2, 1)
  Atomics.notify(control, 2)
  await within(Promise.all(calls), 10000, 'the probes did not settle')
  assert.deepEqual(
    answers.slice(1).map(outcome),
    Array.from({ length: 3 }, () => ({ ran: true, ok: true, value: 'probed' })),
  )
  assert.equal(breaker.getState(), 'CLOSED')
  assert.equal(breaker.getStats().probes, 3)
  assert.deepEqual(await Promise.all(workers.map((w) => w.end())), [0, 0, 0, 0])
})

test('disable() in one worker lets every thread\'s calls through', async () => {
  const options = { failureThreshold: 2, resetTimeout: 60000 }
  const array = createSharedArray(options)
  const breaker = new CircuitBreaker(array, options)
  const a = await startWorker({ array, options })
  const b = await startWorker({ array, options })
  for (let i = 0; i < 2; i++) await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})
  assert.deepEqual(outcome(await b.ask('call', { outcome: 'ok' })), { ran: false, ...OPEN })

  await a.ask('disable')
  assert.deepEqual(outcome(await b.ask('call', { outcome: 'ok' })), { ran: true, ok: true, value: 'ok' })
  // Failures past the threshold still run and are counted, but open nothing.
  const { results } = await b.ask('calls', { outcomes: ['fail', 'fail', 'fail', 'fail'] })
  assert.ok(results.every((r) => r.ran && !r.ok), 'every failing call ran')
  assert.equal(await breaker.execute(async () => 'main ran'), 'main ran')
  const stats = breaker.getStats()
  assert.deepEqual({ disabled: stats.disabled, state: stats.state }, { disabled: true, state: 'CLOSED' })
  assert.equal(stats.failures, 2 + 4)

  await a.ask('enable')
  await b.ask('calls', { outcomes: ['fail', 'fail'] })
  assert.equal(breaker.getState(), 'OPEN')
  await assert.rejects(breaker.execute(async () => 'not run'), { code: 'ERR_CIRCUIT_OPEN' })
  assert.deepEqual(await Promise.all([a.end(), b.end()]), [0, 0])
})

test('backoff grows the open period for every thread', async () => {
  // Open 200 ms, then 600 ms after one failed probe (multiplier 3).
  const options = { failureThreshold: 1, resetTimeout: 200, backoffMultiplier: 3, maxResetTimeout: 2000 }
  const array = createSharedArray(options)
  const breaker = new CircuitBreaker(array, options)
  const a = await startWorker({ array, options })
  const b = await startWorker({ array, options })
  await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})
  assert.equal(breaker.getStats().openDuration, 200)
  await until(() => breaker.getState() === 'HALF_OPEN', 5000, 'the reset timeout passed')

  // Worker A's probe fails: open again, for longer.
  assert.deepEqual(outcome(await a.ask('call', { outcome: 'fail' })), {
    ran: true,
    ok: false,
    error: { message: 'dependency down', code: undefined, name: 'Error' },
  })
  const reopened = breaker.getStats()
  assert.equal(reopened.state, 'OPEN')
  assert.equal(typeof reopened.stateSince, 'number')
  assert.equal((await b.ask('stats')).stats.openDuration, 600, 'worker B sees the longer period')

  // Worker B calls every 10 ms until a task runs.
  const { attempts } = await b.ask('poll', { every: 10, limit: 5000 })
  const admitted = attempts.at(-1)
  assert.equal(admitted.ran, true, 'a probe was admitted in the end')
  assert.ok(attempts.slice(0, -1).every((x) => !x.ran && x.error.code === 'ERR_CIRCUIT_OPEN'))
  // Refused although the first period (200 ms) had passed when it was made...
  const pastFirstPeriod = attempts.filter((x) => !x.ran && x.before >= reopened.stateSince + 200)
  assert.ok(pastFirstPeriod.length > 0, `attempts at +${attempts.map((x) => x.before - reopened.stateSince)} ms`)
  // ...and admitted only once the grown one had.
  assert.ok(admitted.after >= reopened.stateSince + 600, `admitted at +${admitted.after - reopened.stateSince} ms`)

  // The successful probe closed it, and the period is back to the first one.
  assert.equal(breaker.getState(), 'CLOSED')
  assert.equal((await a.ask('stats')).stats.openDuration, 200)
  assert.deepEqual(await Promise.all([a.end(), b.end()]), [0, 0])
})
