// The contenders, each set up for each kind of call the benchmark makes.
//
// `setup(kind, taskName, context)` returns either `{ na: reason }` or a case:
//   b        the breaker (or policy) the loop calls through
//   expr     the call the loop makes, as source: `b.execute(task)`, `b.fire()`, ...
//   task     the task function handed to the loop as `task`
//   outcome  'value' (each call must resolve to `expect`) or 'reject' (each
//            call must reject with an error for which `check(error)` is true)
//   runsPerCall, fallbacksPerCall   how often the task / fallback must run per call
//   stateProblem()  null while the breaker is in the state the case needs,
//                   else what is wrong (checked before and after every repetition)
//
// Configurations (the same for the timing, thread and memory runs):
//   CLOSED success  ours { failureThreshold: 5, resetTimeout: 30000 }; opossum
//                   default options (or the lean ones); cockatiel
//                   ConsecutiveBreaker(5), halfOpenAfter 30000.
//   failure under threshold   ours failureThreshold 1e9; opossum
//                   errorThresholdPercentage 100 (an error rate can never be
//                   above 100 %, so it stays closed, yet every failure is
//                   still weighed against the rolling stats); cockatiel
//                   ConsecutiveBreaker(1e9).
//   OPEN            opened by a real failure (threshold 1) with a one-hour
//                   reset timeout; opossum through its public `open()`, which
//                   is what its failure path calls.
//
// Variants of ours (OURS_VARIANTS), run in VARIANT_SCENARIOS only: the CLOSED
// (or failure) configuration above plus one feature each, to show what that
// feature costs per call. Each case also has `workCheck()`: called before a
// run, it returns a function of the calls made that says what is wrong when
// the feature did not do its work in that run (read outside the timing).
//   ours-listeners       on('open'), on('halfOpen'), on('close'), each counting;
//                        setup proves they are delivered (isolate, reset,
//                        transitionToHalfOpen, reset: 1 open, 1 halfOpen, 2 close)
//   ours-timeout         timeout: 10000; setup proves the task gets a live AbortSignal
//   ours-window          failureRateThreshold: 50, count window of 100 calls, over
//                        createSharedArray(options); failure scenario also
//                        minimumCalls: 1e9 (a 100-call window never holds that
//                        many, so the rate never opens it; every failure is
//                        still recorded and the rate read)
//   ours-histogram       histogram: true, over createSharedArray(options)
//   ours-call-listeners  on('success') and on('failure'), each only counting
//   ours-timeout-signal  timeout: 10000, and the task declares a parameter, so it
//                        gets an AbortSignal of its own per call
//   ours-time-window     failureRateThreshold: 50, a 10 s time window
//   ours-all             timeout, the 10 s time window, the histogram and the
//                        success and failure listeners at once
//
// The same features on the peers (PEER_VARIANTS, CLOSED success only), each
// configured the way its users would, over the lean opossum options
// ({ timeout: false, rollingPercentilesEnabled: false, enableSnapshots: false })
// and cockatiel's circuitBreaker(handleAll, ...) with halfOpenAfter 30000:
//   opossum-timeout          timeout: 10000
//   opossum-time-window      its rolling 10 s window (rollingCountTimeout
//                            10000, errorThresholdPercentage 50): opossum
//                            always has it, so this is the lean breaker
//   opossum-histogram        rollingPercentilesEnabled: true (latency percentiles)
//   opossum-call-listeners   on('success') and on('failure'), each counting
//   opossum-all              all four at once
//   cockatiel-timeout        wrap(breaker, timeout(10000, Aggressive)): the
//                            task always gets the timeout's AbortSignal
//   cockatiel-count-window   CountBreaker({ threshold: 0.5, size: 100 })
//   cockatiel-time-window    SamplingBreaker({ threshold: 0.5, duration: 10000 })
//   cockatiel-call-listeners onSuccess and onFailure, each counting
//   cockatiel-all            timeout, time window and listeners (it has no histogram)

import { createRequire } from 'node:module'
import fs from 'node:fs'
import { fileURLToPath } from 'node:url'
import { TASKS, openFallback, FALLBACK_VALUE, failing } from './tasks.mjs'

