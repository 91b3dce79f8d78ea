// The demo behind `npm run demo`: the original README example, then four
// worker threads sharing ONE breaker against a dependency that goes down and
// comes back.
//
// `npm run demo -- --serve [--port=N]`: the four workers go on, against a
// dependency that goes down and comes back on a loop, and the dashboard of
// their breaker is served on a loopback port until Ctrl-C.
import http from 'node:http'
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads'
import CircuitBreaker, { CircuitBreakerKeys, CircuitBreakerStates, createSharedArray, dashboard } from 'shared-circuit-breaker'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

if (!isMainThread) {
  await worker()
} else if (process.argv.includes('--serve')) {
  await serve()
} else {
  await readmeExample()
  await fourWorkers()
}

async function readmeExample() {
  console.log('1. The README example\n')
  const sharedArray = new Int32Array(
    new SharedArrayBuffer(Object.keys(CircuitBreakerKeys).length * Int32Array.BYTES_PER_ELEMENT),
  )
  const openFallback = () => 'served from cache (circuit open)'
  const failureFallback = (error) => `fallback after failure: ${error.message}`
  const breaker = new CircuitBreaker(sharedArray, 5, 30000, openFallback, failureFallback)
  const task = async () => 'fresh data'
  await breaker.execute(task).then((result) => console.log('   execute ->', result))
  for (let i = 0; i < 5; i++) {
    await breaker.execute(async () => {
      throw new Error('connection refused')
    }).then((result) => console.log('   execute ->', result))
  }
  await breaker.execute(task).then((result) => console.log('   execute ->', result))
  console.log('   state:', breaker.getState(), '| Atomics.load(STATE):', Atomics.load(sharedArray, CircuitBreakerKeys.STATE))
  console.log()
}

async function fourWorkers() {
  console.log('2. Four worker threads, one shared breaker (threshold 5, reset timeout 300 ms)\n')
  const array = new Int32Array(new SharedArrayBuffer(Object.keys(CircuitBreakerKeys).length * 4))
  // health[0]: 1 while the dependency is up. health[1]: 1 once workers should stop.
  // health[2]: id of the first worker to see the breaker open.
  const health = new Int32Array(new SharedArrayBuffer(12))
  Atomics.store(health, 0, 1)
  const started = Date.now()
  const workers = [1, 2, 3, 4].map(
    (n) => new Worker(new URL(import.meta.url), { workerData: { n, array, health, started } }),
  )
  const reports = workers.map((w) => new Promise((resolve) => w.once('message', resolve)))
  // The main thread makes no call; it hears every transition the workers make.
  const watcher = new CircuitBreaker(array, 5, 300)
  const workerOf = new Map(workers.map((w, i) => [w.threadId, i + 1]))
  for (const event of ['open', 'halfOpen', 'close']) {
    watcher.on(event, (change) => {
      const by = workerOf.has(change.threadId) ? `worker ${workerOf.get(change.threadId)}` : `thread ${change.threadId}`
      console.log(`   t=${change.time - started} ms  event '${event}' heard in the main thread (made by ${by})`)
    })
  }
  await sleep(200)
  console.log(`   t=${Date.now() - started} ms  dependency goes DOWN`)
  Atomics.store(health, 0, 0)
  await sleep(500)
  console.log(`   t=${Date.now() - started} ms  dependency comes back UP`)
  Atomics.store(health, 0, 1)
  const breaker = watcher
  while (breaker.getState() !== 'CLOSED') await sleep(5)
  await sleep(100)
  watcher.removeAllListeners()
  Atomics.store(health, 1, 1)
  const results = await Promise.all(reports)
  console.log()
  console.log('   worker | calls | ran ok | failed | rejected without running | probes | first to see it open')
  for (const r of results) {
    console.log(
      `   ${String(r.n).padStart(6)} | ${String(r.calls).padStart(5)} | ${String(r.ok).padStart(6)} | ` +
        `${String(r.failed).padStart(6)} | ${String(r.rejected).padStart(24)} | ${String(r.probes.length).padStart(6)} | ` +
        `${Atomics.load(health, 2) === r.n ? 'yes' : ''}`,
    )
  }
  const failures = results.reduce((sum, r) => sum + r.failed, 0)
  const probes = results.flatMap((r) => r.probes.map((p) => ({ ...p, n: r.n })))
  console.log()
  console.log(`   failures seen by all workers together: ${failures} (one shared count: 5 trip it, plus calls already in flight)`)
  for (const p of probes) {
    console.log(`   worker ${p.n} probed at t=${p.at} ms -> ${p.outcome}`)
  }
  console.log(`   total requests in the shared buffer: ${breaker.getTotalRequestCount()}`)
  const stats = breaker.getStats()
  console.log(
    `   getStats(): ${stats.successes} successes, ${stats.failures} failures, ${stats.rejections} rejections, ` +
      `${stats.probes} probes, state ${stats.state}`,
  )
  const expected = results.reduce((sum, r) => sum + r.calls, 0)
  if (breaker.getTotalRequestCount() !== expected) throw new Error('counts do not add up')
}

