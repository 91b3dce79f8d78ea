// The messages of a worker thread, in order, for the tests that drive
// workers. `next()` resolves with the next message, whether it arrived
// before or after the call. Once the worker fails (its 'error' event, with
// that error) or exits with nothing left to read, `next()` rejects: a test
// waiting on a dead worker fails at once, saying why, rather than at its
// timeout.
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'

/**
 * Starts `new Worker(url, { workerData })`: `{ worker, next, exited }`, where
 * `exited` resolves with the exit code (and rejects if the worker failed).
 */
export function startWorker(url, workerData) {
  const worker = new Worker(url, { workerData })
  const exited = once(worker, 'exit').then(([code]) => code)
  return { worker, next: messages(worker), exited }
}

/** `next()` over the 'message', 'error' and 'exit' events of `source`. */
export function messages(source) {
  const arrived = []
  const waiting = []
  let ended
  source.on('message', (message) => {
    const waiter = waiting.shift()
    if (waiter) waiter.resolve(message)
    else arrived.push(message)
  })
  const end = (error) => {
    ended ??= error
    for (const waiter of waiting.splice(0)) waiter.reject(ended)
  }
  source.on('error', end)
  source.on('exit', (code) => end(new Error(`the worker exited (code ${code}) with no message left to read`)))
  return () => {
    if (arrived.length > 0) return Promise.resolve(arrived.shift())
    if (ended !== undefined) return Promise.reject(ended)
    return new Promise((resolve, reject) => waiting.push({ resolve, reject }))
  }
}
