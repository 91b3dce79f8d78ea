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

export const CONTENDERS = ['bare', 'ours', 'opossum', 'opossum-lean', 'cockatiel']
export const PEERS = ['opossum', 'opossum-lean', 'cockatiel']

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
      throw new Error(`unknown contender ${name}`)
  }
}