const require = createRequire(import.meta.url)
const ROOT = new URL('../../', import.meta.url)
const HOUR = 3_600_000
const HUGE_THRESHOLD = 1e9

function version(pkg) {
  try {
    return JSON.parse(fs.readFileSync(new URL(`node_modules/${pkg}/package.json`, ROOT), 'utf8')).version
  } catch {
    return '?'
  }
}

export const OURS_VARIANTS = [
  'ours-listeners',
  'ours-timeout',
  'ours-timeout-signal',
  'ours-window',
  'ours-time-window',
  'ours-histogram',
  'ours-call-listeners',
  'ours-all',
  'ours-max-concurrent',
]
export const PEER_VARIANTS = [
  'opossum-timeout',
  'opossum-time-window',
  'opossum-histogram',
  'opossum-call-listeners',
  'opossum-all',
  'cockatiel-timeout',
  'cockatiel-count-window',
  'cockatiel-time-window',
  'cockatiel-call-listeners',
  'cockatiel-all',
]
// A bulkhead on top of the CLOSED path: ours (shared by every thread) and
// cockatiel's (in-process), each around its own library's breaker. They
// run where the variants run, and ours-bulkhead in the threads scenario too.
export const BULKHEAD_VARIANTS = ['ours-bulkhead', 'cockatiel-bulkhead']
/** What a bulkhead variant's cost is measured against. */
export const VARIANT_REFERENCE = { 'cockatiel-bulkhead': 'cockatiel' }
export const THREAD_VARIANTS = ['ours-bulkhead']
export const BULKHEAD_OPTIONS = { maxConcurrent: 64 }
export const CONTENDERS = ['bare', 'ours', 'opossum', 'opossum-lean', 'cockatiel', ...OURS_VARIANTS, ...BULKHEAD_VARIANTS, ...PEER_VARIANTS]
export const PEERS = ['opossum', 'opossum-lean', 'cockatiel']
/** The timing scenarios the variants of ours run in (they sit out the others, threads and memory). */
export const VARIANT_SCENARIOS = ['closed-seq', 'failure']
export const isVariant = (name) => OURS_VARIANTS.includes(name) || BULKHEAD_VARIANTS.includes(name) || PEER_VARIANTS.includes(name)
export const isPeerVariant = (name) => PEER_VARIANTS.includes(name)

/**
 * The features compared side by side: for each, the contender of each
 * library configured with it (undefined: that library has no such feature).
 */
export const FEATURE_ROWS = [
  { feature: 'timeout (10 s, never fires)', ours: 'ours-timeout', opossum: 'opossum-timeout', cockatiel: 'cockatiel-timeout' },
  { feature: 'timeout, the task takes the AbortSignal', ours: 'ours-timeout-signal', opossum: undefined, cockatiel: 'cockatiel-timeout' },
  { feature: 'failure-rate count window (100 calls)', ours: 'ours-window', opossum: undefined, cockatiel: 'cockatiel-count-window' },
  { feature: 'failure-rate time window (10 s)', ours: 'ours-time-window', opossum: 'opossum-time-window', cockatiel: 'cockatiel-time-window' },
  { feature: 'success + failure listeners', ours: 'ours-call-listeners', opossum: 'opossum-call-listeners', cockatiel: 'cockatiel-call-listeners' },
  { feature: 'latency stats (histogram)', ours: 'ours-histogram', opossum: 'opossum-histogram', cockatiel: undefined },
  { feature: 'all of the above (no signal)', ours: 'ours-all', opossum: 'opossum-all', cockatiel: 'cockatiel-all' },
]

const VARIANT_LABELS = {
  'ours-listeners': '+ state listeners (`open`, `halfOpen`, `close`)',
  'ours-timeout': '+ `timeout: 10000`',
  'ours-window': '+ failure-rate window (`failureRateThreshold: 50`, 100 calls)',
  'ours-histogram': '+ `histogram: true`',
  'ours-call-listeners': '+ call listeners (`success`, `failure`)',
  'ours-timeout-signal': '+ `timeout: 10000`, the task takes the `AbortSignal`',
  'ours-time-window': '+ failure-rate time window (`failureRateThreshold: 50`, 10 s)',
  'ours-all': '+ timeout, time window, histogram, call listeners',
  'ours-bulkhead': '+ shared `Bulkhead` (`maxConcurrent: 64`) around it',
  'ours-max-concurrent': '+ `maxConcurrent: 64` (its own bulkhead)',
  'cockatiel-bulkhead': `cockatiel ${version('cockatiel')} + its \`bulkhead(64)\` around its breaker`,
}

