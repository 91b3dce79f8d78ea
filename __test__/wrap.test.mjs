// breaker.wrap(fn): fn behind the breaker, called with its caller's
// arguments and `this` (what opossum's `new CircuitBreaker(fn).fire(...)`
// does).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import CircuitBreaker, { createSharedArray, isCircuitOpenError, isCircuitTimeoutError } from 'shared-circuit-breaker'

function breakerWith(options = {}) {
  return new CircuitBreaker(createSharedArray(options), { failureThreshold: 2, resetTimeout: 60000, ...options })
}

test('the wrapped function gets the arguments and `this` it was called with, and resolves with the result', async () => {
  const breaker = breakerWith()
  const seen = []
  const client = {
    base: 'http://inventory',
    get: breaker.wrap(async function get(path, query) {
      seen.push({ self: this, path, query, count: arguments.length })
      return `${this.base}${path}?${query}`
    }),
  }
  assert.equal(await client.get('/items', 'q=1'), 'http://inventory/items?q=1')
  assert.deepEqual(seen, [{ self: client, path: '/items', query: 'q=1', count: 2 }])
  // No arguments, and `call` with another `this`.
  const other = { base: 'x' }
  assert.equal(await client.get.call(other), 'xundefined?undefined')
  assert.equal(seen[1].self, other)
  assert.equal(seen[1].count, 0)
  assert.equal(breaker.getStats().successes, 2)
})

test('failures count through the breaker; once open, calls are rejected without calling fn', async () => {
  const breaker = breakerWith()
  let calls = 0
  const failing = breaker.wrap(async () => {
    calls++
    throw new Error('down')
  })
  await assert.rejects(failing(), /down/)
  await assert.rejects(failing(), /down/)
  assert.equal(breaker.getState(), 'OPEN')
  const error = await failing().then(() => null, (e) => e)
  assert.ok(isCircuitOpenError(error), `got ${error}`)
  assert.equal(calls, 2)
  const stats = breaker.getStats()
  assert.deepEqual([stats.failures, stats.rejections], [2, 1])
})

test('a synchronous throw or a plain value becomes a promise, like execute', async () => {
  const breaker = breakerWith()
  const throws = breaker.wrap(() => {
    throw new TypeError('bad input')
  })
  const result = throws()
  assert.ok(result instanceof Promise)
  await assert.rejects(result, TypeError)
  assert.equal(breaker.getStats().failures, 1)
  const plain = breaker.wrap((a, b) => a + b)
  assert.equal(await plain(2, 3), 5)
})

test('fallbacks and timeouts apply to the wrapped function; it gets no AbortSignal among its arguments', async () => {
  const breaker = breakerWith({ timeout: 50, failureFallback: (error) => `fallback: ${error.code ?? error.message}` })
  const args = breaker.wrap((...received) => received)
  assert.deepEqual(await args(1, 'two'), [1, 'two'])
  // The breaker's timer does not hold the event loop open: the task's does.
  const hangs = breaker.wrap(() => new Promise((resolve) => setTimeout(resolve, 500)))
  assert.equal(await hangs(), 'fallback: ERR_CIRCUIT_TIMEOUT')
  const plainTimeout = breakerWith({ timeout: 20 }).wrap(() => new Promise((resolve) => setTimeout(resolve, 500)))
  const error = await plainTimeout().then(() => null, (e) => e)
  assert.ok(isCircuitTimeoutError(error), `got ${error}`)
})

test('wrap keeps fn\'s name and length, is not a constructor, and refuses what is not a function', () => {
  const breaker = breakerWith()
  const wrapped = breaker.wrap(function fetchUser(id, options) {
    return { id, options }
  })
  assert.equal(wrapped.name, 'fetchUser')
  assert.equal(wrapped.length, 2)
  assert.throws(() => new wrapped(1), TypeError)
  for (const value of [undefined, null, 42, 'fn', {}]) {
    assert.throws(() => breaker.wrap(value), (error) => {
      assert.ok(error instanceof TypeError)
      assert.match(error.message, /^fn must be a function, got /)
      return true
    })
  }
  assert.throws(() => CircuitBreaker.prototype.wrap.call({}, () => {}), TypeError)
})

test('a breaker shared by wrapped functions: one opens it for the others', async () => {
  const array = createSharedArray()
  const a = new CircuitBreaker(array, { failureThreshold: 1, resetTimeout: 60000 })
  const b = new CircuitBreaker(array, { failureThreshold: 1, resetTimeout: 60000 })
  const bad = a.wrap(async () => {
    throw new Error('down')
  })
  let called = false
  const good = b.wrap(async () => {
    called = true
  })
  await assert.rejects(bad(), /down/)
  await assert.rejects(good(), (e) => isCircuitOpenError(e))
  assert.equal(called, false)
})
