// A CommonJS user of the published types (index.d.ts through `require`).
import breakerModule = require('shared-circuit-breaker')

const { CircuitBreaker, createSharedArray, isCircuitOpenError } = breakerModule
const Default: typeof CircuitBreaker = breakerModule.default

const breaker = new Default(createSharedArray(), { failureThreshold: 2, resetTimeout: 500 })
const result: Promise<string> = breaker.execute(() => Promise.resolve('ok'))
const state: 'CLOSED' | 'OPEN' | 'HALF_OPEN' = new CircuitBreaker(createSharedArray()).getState()
const guard: boolean = isCircuitOpenError(new Error('x'))

// @ts-expect-error resetTimeout must be a number
new CircuitBreaker(createSharedArray(), { resetTimeout: '1000' })

export = { result, state, guard }
