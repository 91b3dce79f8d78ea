// Faults a breaker must survive: a probe whose worker is terminated, worker
// threads that come and go, a process that simply ends, a breaker dropped
// while its probe is pending. The long versions are in stress/faults.test.mjs.
//
// TODO: the case of a process or worker with event listeners registered on a
// breaker (they must not keep it alive either) will be added with the events
// issue; breakers have no listeners yet.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'
import CircuitBreaker, { createSharedArray, isCircuitOpenError } from 'shared-circuit-breaker'
import { startWorker as startFixture } from './support/messages.mjs'

const WORKER = new URL('./fixtures/fault-worker.mjs', import.meta.url)
const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const startWorker = (workerData) => startFixture(WORKER, workerData)

async function until(condition, what, ms = 10000) {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`waited ${ms} ms for ${what}`)
    await sleep(5)
  }
}

test('a worker terminated while its probe is pending: after the lease, exactly one other caller probes', async (t) => {
  const TIMEOUT = 1000
  const array = createSharedArray()
  const breaker = new CircuitBreaker(array, 1, TIMEOUT)
  await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})
  await until(() => breaker.getState() === 'HALF_OPEN', 'the reset timeout')

  const prober = startWorker({ role: 'hangingProbe', array, timeout: TIMEOUT })
  const { probing, at } = await prober.next()
  assert.equal(probing, true, 'the worker became the probe')
  if (Date.now() - at < TIMEOUT - 300) {
    // Well inside the lease: everyone else is refused.
    let ran = false
    const refused = await breaker.execute(async () => (ran = true)).catch((error) => error)
    assert.ok(isCircuitOpenError(refused), 'refused while the probe is in flight')
    assert.equal(ran, false)
  } else {
    t.diagnostic('the machine was too slow to check refusal inside the lease')
  }
  await prober.worker.terminate()

  // Four workers call at once, after the dead probe's lease has run out.
  const control = new Int32Array(new SharedArrayBuffer(12))
  const racers = Array.from({ length: 4 }, () => startWorker({ role: 'racer', array, timeout: TIMEOUT, control }))
  await Promise.all(racers.map(({ next }) => next()))
  await sleep(Math.max(0, at + TIMEOUT + 50 - Date.now()))
  Atomics.store(control, 0, 1)
  Atomics.notify(control, 0)
  const outcomes = []
  const collecting = Promise.all(racers.map(({ next }) => next().then((outcome) => outcomes.push(outcome))))
  // Three are refused at once while the new probe holds; a second probe
  // would show up in control[1].
  await until(() => outcomes.length === 3 || Atomics.load(control, 1) > 1, 'three refusals')
  Atomics.store(control, 2, 1)
  await collecting
  assert.equal(Atomics.load(control, 1), 1, 'one task ran in the four workers')
  assert.deepEqual(outcomes.filter((o) => o.ran), [{ ran: true, value: 'probed' }])
  assert.ok(outcomes.filter((o) => !o.ran).every((o) => o.open), JSON.stringify(outcomes))
  assert.deepEqual(await Promise.all(racers.map(({ exited }) => exited)), [0, 0, 0, 0])
  assert.equal(breaker.getState(), 'CLOSED')
})

test('20 workers that load the addon, use a shared breaker and leave at once: no crash, exact counts', async () => {
  const array = createSharedArray()
  const exits = ['natural', 'process.exit', 'linger']
  const workers = Array.from({ length: 20 }, (_, i) =>
    startWorker({ role: 'churn', array, threshold: 2, timeout: 60000, exit: exits[i % 3] }),
  )
  const reports = await Promise.all(workers.map(({ next }) => next()))
  await Promise.all(workers.filter((_, i) => exits[i % 3] === 'linger').map(({ worker }) => worker.terminate()))
  const codes = await Promise.all(workers.map(({ exited }) => exited))
  assert.deepEqual(
    codes.map((code, i) => (exits[i % 3] === 'linger' ? 'terminated' : code)),
    codes.map((_, i) => (exits[i % 3] === 'linger' ? 'terminated' : 0)),
  )
  const counted = reports.reduce((total, { counted }) => total + counted, 0)
  const breaker = new CircuitBreaker(array, 2, 60000)
  assert.equal(breaker.getTotalRequestCount(), counted)
  // Whether the interleaved failures ever made a run of two is up to the scheduler.
  assert.ok(['CLOSED', 'OPEN'].includes(breaker.getState()))
})

