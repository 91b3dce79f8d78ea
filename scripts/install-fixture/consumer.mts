// An ES module user of the published types (index.d.mts -> index.d.ts).
import CircuitBreaker, {
  CircuitBreakerKeys,
  CircuitBreakerStates,
  CircuitOpenError,
  createSharedArray,
  isCircuitOpenError,
  type CircuitBreakerOptions,
  type CircuitBreakerState,
} from 'circuit-breaker-js'

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

async function handle(error: unknown): Promise<string> {
  if (isCircuitOpenError(error)) {
    const code: 'ERR_CIRCUIT_OPEN' = error.code
    return code
  }
  return error instanceof CircuitOpenError ? 'unreachable' : 'other'
}

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

export { state, value, fromSync, buffer, counts, slot, open, threshold, handle, wrongState }
