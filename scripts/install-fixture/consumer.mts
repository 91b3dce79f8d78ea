// An ES module user of the published types (index.d.mts -> index.d.ts).
import CircuitBreaker, {
  CircuitBreakerKeys,
  CircuitBreakerStates,
  CircuitOpenError,
  createSharedArray,
  isCircuitOpenError,
  type CircuitBreakerOptions,
  type CircuitBreakerState,
  type CircuitBreakerStats,
  type StateChange,
  arrayLength,
  isCircuitTimeoutError,
  prometheusText,
} from 'shared-circuit-breaker'

const array: Int32Array = createSharedArray()
const options: CircuitBreakerOptions = { failureThreshold: 3, resetTimeout: 1000 }
const breaker = new CircuitBreaker(array, options)
const positional = new CircuitBreaker(array, 3, 1000, () => 'cached', (error) => `fallback: ${String(error)}`)

const state: CircuitBreakerState = breaker.getState()
const value: Promise<number> = breaker.execute(async () => 42)
const fromSync: Promise<string> = positional.execute(() => 'sync')
const buffer: SharedArrayBuffer = breaker.getSharedBuffer()
const counts: number[] = [breaker.getTotalRequestCount(), breaker.getSuccessCount(), breaker.getLastFailureTime()]
const slot: number = CircuitBreakerKeys.FAILURE_COUNT
const open: 1 = CircuitBreakerStates.OPEN
const threshold: number = breaker.failureThreshold

// The policies, events and stats.
const policies: CircuitBreakerOptions = {
  name: 'inventory',
  timeout: 50,
  errorFilter: (error) => (error as { status?: number }).status === 404,
  failureRateThreshold: 50,
  minimumCalls: 10,
  windowType: 'time',
  windowSize: 10000,
  windowBuckets: 10,
  slowCallDuration: 200,
  halfOpenMaxCalls: 2,
  successThreshold: 2,
  maxResetTimeout: 60000,
  backoffMultiplier: 2,
  histogram: true,
}
const length: number = arrayLength(policies)
const policed = new CircuitBreaker(createSharedArray(policies), policies)
const aborted: Promise<boolean> = policed.execute(async (signal) => signal?.aborted ?? false)
policed.on('open', (change: StateChange) => change.threadId)
policed.on('failure', (error: unknown, durationMs: number) => durationMs)
const isolation = policed.isolate()
isolation.release()
policed.reset()
policed.disable()
policed.enable()
const stats: CircuitBreakerStats = policed.getStats()
const p99: number | undefined = stats.latency?.p99
const text: string = prometheusText([stats, breaker.toJSON()])
const timedOut: boolean = isCircuitTimeoutError(new Error('x'))
// @ts-expect-error no such event
policed.on('opened', () => {})
// @ts-expect-error windowType is 'count' or 'time'
new CircuitBreaker(array, { windowType: 'sliding' })

async function handle(error: unknown): Promise<string> {
  if (isCircuitOpenError(error)) {
    const code: 'ERR_CIRCUIT_OPEN' = error.code
    return code
  }
  return error instanceof CircuitOpenError ? 'unreachable' : 'other'
}

// wrap() keeps the parameter types, `this` and the awaited return type.
const lookup = breaker.wrap(async (id: number, fresh?: boolean) => ({ id, fresh: fresh ?? false }))
const looked: Promise<{ id: number; fresh: boolean }> = lookup(7, true)
const client = { base: 'http://x', get: breaker.wrap(function (this: { base: string }, path: string) { return `${this.base}${path}` }) }
const got: Promise<string> = client.get('/a')
// @ts-expect-error wrap() keeps the parameter types
lookup('7')
// @ts-expect-error ...and their number
lookup()
// @ts-expect-error wrap() takes a function
breaker.wrap(42)

// The types must reject what the runtime rejects; if they were `any`, each
// of these directives would be unused, which is an error.
// @ts-expect-error getState() is a string union, not a number
const wrongState: number = breaker.getState()
// @ts-expect-error the array must be an Int32Array
new CircuitBreaker(new Float64Array(8))
// @ts-expect-error failureThreshold is read-only
breaker.failureThreshold = 4
// @ts-expect-error execute() takes a function
breaker.execute(42)

export { looked, got, state, value, fromSync, buffer, counts, slot, open, threshold, handle, wrongState, length, aborted, p99, text, timedOut }
