// One worker of workers.mjs: `failures` failing calls, then one call to see
// whether the circuit refuses it.
import { parentPort, threadId, workerData } from 'node:worker_threads'
import CircuitBreaker, { isCircuitOpenError } from 'shared-circuit-breaker'

const { array, failures, threshold } = workerData
const breaker = new CircuitBreaker(array, { failureThreshold: threshold, resetTimeout: 60000 })
let failed = 0
for (let i = 0; i < failures; i++) {
  await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => failed++)
}
let refused = false
if (failures === 0) {
  refused = await breaker.execute(async () => 'ran').then(() => false, (error) => isCircuitOpenError(error))
}
parentPort.postMessage({ failed, refused, threadId, state: breaker.getState() })
