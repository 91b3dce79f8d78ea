// One contender, the worker-thread scenario, in a process of its own: two
// workers, each pinned to its own CPU, run the CLOSED success path. Phases
// with one active worker and with both are interleaved, baseline (a bare
// `await task()`) and contender alike, so drift hits all four. Peers get one
// breaker per worker; circuit-breaker-js gets ONE breaker state shared by
// both workers (one SharedArrayBuffer, passed in workerData).
// Prints one JSON line. Run by run.mjs: node bench/child-threads.mjs '<json>'

import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'
import os from 'node:os'
import { BULKHEAD_OPTIONS } from './lib/contenders.mjs'

const { contender, calls, reps, warmups } = JSON.parse(process.argv[2])
const WORKERS = 2
const cpus = os.availableParallelism?.() ?? os.cpus().length

const phases = []
const kinds = [
  { role: 'baseline', active: 1 },
  { role: 'contender', active: 1 },
  { role: 'baseline', active: 2 },
  { role: 'contender', active: 2 },
]
for (let w = 0; w < warmups; w++) for (const kind of kinds) phases.push({ ...kind, rep: -1 })
for (let rep = 0; rep < reps; rep++) {
  for (let i = 0; i < kinds.length; i++) phases.push({ ...kinds[(rep + i) % kinds.length], rep })
}

const control = new Int32Array(new SharedArrayBuffer(4))
const require = createRequire(import.meta.url)
const ours = contender === 'ours' || contender === 'ours-bulkhead' ? require('..') : null
const shared = ours ? ours.createSharedArray() : null
// ours-bulkhead: ONE bulkhead shared by both workers too, around the shared breaker.
const sharedBulkhead = contender === 'ours-bulkhead' ? ours.Bulkhead.createSharedArray(BULKHEAD_OPTIONS) : undefined

const out = { contender, calls, reps, workers: WORKERS, samples: {}, problems: [], pinning: [] }
for (const active of [1, 2]) for (const role of ['baseline', 'contender']) out.samples[`${role}-${active}`] = []

const workers = []
const inbox = []
let wake = null
const receive = async () => {
  while (inbox.length === 0) await new Promise((resolve) => (wake = resolve))
  return inbox.shift()
}
const exited = []
for (let index = 0; index < WORKERS; index++) {
  const worker = new Worker(new URL('./lib/thread-worker.mjs', import.meta.url), {
    workerData: { contender, index, cpu: index % cpus, calls, phases, control, shared, sharedBulkhead },
  })
  worker.on('message', (message) => {
    inbox.push({ index, ...message })
    wake?.()
  })
  worker.on('error', (error) => {
    inbox.push({ index, type: 'error', message: String(error?.stack ?? error) })
    wake?.()
  })
  exited.push(new Promise((resolve) => worker.once('exit', resolve)))
  workers.push(worker)
}

// Messages from the two workers interleave freely (a worker that sat a
// phase out may already be 'ready' for the next one), so they are filed by
// phase and the parent waits for the count it needs.
const readyFor = new Map()
const doneFor = new Map()
let finished = 0
let contenderCalls = 0
async function until(condition) {
  while (!condition()) {
    const message = await receive()
    if (message.type === 'error') throw new Error(`worker ${message.index}: ${message.message}`)
    if (message.type === 'ready') {
      readyFor.set(message.k, (readyFor.get(message.k) ?? 0) + 1)
      out.pinning[message.index] ??= message.pinning
    } else if (message.type === 'done') {
      if (!doneFor.has(message.k)) doneFor.set(message.k, [])
      doneFor.get(message.k).push(message)
    } else if (message.type === 'finished') {
      finished++
    }
  }
}
try {
  for (let k = 0; k < phases.length; k++) {
    const phase = phases[k]
    await until(() => readyFor.get(k) === WORKERS)
    Atomics.store(control, 0, k + 1)
    Atomics.notify(control, 0)
    await until(() => doneFor.get(k)?.length === WORKERS)
    const elapsed = []
    for (const message of doneFor.get(k)) {
      if (message.skipped) continue
      elapsed.push(message.ns)
      const what = phase.rep < 0 ? 'warm-up' : `rep ${phase.rep + 1}`
      for (const problem of message.problems) {
        out.problems.push(`${what}, ${phase.role}, ${phase.active} worker(s), worker ${message.index}: ${problem}`)
      }
    }
    if (elapsed.length !== phase.active) out.problems.push(`phase ${k}: ${elapsed.length} workers ran, expected ${phase.active}`)
    if (phase.role === 'contender') contenderCalls += calls * phase.active
    if (phase.rep >= 0) {
      // Total calls per second: every active worker's calls over the slowest one's time.
      out.samples[`${phase.role}-${phase.active}`].push((calls * phase.active) / (Math.max(...elapsed) / 1e9))
    }
  }
  await until(() => finished === WORKERS)
} catch (error) {
  out.problems.push(String(error.message ?? error))
  for (const worker of workers) worker.terminate()
}

const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), 10_000).unref())
if ((await Promise.race([Promise.all(exited), timeout])) === 'timeout') {
  out.problems.push('a worker did not exit on its own within 10 s of its last call')
  for (const worker of workers) worker.terminate()
}
if (ours) {
  // One shared state: every success of both workers is in it.
  const reader = new ours.CircuitBreaker(shared, { failureThreshold: 5, resetTimeout: 30000 })
  const successes = reader.getSuccessCount()
  out.sharedSuccesses = successes
  if (successes !== contenderCalls) out.problems.push(`shared success count ${successes}, expected ${contenderCalls}`)
  if (reader.getState() !== 'CLOSED') out.problems.push(`shared breaker is ${reader.getState()}`)
}
if (sharedBulkhead) {
  const { inUse, rejected } = new ours.Bulkhead(sharedBulkhead, BULKHEAD_OPTIONS).getStats()
  if (inUse !== 0 || rejected !== 0) out.problems.push(`shared bulkhead: ${inUse} permits held, ${rejected} calls refused`)
}
process.stdout.write(`${JSON.stringify(out)}\n`)
process.exit(0)