async function serve() {
  const portArgument = process.argv.find((arg) => arg.startsWith('--port='))
  const port = portArgument === undefined ? 0 : Number(portArgument.slice('--port='.length))
  const options = {
    name: 'inventory service',
    failureThreshold: 5,
    resetTimeout: 300,
    failureRateThreshold: 50,
    windowSize: 50,
    histogram: true,
  }
  const array = createSharedArray(options)
  const health = new Int32Array(new SharedArrayBuffer(12))
  Atomics.store(health, 0, 1)
  const started = Date.now()
  for (const n of [1, 2, 3, 4]) {
    new Worker(new URL(import.meta.url), { workerData: { n, array, health, started, options } }).unref()
  }
  // The main thread makes no call: the dashboard hears the workers' transitions.
  const breaker = new CircuitBreaker(array, options)
  const server = http.createServer(dashboard([breaker], { title: 'circuit-breaker-js demo' }))
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve))
  console.log(`Dashboard: http://127.0.0.1:${server.address().port}/`)
  console.log('Four worker threads share one breaker; the dependency is up 4 s, then down 2 s, again and again. Ctrl-C stops.')
  for (;;) {
    await sleep(4000)
    Atomics.store(health, 0, 0)
    await sleep(2000)
    Atomics.store(health, 0, 1)
  }
}

async function worker() {
  const { n, array, health, started, options } = workerData
  const breaker = options === undefined ? new CircuitBreaker(array, 5, 300) : new CircuitBreaker(array, options)
  const seen = { n, calls: 0, ok: 0, failed: 0, rejected: 0, probes: [] }
  while (Atomics.load(health, 1) === 0) {
    seen.calls++
    let probe
    await breaker
      .execute(async () => {
        // Only the single probe runs while the breaker is HALF_OPEN.
        if (Atomics.load(array, CircuitBreakerKeys.STATE) === CircuitBreakerStates.HALF_OPEN) {
          probe = { at: Date.now() - started }
        }
        await sleep(2)
        if (Atomics.load(health, 0) === 0) throw new Error('dependency down')
        return 'ok'
      })
      .then(
        () => {
          seen.ok++
          if (probe) seen.probes.push({ ...probe, outcome: 'succeeded, breaker closes' })
        },
        (error) => {
          if (error.code === 'ERR_CIRCUIT_OPEN') seen.rejected++
          else seen.failed++
          if (probe) seen.probes.push({ ...probe, outcome: 'failed, breaker opens again' })
          if (breaker.getState() !== 'CLOSED') Atomics.compareExchange(health, 2, 0, n)
        },
      )
    await sleep(3)
  }
  parentPort.postMessage(seen)
}
