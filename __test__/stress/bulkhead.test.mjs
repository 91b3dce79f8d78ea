// The bulkhead and the rate limiter under real workers and processes: a
// mock dependency counts the calls in flight and must never see more than
// maxConcurrent; permits held by a terminated worker or a SIGKILLed
// process come back after the lease; a rate limit holds over 10 s across
// 4 workers.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { Bulkhead, RateLimiter } from 'shared-circuit-breaker'
import { startWorker } from '../support/messages.mjs'
import { LIMITS_WORKER as WORKER, countingServer, startProcess, tempDir } from '../support/limits.mjs'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

test('six workers on one bulkhead of 3: the dependency never sees more than 3 calls at once', async () => {
  const options = { maxConcurrent: 3, maxQueue: 6, queueTimeout: 20000 }
  const array = Bulkhead.createSharedArray(options)
  const inFlight = new Int32Array(new SharedArrayBuffer(8))
  const workers = Array.from({ length: 6 }, () =>
    startWorker(WORKER, { role: 'calls', array, options, inFlight, calls: 60, lanes: 3, taskMs: 2 }),
  )
  const results = await Promise.all(workers.map((w) => w.next()))
  const ran = results.reduce((sum, r) => sum + r.ran, 0)
  const full = results.reduce((sum, r) => sum + r.full, 0)
  assert.equal(ran + full, 360)
  assert.ok(ran > 0)
  assert.ok(Atomics.load(inFlight, 1) <= 3, `${Atomics.load(inFlight, 1)} in flight at once`)
  assert.equal(Atomics.load(inFlight, 1), 3, 'the bulkhead was full at times')
  const stats = new Bulkhead(array, options).getStats()
  assert.equal(stats.inUse, 0)
  assert.equal(stats.queued, 0)
  assert.equal(stats.rejected, full)
})

test('three processes over one bulkhead file: an http dependency never sees more than 3 requests at once', async (t) => {
  const { url, counts } = await countingServer(t)
  const path = join(tempDir(t), 'bulkhead')
  const options = { maxConcurrent: 3, maxQueue: 12, queueTimeout: 30000 }
  const children = Array.from({ length: 3 }, () =>
    startProcess({ role: 'http', path, options, url, calls: 40, lanes: 4 }),
  )
  const results = await Promise.all(children.map((c) => c.next()))
  for (const c of children) assert.equal(await c.exited, 0)
  const ran = results.reduce((sum, r) => sum + r.ran, 0)
  assert.equal(ran + results.reduce((sum, r) => sum + r.full, 0), 120)
  assert.equal(counts.served, ran)
  assert.ok(counts.most <= 3, `${counts.most} requests in flight at once`)
  assert.equal(counts.most, 3, 'the bulkhead was full at times')
})

test('permits held by terminated workers come back after the lease', async () => {
  const options = { maxConcurrent: 2, lease: 200 }
  const array = Bulkhead.createSharedArray(options)
  const holders = [startWorker(WORKER, { role: 'hold', array, options }), startWorker(WORKER, { role: 'hold', array, options })]
  for (const h of holders) assert.equal(await h.next(), 'held')
  await Promise.all(holders.map((h) => h.worker.terminate()))
  const b = new Bulkhead(array, options)
  assert.equal(b.tryAcquire(), null) // full: the lease starts counting
  await sleep(100)
  assert.equal(b.tryAcquire(), null, 'not within the lease')
  await sleep(150)
  const first = b.tryAcquire()
  const second = b.tryAcquire()
  assert.ok(first !== null && second !== null, 'both permits came back')
  assert.equal(b.tryAcquire(), null, 'each came back once')
  assert.equal(b.getStats().reclaimed, 2)
  first.release()
  second.release()
})

test('a permit held by a SIGKILLed process comes back after the lease, and a waiter gets it', async (t) => {
  const path = join(tempDir(t), 'bulkhead')
  const options = { maxConcurrent: 1, maxQueue: 1, lease: 300, queueTimeout: 5000 }
  const holder = startProcess({ role: 'hold', path, options })
  assert.equal(await holder.next(), 'held')
  holder.child.kill('SIGKILL')
  assert.equal(await holder.exited, 'SIGKILL')
  const b = Bulkhead.fromFile(path, options)
  assert.equal(b.getStats().inUse, 1)
  const started = performance.now()
  // Queued: it polls the file, and the lease counts from its first look.
  const ranAfter = await b.execute(() => performance.now() - started)
  assert.ok(ranAfter >= 290, `ran after ${ranAfter} ms, within the lease`)
  assert.ok(ranAfter < 3000, `ran after ${ranAfter} ms`)
  assert.equal(b.getStats().reclaimed, 1)
  assert.equal(b.getStats().inUse, 0)
})

test('a rate limit of 50 per second holds over 10 s across 4 workers', async () => {
  const options = { limit: 50, interval: 1000, burst: 5 }
  const array = RateLimiter.createSharedArray()
  const ms = 10000
  const workers = Array.from({ length: 4 }, () => startWorker(WORKER, { role: 'rate', array, options, ms }))
  const results = await Promise.all(workers.map((w) => w.next()))
  const admitted = results.flatMap((r) => r.admitted).sort((a, b) => a - b)
  // Between the first and the last admission (the workers started a little
  // apart, so the run is a little over 10 s), burst + span / 20 ms at most;
  // limit + burst - 1 in any second (+1: the times are read just after
  // admission, up to a ms apart).
  const span = admitted.at(-1) - admitted[0]
  assert.ok(span >= ms - 100, `admissions spread over ${span} ms`)
  const bound = 5 + Math.floor(span / 20) + 1
  assert.ok(admitted.length <= bound, `${admitted.length} admitted in ${span} ms, at most ${bound} allowed`)
  assert.ok(admitted.length >= 450, `${admitted.length} admitted in 10 s: the workers kept up`)
  let worst = 0
  for (let i = 0, j = 0; i < admitted.length; i++) {
    while (admitted[i] - admitted[j] >= 1000) j++
    worst = Math.max(worst, i - j + 1)
  }
  assert.ok(worst <= 50 + 5 - 1 + 1, `${worst} admitted within one second`)
  for (const r of results) assert.ok(r.admitted.length > 0, 'every worker got calls through')
})
