// The long fault tests: 200 worker threads that load the addon and leave,
// one after another and twenty at a time, and workers terminated in the
// middle of hammering a shared breaker. The quick ones are in ../faults.test.mjs.
//
// TODO: workers and processes with event listeners on a breaker will be
// added with the events issue; breakers have no listeners yet.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import CircuitBreaker, { CircuitBreakerKeys, createSharedArray } from 'shared-circuit-breaker'

const WORKER = new URL('../fixtures/fault-worker.mjs', import.meta.url)
const EXITS = ['natural', 'process.exit', 'linger']

// One worker: loads the addon, uses a breaker over `array`, leaves as its
// `exit` says ('linger' ones are terminated). Resolves with what it counted.
async function churn(array, index) {
  const exit = EXITS[index % EXITS.length]
  const worker = new Worker(WORKER, { workerData: { role: 'churn', array, threshold: 3, timeout: 60000, exit, calls: 1 + (index % 7) } })
  const exited = once(worker, 'exit').then(([code]) => code)
  const [{ counted }] = await once(worker, 'message')
  if (exit === 'linger') await worker.terminate()
  const code = await exited
  if (exit !== 'linger') assert.equal(code, 0, `worker ${index} (${exit}) exit code`)
  return counted
}

test('200 workers load the addon and leave, one after another and twenty at a time: no crash, exact counts', { timeout: 300_000 }, async (t) => {
  const array = createSharedArray()
  const started = performance.now()
  let counted = 0
  for (let i = 0; i < 100; i++) counted += await churn(array, i)
  const sequentialMs = performance.now() - started
  for (let batch = 0; batch < 5; batch++) {
    const counts = await Promise.all(Array.from({ length: 20 }, (_, i) => churn(array, 100 + batch * 20 + i)))
    counted += counts.reduce((a, b) => a + b, 0)
  }
  const ms = performance.now() - started
  t.diagnostic(`200 workers: ${Math.round(sequentialMs)} ms for 100 one after another, ${Math.round(ms)} ms in all`)
  // This thread still works, and saw every call the workers made.
  const breaker = new CircuitBreaker(array, 3, 60000)
  assert.equal(breaker.getTotalRequestCount(), counted)
  // Whether the interleaved failures ever made a run of three is up to the scheduler.
  assert.ok(['CLOSED', 'OPEN'].includes(breaker.getState()))
  const fresh = new CircuitBreaker(createSharedArray(), 3, 60000)
  assert.equal(await fresh.execute(async () => 'alive'), 'alive')
})

test('workers terminated in the middle of hammering one breaker leave it consistent and usable', { timeout: 120_000 }, async (t) => {
  const array = createSharedArray()
  const wide = new BigInt64Array(array.buffer)
  const sum = (name) => {
    let total = 0n
    for (let k = 0; k < 8; k++) total += Atomics.load(wide, CircuitBreakerKeys[k ? `${name}_${k}` : name] / 2)
    return Number(total)
  }
  const rounds = 10
  for (let round = 0; round < rounds; round++) {
    const workers = Array.from({ length: 4 }, () => new Worker(WORKER, { workerData: { role: 'spin', array, threshold: 5, timeout: 1 } }))
    await Promise.all(workers.map((worker) => once(worker, 'message')))
    // Let them run a little, then cut them off wherever they are.
    await new Promise((resolve) => setTimeout(resolve, 20 + round * 7))
    await Promise.all(workers.map((worker) => worker.terminate()))
    const state = Atomics.load(array, CircuitBreakerKeys.STATE)
    assert.ok([0, 1, 2].includes(state), `state ${state}`)
  }
  const requests = sum('TOTAL_REQUEST_COUNT')
  const parts = sum('SUCCESS_COUNT') + sum('FAILURE_TOTAL') + sum('REJECTION_COUNT')
  t.diagnostic(`${rounds * 4} workers terminated; ${requests} requests counted`)
  assert.ok(requests > 0)
  assert.equal(parts, requests, 'successes + failures + rejections = requests')
  // Still works: a probe may be stranded by a terminated worker, but only
  // for the lease (1 ms here).
  const breaker = new CircuitBreaker(array, 5, 1)
  const deadline = Date.now() + 10000
  let value
  while (value !== 'ok' && Date.now() < deadline) {
    value = await breaker.execute(async () => 'ok').catch(() => undefined)
    if (value !== 'ok') await new Promise((resolve) => setTimeout(resolve, 2))
  }
  assert.equal(value, 'ok')
  assert.equal(breaker.getState(), 'CLOSED')
})