export function contenderLabel(name) {
  switch (name) {
    case 'bare':
      return 'bare `task()`'
    case 'ours':
      return 'circuit-breaker-js'
    case 'opossum':
      return `opossum ${version('opossum')}`
    case 'opossum-lean':
      return `opossum ${version('opossum')} lean`
    case 'cockatiel':
      return `cockatiel ${version('cockatiel')}`
    default:
      if (isVariant(name)) return VARIANT_LABELS[name]
      return name
  }
}

const isBoom = (error) => error instanceof Error && error.message === 'boom'

function resultCase(b, expr, task, stateProblem) {
  return { b, expr, task, outcome: 'value', expect: 1, check: null, runsPerCall: 1, fallbacksPerCall: 0, stateProblem }
}
function failureCase(b, expr, task, stateProblem) {
  return { b, expr, task, outcome: 'reject', expect: null, check: isBoom, runsPerCall: 1, fallbacksPerCall: 0, stateProblem }
}
function openCase(b, expr, task, check, stateProblem) {
  return { b, expr, task, outcome: 'reject', expect: null, check, runsPerCall: 0, fallbacksPerCall: 0, stateProblem }
}
function openFallbackCase(b, expr, task, stateProblem) {
  return { b, expr, task, outcome: 'value', expect: FALLBACK_VALUE, check: null, runsPerCall: 0, fallbacksPerCall: 1, stateProblem }
}

const expectState = (read, wanted) => () => {
  const state = read()
  return state === wanted ? null : `breaker is ${state}, expected ${wanted}`
}

