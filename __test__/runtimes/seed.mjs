// The README's Usage example: the seed's import, a breaker over a
// SharedArrayBuffer, fallbacks, and a breaker that opens.
import CircuitBreaker, { CircuitBreakerKeys, isCircuitOpenError } from 'shared-circuit-breaker'
import { assertEqual, check, done } from './check.mjs'

await check('the seed example (README Usage)', async () => {
  const sharedArray = new Int32Array(new SharedArrayBuffer(Object.keys(CircuitBreakerKeys).length * Int32Array.BYTES_PER_ELEMENT))
  const openFallback = () => 'cached value'
  const failureFallback = (error) => `fallback for ${error.message}`
  const breaker = new CircuitBreaker(sharedArray, 5, 30000, openFallback, failureFallback)
  assertEqual(await breaker.execute(async () => 'fresh value'), 'fresh value', 'execute')
  assertEqual(breaker.getState(), 'CLOSED', 'state')
  assertEqual(breaker.getSharedBuffer() === sharedArray.buffer, true, 'getSharedBuffer')
  assertEqual(await breaker.execute(async () => { throw new Error('down') }), 'fallback for down', 'failureFallback')
})

await check('failures open the circuit; an open circuit refuses with CircuitOpenError', async () => {
  const breaker = new CircuitBreaker(new Int32Array(new SharedArrayBuffer(Object.keys(CircuitBreakerKeys).length * 4)), 2, 60000)
  for (let i = 0; i < 2; i++) await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})
  let ran = false
  const error = await breaker.execute(async () => (ran = true)).then(() => null, (e) => e)
  assertEqual([breaker.getState(), ran, isCircuitOpenError(error)], ['OPEN', false, true], 'open')
  return `${breaker.getStats().failures} failures, ${breaker.getStats().rejections} rejection`
})
done()
