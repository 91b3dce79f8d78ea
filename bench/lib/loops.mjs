// The timed loops. Each loop is compiled from source for one case only, so
// every case gets its own function and its own type feedback: the baseline's
// call site never sees the contender's calls and the other way round (a loop
// shared by both would turn polymorphic and slow the baseline down).

import { counts } from './tasks.mjs'

export const LANES = 64

/** Calls a loop of this shape really makes for a requested `n`. */
export function effectiveCalls(n, shape) {
  return shape === 'par' ? Math.ceil(n / LANES) * LANES : n
}

/**
 * `expr` is the call, as source, over the loop's parameters `b` and `task`.
 * 'value' loops count calls that resolved to `expect`; 'reject' loops count
 * calls that rejected with an error passing `check` (the caller catches).
 * 'seq' awaits one call at a time; 'par' runs LANES such loops at once, so
 * LANES calls are in flight.
 */
export function compileLoop(expr, outcome, shape) {
  const body =
    outcome === 'value'
      ? `if ((await ${expr}) === expect) ok++`
      : `try { await ${expr} } catch (error) { if (check(error)) ok++ }`
  const source =
    shape === 'seq'
      ? `return async function seq(b, task, n, expect, check) {
           let ok = 0
           for (let i = 0; i < n; i++) { ${body} }
           return ok
         }`
      : `return async function par(b, task, n, expect, check) {
           const lane = async (m) => {
             let ok = 0
             for (let i = 0; i < m; i++) { ${body} }
             return ok
           }
           const lanes = []
           for (let l = 0; l < ${LANES}; l++) lanes.push(lane(n / ${LANES}))
           let ok = 0
           for (const done of await Promise.all(lanes)) ok += done
           return ok
         }`
  const loop = new Function(source)()
  loop.maxChunk = CHUNK[shape]
  return loop
}

// Calls are made in chunks, so a case that cannot finish within its time
// budget is stopped instead of holding the run for ever (opossum's default
// failure path sorts every latency of its rolling window on each failure,
// so its cost per call grows with the calls made). Chunks start at 256 calls
// and double up to CHUNK: one extra await per 4,096 calls (16,384 with 64 in
// flight), the same for every case.
const FIRST_CHUNK = 256
const CHUNK = { seq: 4096, par: 16384 }

/**
 * Runs `kase` (a case from contenders.mjs, or a baseline, plus its compiled
 * `loop`) for n calls, timed with process.hrtime.bigint() (the checks
 * before and after, `workCheck` included, are outside the timing). Returns the
 * elapsed ns, the calls made, whether the budget ran out first, and the
 * problems found (empty when every call did its work).
 */
export async function timeCase(kase, n, budgetNs = Infinity) {
  const before = kase.stateProblem()
  // A variant's own proof that its feature did its work (see contenders.mjs).
  const workDone = kase.workCheck ? kase.workCheck() : null
  const runs = counts.runs
  const fallbacks = counts.fallbacks
  let ok = 0
  let done = 0
  let ns = 0
  const start = process.hrtime.bigint()
  let size = FIRST_CHUNK
  while (done < n) {
    const chunk = Math.min(size, n - done)
    size = Math.min(size * 2, kase.loop.maxChunk)
    ok += await kase.loop(kase.b, kase.task, chunk, kase.expect, kase.check)
    done += chunk
    ns = Number(process.hrtime.bigint() - start)
    if (done < n && ns > budgetNs) break
  }
  const problems = []
  if (before) problems.push(`before: ${before}`)
  const after = kase.stateProblem()
  if (after) problems.push(`after: ${after}`)
  const work = workDone ? workDone(done) : null
  if (work) problems.push(work)
  const ran = counts.runs - runs
  const fell = counts.fallbacks - fallbacks
  if (ok !== done) {
    problems.push(`${ok} of ${done} calls ${kase.outcome === 'value' ? 'gave the expected value' : 'rejected as expected'}`)
  }
  if (ran !== done * kase.runsPerCall) problems.push(`task ran ${ran} times, expected ${done * kase.runsPerCall}`)
  if (fell !== done * kase.fallbacksPerCall) {
    problems.push(`fallback ran ${fell} times, expected ${done * kase.fallbacksPerCall}`)
  }
  return { ns, done, timedOut: done < n, problems }
}

/** The baselines, as cases: a bare `await task()` of each kind. */
export const BASELINES = {
  success: { label: 'await task()', taskName: 'task', outcome: 'value', expect: 1, check: null },
  reject: {
    label: 'await rejecting task (new Error per call)',
    taskName: 'failing',
    outcome: 'reject',
    expect: null,
    check: (e) => e instanceof Error && e.message === 'boom',
  },
  rejectPreallocated: {
    label: 'await rejecting task (one preallocated Error)',
    taskName: 'failingPreallocated',
    outcome: 'reject',
    expect: null,
    check: (e) => e instanceof Error && e.message === 'boom',
  },
}

export function baselineCase(name, tasks, shape) {
  const def = BASELINES[name]
  return {
    b: null,
    expr: 'task()',
    task: tasks[def.taskName],
    outcome: def.outcome,
    expect: def.expect,
    check: def.check,
    runsPerCall: 1,
    fallbacksPerCall: 0,
    stateProblem: () => null,
    loop: compileLoop('task()', def.outcome, shape),
  }
}

export function median(values) {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