/** Loads one contender; its `setup` and `instance` are described above. */
export async function loadContender(name) {
  switch (name) {
    case 'bare':
      return {
        setup(kind, taskName) {
          const task = TASKS[taskName]
          if (kind === 'closed') return resultCase(null, 'task()', task, () => null)
          if (kind === 'failure') return failureCase(null, 'task()', task, () => null)
          return { na: 'no breaker, so no OPEN state' }
        },
        instances: [],
      }

    case 'ours': {
      const { CircuitBreaker, createSharedArray } = require(fileURLToPath(ROOT))
      const make = (array, options) => new CircuitBreaker(array ?? createSharedArray(), options)
      const state = (b, wanted) => expectState(() => b.getState(), wanted)
      return {
        async setup(kind, taskName, context = {}) {
          const task = TASKS[taskName]
          if (kind === 'closed') {
            const b = make(context.shared, { failureThreshold: 5, resetTimeout: 30000 })
            return resultCase(b, 'b.execute(task)', task, state(b, 'CLOSED'))
          }
          if (kind === 'failure') {
            const b = make(context.shared, { failureThreshold: HUGE_THRESHOLD, resetTimeout: 30000 })
            return failureCase(b, 'b.execute(task)', task, state(b, 'CLOSED'))
          }
          const withFallback = kind === 'openFallback'
          const b = make(undefined, {
            failureThreshold: 1,
            resetTimeout: HOUR,
            openFallback: withFallback ? openFallback : undefined,
          })
          await b.execute(failing).catch(() => {})
          return withFallback
            ? openFallbackCase(b, 'b.execute(task)', task, state(b, 'OPEN'))
            : openCase(b, 'b.execute(task)', task, (e) => e.code === 'ERR_CIRCUIT_OPEN', state(b, 'OPEN'))
        },
        instances: [
          {
            name: 'ours',
            label: 'breaker (over one array shared by all of them)',
            prepare() {
              const shared = createSharedArray()
              return () => new CircuitBreaker(shared, { failureThreshold: 5, resetTimeout: 30000 })
            },
          },
          {
            name: 'ours-array',
            label: 'its shared array alone (`createSharedArray()`)',
            prepare: () => () => createSharedArray(),
          },
        ],
      }
    }

    case 'opossum':
    case 'opossum-lean': {
      const Opossum = require('opossum')
      const lean = name === 'opossum-lean'
      const base = () => (lean ? { timeout: false, rollingPercentilesEnabled: false, enableSnapshots: false } : {})
      const state = (b, wanted) =>
        expectState(() => (b.opened ? 'OPEN' : b.halfOpen ? 'HALF_OPEN' : b.closed ? 'CLOSED' : 'other'), wanted)
      return {
        setup(kind, taskName) {
          const task = TASKS[taskName]
          if (kind === 'closed') {
            const b = new Opossum(task, base())
            return resultCase(b, 'b.fire()', task, state(b, 'CLOSED'))
          }
          if (kind === 'failure') {
            const b = new Opossum(task, { ...base(), errorThresholdPercentage: 100 })
            return failureCase(b, 'b.fire()', task, state(b, 'CLOSED'))
          }
          const b = new Opossum(task, { ...base(), resetTimeout: HOUR })
          b.open()
          if (kind === 'openFallback') {
            b.fallback(openFallback)
            return openFallbackCase(b, 'b.fire()', task, state(b, 'OPEN'))
          }
          return openCase(b, 'b.fire()', task, (e) => e.code === 'EOPENBREAKER', state(b, 'OPEN'))
        },
        instances: [
          {
            name,
            label: lean ? 'breaker, lean options' : 'breaker, default options',
            prepare: () => () => new Opossum(TASKS.task, base()),
          },
        ],
      }
    }

    case 'cockatiel': {
      const c = await import('cockatiel')
      const make = (threshold, halfOpenAfter) =>
        c.circuitBreaker(c.handleAll, { halfOpenAfter, breaker: new c.ConsecutiveBreaker(threshold) })
      const names = { [c.CircuitState.Closed]: 'CLOSED', [c.CircuitState.Open]: 'OPEN', [c.CircuitState.HalfOpen]: 'HALF_OPEN' }
      const state = (b, wanted) => expectState(() => names[b.state] ?? String(b.state), wanted)
      return {
        async setup(kind, taskName) {
          const task = TASKS[taskName]
          if (kind === 'closed') {
            const b = make(5, 30000)
            return resultCase(b, 'b.execute(task)', task, state(b, 'CLOSED'))
          }
          if (kind === 'failure') {
            const b = make(HUGE_THRESHOLD, 30000)
            return failureCase(b, 'b.execute(task)', task, state(b, 'CLOSED'))
          }
          const breaker = make(1, HOUR)
          await breaker.execute(failing).catch(() => {})
          if (kind === 'openFallback') {
            // cockatiel's breaker has no fallback of its own: its `fallback`
            // policy, handling only BrokenCircuitError, wrapped around it.
            const policy = c.wrap(c.fallback(c.handleType(c.BrokenCircuitError), openFallback), breaker)
            return openFallbackCase(policy, 'b.execute(task)', task, state(breaker, 'OPEN'))
          }
          const BrokenCircuitError = c.BrokenCircuitError
          return openCase(breaker, 'b.execute(task)', task, (e) => e instanceof BrokenCircuitError, state(breaker, 'OPEN'))
        },
        instances: [
          {
            name: 'cockatiel',
            label: 'circuitBreaker(handleAll, ConsecutiveBreaker(5))',
            prepare: () => () => make(5, 30000),
          },
        ],
      }
    }

    default:
      if (isPeerVariant(name)) return loadPeerVariant(name)
      if (isVariant(name)) return loadVariant(name)
      throw new Error(`unknown contender ${name}`)
  }
}

// --- variants of ours ----------------------------------------------------------

// Waits (without sleeping a fixed time) until `ready()` or 5 s have passed.
async function until(ready) {
  const deadline = Date.now() + 5000
  while (!ready() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2))
  return ready()
}

