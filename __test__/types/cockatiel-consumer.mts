// A TypeScript user of 'shared-circuit-breaker/cockatiel': checked by
// cockatiel.test.mjs with `tsc --noEmit` (strict).
import { CircuitState, ConsecutiveBreaker, TimeoutStrategy, circuitBreaker, handleAll, retry, timeout, wrap, type IPolicy } from 'cockatiel'
import CircuitBreaker, { createSharedArray } from 'shared-circuit-breaker'
import cockatielPolicy, { SharedCircuitBreakerPolicy } from 'shared-circuit-breaker/cockatiel'

const breaker = new CircuitBreaker(createSharedArray(), { failureThreshold: 3 })
const policy: IPolicy = cockatielPolicy(breaker)
const shared: SharedCircuitBreakerPolicy = cockatielPolicy(breaker)
const pipeline = wrap(retry(handleAll, { maxAttempts: 2 }), timeout(1000, TimeoutStrategy.Cooperative), shared)
const value: Promise<number> = pipeline.execute(async ({ signal }) => (signal.aborted ? 0 : 1))
const state: CircuitState = shared.state
shared.onBreak(({ isolated }) => isolated)
shared.onFailure(({ duration, handled }) => duration + (handled ? 1 : 0)).dispose()
// The same place in a pipeline as cockatiel's own breaker.
const own = circuitBreaker(handleAll, { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) })
const either = [own, shared].map((p) => wrap(retry(handleAll, { maxAttempts: 2 }), p))
// @ts-expect-error a CircuitBreaker is required
cockatielPolicy(createSharedArray())
// @ts-expect-error execute() takes a function
shared.execute(42)

export { policy, value, state, either }
