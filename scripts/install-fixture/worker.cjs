// One of the two worker threads of workers.mjs: a breaker over the array it
// was given, driven by the main thread's messages.
const { parentPort, workerData } = require('node:worker_threads')
const { CircuitBreaker, CircuitBreakerKeys, isCircuitOpenError } = require('shared-circuit-breaker')

const array = workerData.sharedArray
const breaker = new CircuitBreaker(array, 2, 60000)

parentPort.on('message', async (command) => {
  if (command === 'exit') {
    parentPort.close()
    return
  }
  const report = { name: workerData.name }
  if (command === 'fail') {
    report.error = await breaker.execute(() => Promise.reject(new Error('down'))).catch((error) => error.message)
  } else if (command === 'try') {
    report.ran = false
    report.openError = await breaker
      .execute(() => {
        report.ran = true
      })
      .then(() => false, (error) => isCircuitOpenError(error))
  }
  report.state = breaker.getState()
  report.failureCount = Atomics.load(array, CircuitBreakerKeys.FAILURE_COUNT)
  // Publish this thread's counters before the main thread reads them.
  await new Promise((resolve) => setImmediate(resolve))
  parentPort.postMessage(report)
})
parentPort.postMessage({ name: workerData.name, ready: true })
