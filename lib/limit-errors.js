'use strict'

// The errors a bulkhead and a rate limiter reject calls with. Like
// CircuitOpenError they carry no stack trace (a refusal is an expected,
// fast path) and are recognised across copies of the package and realms
// by a brand or their `code`.

const FULL_BRAND = Symbol.for('circuit-breaker-js.BulkheadFullError')
const LIMITED_BRAND = Symbol.for('circuit-breaker-js.RateLimitedError')

function stacklessPrototype(prototype, name, code, brand) {
  Object.defineProperties(prototype, {
    name: { value: name, writable: true, configurable: true },
    code: { value: code, writable: true, configurable: true },
    [brand]: { value: true },
    stack: {
      configurable: true,
      get() {
        return `${this.name}: ${this.message}`
      },
      set(value) {
        Object.defineProperty(this, 'stack', { value, writable: true, configurable: true })
      },
    },
  })
}

/**
 * The rejection of a call refused by a bulkhead: every permit held and the
 * queue full (or no queue), or the call waited `queueTimeout` ms in the
 * queue (then `queueTimeout` is set). Its `code` is `'ERR_BULKHEAD_FULL'`.
 */
class BulkheadFullError extends Error {
  constructor(message = 'Bulkhead is full') {
    super(message)
  }
}
stacklessPrototype(BulkheadFullError.prototype, 'BulkheadFullError', 'ERR_BULKHEAD_FULL', FULL_BRAND)

/**
 * The rejection of a call refused by a rate limiter: it would have had to
 * wait `retryAfter` ms, more than `maxWait`. Its `code` is `'ERR_RATE_LIMITED'`.
 */
class RateLimitedError extends Error {
  constructor(message = 'Rate limit exceeded') {
    super(message)
  }
}
stacklessPrototype(RateLimitedError.prototype, 'RateLimitedError', 'ERR_RATE_LIMITED', LIMITED_BRAND)

function isBranded(value, brand, code) {
  if (value === null || typeof value !== 'object') return false
  try {
    return value[brand] === true || value.code === code
  } catch {
    return false
  }
}

/** True for a `BulkheadFullError` from any copy of this package, in any realm. */
function isBulkheadFullError(value) {
  return isBranded(value, FULL_BRAND, 'ERR_BULKHEAD_FULL')
}

/** True for a `RateLimitedError` from any copy of this package, in any realm. */
function isRateLimitedError(value) {
  return isBranded(value, LIMITED_BRAND, 'ERR_RATE_LIMITED')
}

// Made without running the Error constructor (see errors.js: most of the
// cost of a refusal would be the constructor).
function bulkheadFullError(queueTimeout) {
  const error = Object.create(BulkheadFullError.prototype)
  if (queueTimeout === undefined) {
    error.message = 'Bulkhead is full'
  } else {
    error.message = `Bulkhead is full: waited ${queueTimeout} ms (queueTimeout) for a permit`
    error.queueTimeout = queueTimeout
  }
  return error
}

function rateLimitedError(retryAfter) {
  const error = Object.create(RateLimitedError.prototype)
  error.message = `Rate limit exceeded: the call would have had to wait ${Math.ceil(retryAfter)} ms`
  error.retryAfter = retryAfter
  return error
}

// `Promise.resolve()` of this rejects a microtask later, once the caller's
// handler is attached: no throw, no unhandled-rejection bookkeeping (see
// OPEN_REJECTION in errors.js).
const FULL_REJECTION = Object.freeze({
  then(resolve, reject) {
    reject(bulkheadFullError())
  },
})

module.exports = {
  BulkheadFullError,
  RateLimitedError,
  isBulkheadFullError,
  isRateLimitedError,
  bulkheadFullError,
  rateLimitedError,
  FULL_REJECTION,
}
