// Two worker threads, alive at once, each with its own breaker over one
// SharedArrayBuffer, threshold 2: one failure in each opens the breaker for
// both, and for the main thread.
import assert from 'node:assert/strict'
import { Worker } from 'node:worker_threads'
import CircuitBreaker, { createSharedArray } from 'shared-circuit-breaker'

const sharedArray = createSharedArray()

function start(name) {
  const worker = new Worker(new URL('./worker.cjs', import.meta.url), { workerData: { sharedArray, name } })
  const replies = []
  const waiters = []
  worker.on('message', (message) => (waiters.length ? waiters.shift()(message) : replies.push(message)))
  const exited = new Promise((resolve, reject) => {
    worker.once('error', reject)
    worker.once('exit', resolve)
  })
  const next = () => (replies.length ? Promise.resolve(replies.shift()) : new Promise((resolve) => waiters.push(resolve)))
  const ask = (command) => {
    worker.postMessage(command)
    return next()
  }
  return { next, ask, exited, worker }
}

const a = start('a')
const b = start('b')
assert.deepEqual(await a.next(), { name: 'a', ready: true })
assert.deepEqual(await b.next(), { name: 'b', ready: true })

const first = await a.ask('fail')
assert.deepEqual(first, { name: 'a', error: 'down', state: 'CLOSED', failureCount: 1 })

// b's breaker sees a's failure: its own failure is the second, and opens it.
const second = await b.ask('fail')
assert.deepEqual(second, { name: 'b', error: 'down', state: 'OPEN', failureCount: 2 })

// a's breaker is open too: the task does not run.
const refused = await a.ask('try')
assert.deepEqual(refused, { name: 'a', ran: false, openError: true, state: 'OPEN', failureCount: 2 })

a.worker.postMessage('exit')
b.worker.postMessage('exit')
assert.equal(await a.exited, 0)
assert.equal(await b.exited, 0)

const main = new CircuitBreaker(sharedArray, 2, 60000)
assert.equal(main.getState(), 'OPEN')
assert.equal(main.getTotalRequestCount(), 3) // two failures, one refusal
assert.equal(main.getSuccessCount(), 0)
console.log('workers: two threads shared one breaker (opened by their two failures, refused the third call)')
