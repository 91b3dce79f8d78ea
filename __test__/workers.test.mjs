// Real worker threads sharing one SharedArrayBuffer, and real processes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import CircuitBreaker, { createSharedArray, isCircuitOpenError } from 'shared-circuit-breaker'
import { startWorker as startFixture } from './support/messages.mjs'

const WORKER = new URL('./fixtures/worker.mjs', import.meta.url)
const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
// A deadline that does not itself keep the process alive.
const deadline = (ms, value) => new Promise((resolve) => setTimeout(resolve, ms, value).unref())

const startWorker = (workerData) => startFixture(WORKER, workerData)

async function run(workerData) {
  const { next, exited } = startWorker(workerData)
  const message = await next()
  assert.equal(await exited, 0)
  return message
}

async function open(array, threshold, timeout) {
  const breaker = new CircuitBreaker(array, threshold, timeout)
  for (let i = 0; i < threshold; i++) await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})
  assert.equal(breaker.getState(), 'OPEN')
  return breaker
}

test('worker A trips the breaker; worker B rejects without calling its task', async () => {
  const array = createSharedArray()
  const a = await run({ role: 'trip', array, threshold: 3 })
  assert.deepEqual(a, { calls: 3, state: 'OPEN' })
  const b = await run({ role: 'once', array, threshold: 3 })
  assert.deepEqual(b, { ran: false, error: 'Circuit is open', code: 'ERR_CIRCUIT_OPEN', state: 'OPEN' })
  assert.equal(new CircuitBreaker(array, 3, 60000).getTotalRequestCount(), 4)
})

test('four workers after the reset timeout admit exactly one probe between them', async () => {
  const array = createSharedArray()
  const control = new Int32Array(new SharedArrayBuffer(12))
  await open(array, 2, 100)
  const workers = Array.from({ length: 4 }, () => startWorker({ role: 'race', array, threshold: 2, timeout: 100, control }))
  await Promise.all(workers.map(({ next }) => next())) // every worker is ready
  await sleep(150) // past the reset timeout
  Atomics.store(control, 0, 1)
  Atomics.notify(control, 0)
  const outcomes = workers.map(({ next }) => next())
  const settled = await Promise.race([
    Promise.all(outcomes),
    (async () => {
      // Three callers are refused at once; the probe holds until released.
      while (Atomics.load(control, 1) === 0) await sleep(5)
      await sleep(100)
      Atomics.store(control, 2, 1)
      return Promise.all(outcomes)
    })(),
  ])
  assert.equal(Atomics.load(control, 1), 1, 'one task ran in all four workers')
  assert.equal(settled.filter((o) => o.ran).length, 1)
  assert.deepEqual(settled.find((o) => o.ran), { ran: true, value: 'probed' })
  assert.ok(settled.filter((o) => !o.ran).every((o) => o.error === 'Circuit is open'))
  assert.deepEqual(await Promise.all(workers.map(({ exited }) => exited)), [0, 0, 0, 0])
  assert.equal(new CircuitBreaker(array, 2, 100).getState(), 'CLOSED')
})

test('a worker building a breaker over a live buffer sees its state and does not reset it', async () => {
  const array = createSharedArray()
  const breaker = await open(array, 2, 60000)
  await breaker.execute(async () => 1).catch(() => {})
  const seen = await run({ role: 'look', array, threshold: 2 })
  assert.deepEqual(seen, { state: 'OPEN', requests: 3 })
  assert.equal(breaker.getState(), 'OPEN')
})

test('a worker terminated while holding the probe does not wedge the breaker', async () => {
  const array = createSharedArray()
  const breaker = await open(array, 1, 100)
  await sleep(150)
  const { worker, next } = startWorker({ role: 'hangingProbe', array, threshold: 1, timeout: 100 })
  assert.deepEqual(await next(), { probing: true })
  const refused = await breaker.execute(async () => 'not me').catch((e) => e)
  assert.ok(isCircuitOpenError(refused), 'the probe is in flight in the worker')
  await worker.terminate()
  await sleep(150) // the dead probe's lease runs out
  assert.equal(await breaker.execute(async () => 'recovered'), 'recovered')
  assert.equal(breaker.getState(), 'CLOSED')
})

test('a worker whose breaker is open exits by itself', async () => {
  const array = createSharedArray()
  const { next, exited } = startWorker({ role: 'openAndEnd', array, threshold: 2, timeout: 600000 })
  assert.deepEqual(await next(), { state: 'OPEN' })
  const code = await Promise.race([exited, deadline(20000, 'still running after 20 s')])
  assert.equal(code, 0)
})

test('a process whose breaker is open exits promptly: nothing keeps it alive', () => {
  const script = `
    import CircuitBreaker, { createSharedArray } from 'shared-circuit-breaker'
    const breaker = new CircuitBreaker(createSharedArray(), 1, 600000)
    await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})
    await breaker.execute(async () => 1).catch(() => {})
    console.log(breaker.getState())
  `
  const started = Date.now()
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: PACKAGE_ROOT,
    encoding: 'utf8',
    timeout: 60000,
  })
  const elapsed = Date.now() - started
  assert.equal(child.stderr, '')
  assert.equal(child.stdout.trim(), 'OPEN')
  assert.equal(child.status, 0)
  // Ten minutes of reset timeout; a process kept alive by it would be killed
  // at 60 s. Startup on a loaded machine stays far below 20 s.
  assert.ok(elapsed < 20000, `took ${elapsed} ms`)
})
