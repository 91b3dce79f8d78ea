// One contender's memory, in a process of its own started with --expose-gc
// and a 128 MB young generation (--min/--max-semi-space-size=128). Prints one
// JSON line. Run by run.mjs: node <flags> bench/child-memory.mjs '<json>'
//
// Bytes allocated per call. Node 20's v8.getHeapStatistics() has no
// total_allocated_bytes (used when a newer Node has it), so: gc(), read
// used_heap_size, make K calls, read it again. With no GC inside the window,
// the growth is what those K calls allocated on the V8 heap (young and old
// space alike). A window in which a GC ran (seen by a PerformanceObserver of
// 'gc' entries) is thrown away. Median of the kept windows, per call. What
// this cannot see: memory the native side mallocs (Rust), which is not on
// the V8 heap. Each figure covers one whole loop iteration: the call, the
// caller's await and what the task itself allocates, so it is given next to
// the same loop around a bare task (the baseline).
//
// Bytes per instance: gc() twice, memoryUsage(), build `count` instances kept
// in a preallocated array, gc() twice, memoryUsage() again; the delta of
// heapUsed, external and arrayBuffers over count. In Node 20 `external`
// already includes ordinary ArrayBuffers but not SharedArrayBuffers, which
// only `arrayBuffers` counts, so the total is heapUsed + max(external,
// arrayBuffers): exact unless both SharedArrayBuffers and other external
// memory grew. RSS is given too: it also sees
// native (Rust) allocations, with page-level noise.

import v8 from 'node:v8'
import { PerformanceObserver, performance } from 'node:perf_hooks'
import { loadContender } from './lib/contenders.mjs'
import { baselineCase, compileLoop, timeCase, median } from './lib/loops.mjs'
import { TASKS } from './lib/tasks.mjs'

const { contender, count, windows, callsPerWindow: k, budgetMs } = JSON.parse(process.argv[2])
if (typeof gc !== 'function') throw new Error('run with --expose-gc')
const out = { contender, perCall: {}, perInstance: [], problems: [] }

const gcTimes = []
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcTimes.push([entry.startTime, entry.startTime + entry.duration])
})
observer.observe({ entryTypes: ['gc'] })
const settle = () => new Promise((resolve) => setTimeout(resolve, 5))
const hasTotalAllocated = 'total_allocated_bytes' in v8.getHeapStatistics()
out.allocationMethod = hasTotalAllocated
  ? 'v8.getHeapStatistics().total_allocated_bytes delta'
  : 'used_heap_size delta over a GC-free window (gc() before, 128 MB semi-space)'
const heapMark = () => {
  const stats = v8.getHeapStatistics()
  return hasTotalAllocated ? stats.total_allocated_bytes : stats.used_heap_size
}

async function bytesPerCall(kase, k) {
  const kept = []
  let discarded = 0
  let timedOut = false
  const warm = 3
  for (let attempt = 0; kept.length < windows && attempt < windows * 3 + warm; attempt++) {
    gc()
    await settle()
    const from = performance.now()
    const before = heapMark()
    const result = await timeCase(kase, k, budgetMs * 1e6)
    const after = heapMark()
    const to = performance.now()
    for (const problem of result.problems) out.problems.push(`${kase.name}: ${problem}`)
    if (result.timedOut) {
      timedOut = true
      break
    }
    await settle()
    if (attempt < warm) continue
    if (!hasTotalAllocated && gcTimes.some(([start, end]) => end >= from && start <= to)) {
      discarded++
      continue
    }
    kept.push((after - before) / k)
  }
  if (timedOut) return { timeout: `${k} calls did not finish within ${budgetMs} ms` }
  return { bytes: kept.length ? median(kept) : null, windows: kept.length, discarded }
}

const contenderModule = await loadContender(contender)
out.callsPerWindow = k
for (const name of ['success', 'reject', 'rejectPreallocated']) {
  const kase = { name: `baseline ${name}`, ...baselineCase(name, TASKS, 'seq') }
  out.perCall[`baseline-${name}`] = await bytesPerCall(kase, k)
}
for (const [key, kind, taskName] of [
  ['closed', 'closed', 'task'],
  ['failure', 'failure', 'failing'],
  ['open', 'open', 'task'],
  ['openFallback', 'openFallback', 'task'],
]) {
  const setup = await contenderModule.setup(kind, taskName)
  if (setup.na) {
    out.perCall[key] = { na: setup.na }
    continue
  }
  const kase = { name: key, ...setup, loop: compileLoop(setup.expr, setup.outcome, 'seq') }
  out.perCall[key] = await bytesPerCall(kase, k)
}

// Instances last: opossum's default instances each start interval timers.
for (const variant of contenderModule.instances) {
  const make = variant.prepare()
  const keep = new Array(count).fill(null)
  make() // load and compile what the first instance needs outside the window
  gc()
  gc()
  const before = process.memoryUsage()
  for (let i = 0; i < count; i++) keep[i] = make()
  gc()
  gc()
  const after = process.memoryUsage()
  const per = (field) => (after[field] - before[field]) / count
  const external = per('external')
  const arrayBuffers = per('arrayBuffers')
  out.perInstance.push({
    name: variant.name,
    label: variant.label,
    count,
    heapUsed: per('heapUsed'),
    external,
    arrayBuffers,
    total: per('heapUsed') + Math.max(external, arrayBuffers),
    rss: per('rss'),
    kept: keep.length,
  })
}
observer.disconnect()
process.stdout.write(`${JSON.stringify(out)}\n`)
process.exit(0)