function loadVariant(name) {
  if (BULKHEAD_VARIANTS.includes(name)) return loadBulkhead(name)
  const { CircuitBreaker, createSharedArray } = require(fileURLToPath(ROOT))
  const build = (options) => new CircuitBreaker(createSharedArray(options), options)
  const stats = (b) => b.getStats()
  // Checks every variant makes: the breaker counted exactly the calls made.
  const requestsCheck = (b) => {
    const before = stats(b).requests
    return (done) => {
      const made = stats(b).requests - before
      return made === done ? null : `the breaker counted ${made} requests, expected ${done}`
    }
  }
  const both = (...checks) => () => {
    const finishes = checks.map((check) => check())
    return (done) => finishes.map((finish) => finish(done)).filter(Boolean).join('; ') || null
  }
  return {
    async setup(kind, taskName) {
      if (kind !== 'closed' && kind !== 'failure') return { na: 'variants of ours run in the CLOSED and failure scenarios only' }
      const task = TASKS[taskName]
      const failure = kind === 'failure'
      const base = failure ? { failureThreshold: HUGE_THRESHOLD, resetTimeout: 30000 } : { failureThreshold: 5, resetTimeout: 30000 }
      const make = (b, workCheck) => {
        const state = expectState(() => b.getState(), 'CLOSED')
        const kase = failure ? failureCase(b, 'b.execute(task)', task, state) : resultCase(b, 'b.execute(task)', task, state)
        kase.workCheck = both(() => requestsCheck(b), workCheck)
        return kase
      }
      switch (name) {
        case 'ours-listeners': {
          const b = build(base)
          const seen = { open: 0, halfOpen: 0, close: 0 }
          b.on('open', () => seen.open++)
          b.on('halfOpen', () => seen.halfOpen++)
          b.on('close', () => seen.close++)
          // The listeners are live: four transitions, delivered through the
          // thread's watch on the shared array, before any timing.
          b.isolate()
          b.reset()
          b.transitionToHalfOpen()
          b.reset()
          const wanted = () => seen.open === 1 && seen.halfOpen === 1 && seen.close === 2
          if (!(await until(wanted))) return { problems: [`state listeners saw ${JSON.stringify(seen)} after isolate, reset, transitionToHalfOpen, reset`] }
          return make(b, () => {
            const before = JSON.stringify(seen)
            return () => (JSON.stringify(seen) === before ? null : `state events during the run: ${before} -> ${JSON.stringify(seen)}`)
          })
        }
        case 'ours-timeout': {
          const b = build({ ...base, timeout: 10_000 })
          let signal
          await b.execute(async (s) => {
            signal = s
            return 1
          })
          if (!(signal instanceof AbortSignal) || signal.aborted) return { problems: ['with timeout the task did not get a live AbortSignal'] }
          return make(b, () => {
            const before = stats(b).timeouts
            return () => (stats(b).timeouts === before ? null : `${stats(b).timeouts - before} calls timed out`)
          })
        }
        case 'ours-window': {
          const options = { ...base, failureRateThreshold: 50, windowType: 'count', windowSize: 100 }
          delete options.failureThreshold // the rate alone decides
          const b = build(options)
          // Failing calls must not open it: disabled, a breaker still counts
          // every call, records it in the window and checks the rate; only
          // the opening itself is skipped.
          if (failure) b.disable()
          return make(b, () => () => {
            const s = stats(b)
            const calls = Math.min(100, s.requests)
            const failures = failure ? calls : 0
            if (s.window === null) return 'getStats().window is null'
            return s.window.calls === calls && s.window.failures === failures
              ? null
              : `window holds ${s.window.calls} calls, ${s.window.failures} failed; expected ${calls}, ${failures}`
          })
        }
        case 'ours-timeout-signal': {
          const b = build({ ...base, timeout: 10_000 })
          let signals = 0
          // Declares the parameter, so it gets a signal of its own per call.
          const withSignal = async (signal) => {
            if (signal instanceof AbortSignal) signals++
            return task()
          }
          const kase = make(b, () => {
            const before = signals
            return (done) => (signals - before === done ? null : `${signals - before} tasks got a signal, expected ${done}`)
          })
          kase.task = withSignal
          return kase
        }
        case 'ours-time-window': {
          const options = { ...base, failureRateThreshold: 50, windowType: 'time', windowSize: 10_000 }
          delete options.failureThreshold
          const b = build(options)
          if (failure) b.disable()
          return make(b, () => () => (stats(b).window === null ? 'getStats().window is null' : null))
        }
        case 'ours-all': {
          const options = { ...base, timeout: 10_000, failureRateThreshold: 50, windowType: 'time', windowSize: 10_000, histogram: true }
          delete options.failureThreshold
          const b = build(options)
          if (failure) b.disable()
          const seen = { success: 0, failure: 0 }
          b.on('success', () => seen.success++)
          b.on('failure', () => seen.failure++)
          return make(b, () => {
            const before = { ...seen, latencies: stats(b).latency?.count ?? NaN }
            return (done) => {
              const events = seen.success - before.success + seen.failure - before.failure
              const recorded = (stats(b).latency?.count ?? NaN) - before.latencies
              return events === done && recorded === done ? null : `${events} call events, ${recorded} latencies, expected ${done} each`
            }
          })
        }
        case 'ours-max-concurrent': {
          const b = build({ ...base, maxConcurrent: BULKHEAD_OPTIONS.maxConcurrent })
          return make(b, () => {
            const before = stats(b).bulkhead?.rejected ?? NaN
            return () => {
              const { inUse, rejected } = stats(b).bulkhead ?? {}
              if (rejected !== before) return `the bulkhead refused ${rejected - before} calls`
              return inUse === 0 ? null : `${inUse} permits held after the run`
            }
          })
        }
        case 'ours-histogram': {
          const b = build({ ...base, histogram: true })
          return make(b, () => {
            const before = stats(b).latency?.count ?? NaN
            return (done) => {
              const recorded = (stats(b).latency?.count ?? NaN) - before
              return recorded === done ? null : `the histogram recorded ${recorded} latencies, expected ${done}`
            }
          })
        }
        case 'ours-call-listeners': {
          const b = build(base)
          const seen = { success: 0, failure: 0 }
          b.on('success', () => seen.success++)
          b.on('failure', () => seen.failure++)
          return make(b, () => {
            const before = { ...seen }
            return (done) => {
              const got = { success: seen.success - before.success, failure: seen.failure - before.failure }
              const want = failure ? { success: 0, failure: done } : { success: done, failure: 0 }
              return got.success === want.success && got.failure === want.failure
                ? null
                : `call events: ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`
            }
          })
        }
        default:
          throw new Error(`unknown variant ${name}`)
      }
    },
    instances: [],
  }
}

