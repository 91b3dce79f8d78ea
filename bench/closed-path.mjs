// A quick look at what `execute` costs on the CLOSED success path next to a
// bare `await task()`, in one process, medians of interleaved repetitions.
// (The full comparison with opossum and cockatiel is future work: see README.)
import CircuitBreaker, { createSharedArray } from 'circuit-breaker-js'
import os from 'node:os'

const N = Number(process.env.CALLS ?? 500_000)
const REPS = Number(process.env.REPS ?? 7)
const task = async () => 1
const failing = async () => {
  throw new Error('boom')
}
const breaker = new CircuitBreaker(createSharedArray(), 2 ** 31 - 1, 1000)
const open = new CircuitBreaker(createSharedArray(), 1, 3_600_000)
await open.execute(failing).catch(() => {})

const cases = {
  'await task()': async () => {
    for (let i = 0; i < N; i++) await task()
  },
  'await breaker.execute(task)': async () => {
    for (let i = 0; i < N; i++) await breaker.execute(task)
  },
  'await rejecting task() (new Error each call)': async () => {
    for (let i = 0; i < N; i++) await failing().catch(() => {})
  },
  'failure under threshold': async () => {
    for (let i = 0; i < N; i++) await breaker.execute(failing).catch(() => {})
  },
  'OPEN fast-fail (caller catches)': async () => {
    for (let i = 0; i < N; i++) await open.execute(task).catch(() => {})
  },
}
const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]))
for (const run of Object.values(cases)) await run() // warm-up
for (let rep = 0; rep < REPS; rep++) {
  for (const [name, run] of Object.entries(cases)) {
    const start = process.hrtime.bigint()
    await run()
    samples[name].push(Number(process.hrtime.bigint() - start) / N)
  }
}
const median = (values) => values.sort((a, b) => a - b)[values.length >> 1]
console.log(`node ${process.version}, ${os.cpus()[0].model}, ${N} calls x ${REPS} reps, median ns/call`)
for (const [name, values] of Object.entries(samples)) console.log(`${median(values).toFixed(1).padStart(9)}  ${name}`)
if (breaker.getTotalRequestCount() !== (REPS + 1) * 2 * N) throw new Error('not every call was counted')
