// The child of file.mjs: over the same file, it sees the parent's failure,
// adds two, and reports the state.
import CircuitBreaker from 'shared-circuit-breaker'

const breaker = CircuitBreaker.fromFile(process.argv[2], { failureThreshold: 3, resetTimeout: 60000 })
const sawFailures = breaker.getStats().consecutiveFailures
for (let i = 0; i < 2; i++) await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})
console.log(JSON.stringify({ sawFailures, state: breaker.getState(), pid: process.pid }))
breaker.dispose()