// --- the same features on the peers --------------------------------------------

function loadPeerVariant(name) {
  const library = name.slice(0, name.indexOf('-'))
  const feature = name.slice(library.length + 1)
  const seen = { success: 0, failure: 0 }
  const counted = (b) => ({
    workCheck: () => {
      const before = { ...seen }
      return (done) => {
        const events = seen.success - before.success + seen.failure - before.failure
        return events === done ? null : `${events} call events, expected ${done}`
      }
    },
    b,
  })
  return {
    async setup(kind, taskName) {
      if (kind !== 'closed') return { na: 'the peers\' feature rows run in the CLOSED scenario only' }
      const task = TASKS[taskName]
      if (library === 'opossum') {
        const Opossum = require('opossum')
        const lean = { timeout: false, rollingPercentilesEnabled: false, enableSnapshots: false }
        const options = {
          timeout: { ...lean, timeout: 10_000 },
          'time-window': { ...lean, rollingCountTimeout: 10_000, errorThresholdPercentage: 50 },
          histogram: { ...lean, rollingPercentilesEnabled: true },
          'call-listeners': lean,
          all: { ...lean, timeout: 10_000, rollingPercentilesEnabled: true },
        }[feature]
        const b = new Opossum(task, options)
        let work = { workCheck: () => () => null }
        if (feature === 'call-listeners' || feature === 'all') {
          b.on('success', () => seen.success++)
          b.on('failure', () => seen.failure++)
          work = counted(b)
        }
        const kase = resultCase(b, 'b.fire()', task, expectState(() => (b.closed ? 'CLOSED' : 'other'), 'CLOSED'))
        kase.workCheck = work.workCheck
        return kase
      }
      const c = await import('cockatiel')
      const breakers = {
        'count-window': () => new c.CountBreaker({ threshold: 0.5, size: 100 }),
        'time-window': () => new c.SamplingBreaker({ threshold: 0.5, duration: 10_000 }),
        all: () => new c.SamplingBreaker({ threshold: 0.5, duration: 10_000 }),
      }
      const breaker = c.circuitBreaker(c.handleAll, { halfOpenAfter: 30000, breaker: (breakers[feature] ?? (() => new c.ConsecutiveBreaker(5)))() })
      let work = { workCheck: () => () => null }
      if (feature === 'call-listeners' || feature === 'all') {
        breaker.onSuccess(() => seen.success++)
        breaker.onFailure(() => seen.failure++)
        work = counted(breaker)
      }
      const policy = feature === 'timeout' || feature === 'all' ? c.wrap(breaker, c.timeout(10_000, c.TimeoutStrategy.Aggressive)) : breaker
      const names = { [c.CircuitState.Closed]: 'CLOSED' }
      const kase = resultCase(policy, 'b.execute(task)', task, expectState(() => names[breaker.state] ?? String(breaker.state), 'CLOSED'))
      kase.workCheck = work.workCheck
      return kase
    },
    instances: [],
  }
}