test('a process that creates breakers, opens them and ends its work exits at once', async (t) => {
  // 100 breakers opened with a 10-minute reset timeout, each refusing a call;
  // one half-open with a probe that never settles; a worker thread that
  // opens a breaker and ends. Nothing may keep the process alive.
  const script = `
    import { Worker } from 'node:worker_threads'
    import { once } from 'node:events'
    import CircuitBreaker, { createSharedArray } from 'shared-circuit-breaker'
    const shared = createSharedArray()
    const breakers = []
    for (let i = 0; i < 100; i++) {
      const breaker = new CircuitBreaker(i % 2 ? createSharedArray() : shared, 1, 600000)
      await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})
      await breaker.execute(async () => 1).catch(() => {})
      breakers.push(breaker)
    }
    const probing = new CircuitBreaker(createSharedArray(), 1, 600000)
    probing.transitionToHalfOpen()
    probing.execute(() => new Promise(() => {}))
    const code = "const { workerData } = require('node:worker_threads');" +
      "const { CircuitBreaker } = require('shared-circuit-breaker');" +
      "const b = new CircuitBreaker(workerData, 1, 600000);" +
      "b.execute(() => Promise.reject(new Error('x'))).catch(() => {})"
    const worker = new Worker(code, { eval: true, workerData: shared, execArgv: [] })
    await once(worker, 'exit')
    console.log('done', breakers.map((b) => b.getState()).filter((s) => s === 'OPEN').length, probing.getState())
  `
  const started = performance.now()
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: PACKAGE_ROOT })
  let stdout = ''
  let stderr = ''
  let doneAt
  child.stdout.on('data', (chunk) => {
    stdout += chunk
    if (doneAt === undefined && stdout.includes('done')) doneAt = performance.now()
  })
  child.stderr.on('data', (chunk) => (stderr += chunk))
  const killer = setTimeout(() => child.kill('SIGKILL'), 60000)
  const [code, signal] = await once(child, 'exit')
  const exitedAt = performance.now()
  clearTimeout(killer)
  t.diagnostic(`child ran ${Math.round(exitedAt - started)} ms; exited ${Math.round(exitedAt - doneAt)} ms after its work ended`)
  assert.equal(stderr, '')
  assert.equal(stdout.trim(), 'done 100 HALF_OPEN')
  assert.deepEqual([code, signal], [0, null])
  assert.ok(exitedAt - doneAt < 5000, `exited ${Math.round(exitedAt - doneAt)} ms after its work ended`)
})

// A breaker that nothing refers to any more, while a call it admitted is
// still pending. The call's result must still be recorded on the breaker's
// own buffer, and must never reach another breaker nor crash the process.
const droppedBreaker = ({ probe, succeed, reuse }) => `
  import CircuitBreaker, { createSharedArray } from 'shared-circuit-breaker'
  const array = createSharedArray()
  let settle
  await (async () => {
    const breaker = new CircuitBreaker(array, 1, 60000)
    if (${probe}) breaker.transitionToHalfOpen()
    breaker.execute(() => new Promise((resolve, reject) => { settle = ${succeed} ? resolve : reject }))
      .catch(() => {})
  })()
  for (let i = 0; i < 10; i++) {
    globalThis.gc()
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  const other = createSharedArray()
  const bystander = ${reuse} ? new CircuitBreaker(other, 1, 60000) : undefined
  settle(new Error('settled late'))
  await new Promise((resolve) => setTimeout(resolve, 10))
  const own = new CircuitBreaker(array, 1, 60000)
  console.log(JSON.stringify({
    state: own.getState(),
    requests: own.getTotalRequestCount(),
    successes: own.getSuccessCount(),
    otherRequests: new CircuitBreaker(other, 1, 60000).getTotalRequestCount(),
  }))
`

const DROPPED = [
  { probe: true, succeed: true, call: 'its probe (which then succeeds)', state: 'CLOSED' },
  { probe: false, succeed: false, call: 'a call (which then fails)', state: 'OPEN' },
  { probe: false, succeed: true, call: 'a call (which then succeeds)', state: 'CLOSED' },
]
for (const { call, state, ...variant } of DROPPED) {
  for (const reuse of [false, true]) {
    const name = `a breaker dropped while ${call} is pending: the result lands on its own buffer${reuse ? ', not on a newer breaker' : ''}`
    test(name, () => {
      const child = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', droppedBreaker({ ...variant, reuse })], {
        cwd: PACKAGE_ROOT,
        encoding: 'utf8',
        timeout: 60000,
      })
      assert.equal(child.stderr, '', 'no crash, no unhandled rejection')
      assert.equal(child.status, 0)
      assert.deepEqual(JSON.parse(child.stdout), {
        state,
        requests: 1,
        successes: variant.succeed ? 1 : 0,
        otherRequests: 0,
      })
    })
  }
}
