// A TypeScript user of `maxConcurrent` on the breaker and of the bulkhead's
// events: checked with the other consumers by cockatiel.test.mjs with
// `tsc --noEmit` (strict).
import CircuitBreaker, { Bulkhead, BulkheadFullError, createSharedArray, type CircuitBreakerStats } from 'shared-circuit-breaker'

const options = { failureThreshold: 3, maxConcurrent: 4, maxQueue: 2, queueTimeout: 500, lease: 30000 }
const breaker = new CircuitBreaker(createSharedArray(options), options)
breaker.on('bulkheadRejected', (error: BulkheadFullError) => error.queueTimeout ?? 0)
const stats: CircuitBreakerStats = breaker.getStats()
const inUse: number | undefined = stats.bulkhead?.inUse
const bulkhead = new Bulkhead(Bulkhead.createSharedArray({ maxConcurrent: 1 }), { maxConcurrent: 1 })
bulkhead.on('rejected', (error) => error.code === 'ERR_BULKHEAD_FULL').off('rejected', () => {})
// @ts-expect-error maxConcurrent is a number
new CircuitBreaker(createSharedArray(), { maxConcurrent: '4' })
// @ts-expect-error a Bulkhead has no 'open' event
bulkhead.on('open', () => {})
// @ts-expect-error the stats' bulkhead has no name
void stats.bulkhead?.name
export { inUse }
