// The README's Usage example, word for word, with `require` instead of `import`.
const { CircuitBreaker, CircuitBreakerKeys } = require('shared-circuit-breaker')

const sharedArray = new Int32Array(new SharedArrayBuffer(
  Object.keys(CircuitBreakerKeys).length * Int32Array.BYTES_PER_ELEMENT))
const openFallback = () => 'cached value'
const failureFallback = (error) => `fallback for ${error.message}`
const breaker = new CircuitBreaker(sharedArray, 5, 30000, openFallback, failureFallback)

const task = async () => 'fresh value'
breaker.execute(task).then((result) => console.log(result)) // 'fresh value'
console.log(breaker.getState())                             // 'CLOSED'
console.log(breaker.getSharedBuffer() === sharedArray.buffer) // true