// --- bulkheads on top of the CLOSED path -----------------------------------------
//   ours-bulkhead        bulkhead.execute(run), run = () => breaker.execute(task)
//                        (made once), over a Bulkhead.createSharedArray (in the
//                        threads scenario: ONE bulkhead array and ONE breaker
//                        array shared by both workers); checked: the breaker
//                        counted every call, no permit is left held, none refused
//   cockatiel-bulkhead   wrap(bulkhead(64), breaker): cockatiel's in-process bulkhead
//                        around its ConsecutiveBreaker; checked: no slot left taken

function loadBulkhead(name) {
  return {
    async setup(kind, taskName, context = {}) {
      if (kind !== 'closed' && kind !== 'failure') return { na: 'bulkhead variants run in the CLOSED and failure scenarios only' }
      const task = TASKS[taskName]
      const failure = kind === 'failure'
      const threshold = failure ? HUGE_THRESHOLD : 5
      if (name === 'cockatiel-bulkhead') {
        const c = await import('cockatiel')
        const breaker = c.circuitBreaker(c.handleAll, { halfOpenAfter: 30000, breaker: new c.ConsecutiveBreaker(threshold) })
        const bulkhead = c.bulkhead(BULKHEAD_OPTIONS.maxConcurrent)
        const policy = c.wrap(bulkhead, breaker)
        const state = expectState(() => (breaker.state === c.CircuitState.Closed ? 'CLOSED' : String(breaker.state)), 'CLOSED')
        const kase = failure ? failureCase(policy, 'b.execute(task)', task, state) : resultCase(policy, 'b.execute(task)', task, state)
        kase.workCheck = () => () =>
          bulkhead.executionSlots === BULKHEAD_OPTIONS.maxConcurrent ? null : `${bulkhead.executionSlots} bulkhead slots free after the run`
        return kase
      }
      const { Bulkhead, CircuitBreaker, createSharedArray } = require(fileURLToPath(ROOT))
      const breaker = new CircuitBreaker(context.shared ?? createSharedArray(), { failureThreshold: threshold, resetTimeout: 30000 })
      const bulkhead = new Bulkhead(context.sharedBulkhead ?? Bulkhead.createSharedArray(BULKHEAD_OPTIONS), BULKHEAD_OPTIONS)
      const b = { bulkhead, run: () => breaker.execute(task) }
      const state = expectState(() => breaker.getState(), 'CLOSED')
      const expr = 'b.bulkhead.execute(b.run)'
      const kase = failure ? failureCase(b, expr, task, state) : resultCase(b, expr, task, state)
      kase.workCheck = () => {
        const before = { requests: breaker.getStats().requests, rejected: bulkhead.getStats().rejected }
        return (done) => {
          const requests = breaker.getStats().requests - before.requests
          const { inUse, rejected } = bulkhead.getStats()
          const problems = []
          // Shared by two workers (the threads scenario), the other worker's
          // calls count too and it may hold permits: checked alone only (the
          // threads scenario checks the shared success count at the end).
          const alone = context.sharedBulkhead === undefined
          if (alone && requests !== done) problems.push(`the breaker counted ${requests} requests, expected ${done}`)
          if (alone && inUse !== 0) problems.push(`${inUse} permits held after the run`)
          if (rejected !== before.rejected) problems.push(`${rejected - before.rejected} calls refused`)
          return problems.join('; ') || null
        }
      }
      return kase
    },
    instances: [],
  }
}
