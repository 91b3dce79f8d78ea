'use strict'

// The errors the breaker rejects calls with, and how to recognise them
// across copies of the package and realms.

const OPEN_BRAND = Symbol.for('circuit-breaker-js.CircuitOpenError')

/**
 * The rejection of a call refused because the circuit is open. Its `code` is
 * `'ERR_CIRCUIT_OPEN'`. It carries no stack trace: an open circuit is the
 * expected, fast path, and walking the stack would be most of its cost.
 */
class CircuitOpenError extends Error {
  constructor(message = 'Circuit is open') {
    super(message)
  }
}
Object.defineProperties(CircuitOpenError.prototype, {
  name: { value: 'CircuitOpenError', writable: true, configurable: true },
  code: { value: 'ERR_CIRCUIT_OPEN', writable: true, configurable: true },
  [OPEN_BRAND]: { value: true },
})

/**
 * True for a `CircuitOpenError` from any copy of this package, in any realm
 * (where `instanceof` fails), and for one whose `code` survived a trip
 * through `postMessage`.
 */
function isCircuitOpenError(value) {
  if (value === null || typeof value !== 'object') return false
  try {
    return value[OPEN_BRAND] === true || value.code === 'ERR_CIRCUIT_OPEN'
  } catch {
    return false // a proxy or getter that throws is not one of ours
  }
}

// The breaker's own rejections are made without running the Error
// constructor: in V8 even a stack-less `new Error()` costs ~0.7 µs on the
// machine this was measured on, which would be most of an OPEN rejection.
// Such an error is still `instanceof CircuitOpenError` and `Error`, with
// `name`, `message`, `code`, and a one-line `stack` from the prototype.
Object.defineProperty(CircuitOpenError.prototype, 'stack', {
  configurable: true,
  get() {
    return `${this.name}: ${this.message}`
  },
  set(value) {
    Object.defineProperty(this, 'stack', { value, writable: true, configurable: true })
  },
})

function circuitOpenError() {
  const error = Object.create(CircuitOpenError.prototype)
  error.message = 'Circuit is open'
  return error
}

// What an OPEN call without fallback returns is `Promise.resolve()` of this
// thenable: the promise rejects in a later microtask, when the caller's
// handler is attached, so neither a `throw` (~0.8 µs in V8, for the message
// location) nor Node's unhandled-rejection bookkeeping (~1 µs) is paid. A
// caller that never handles it still gets an unhandled rejection.
const OPEN_REJECTION = Object.freeze({
  then(resolve, reject) {
    reject(circuitOpenError())
  },
})

/**
 * The rejection of a call that ran longer than the breaker's `timeout`. Its
 * `code` is `'ERR_CIRCUIT_TIMEOUT'`; the task's `AbortSignal` aborts with it.
 */
class CircuitTimeoutError extends Error {
  constructor(timeout) {
    super(`Timed out after ${timeout} ms`)
    this.timeout = timeout
  }
}
Object.defineProperties(CircuitTimeoutError.prototype, {
  name: { value: 'CircuitTimeoutError', writable: true, configurable: true },
  code: { value: 'ERR_CIRCUIT_TIMEOUT', writable: true, configurable: true },
})

/** True for a `CircuitTimeoutError`, in any realm (it checks `code`). */
function isCircuitTimeoutError(value) {
  if (value === null || typeof value !== 'object') return false
  try {
    return value.code === 'ERR_CIRCUIT_TIMEOUT'
  } catch {
    return false
  }
}

function disposedError() {
  return new TypeError('this circuit breaker was disposed')
}

module.exports = {
  CircuitOpenError,
  CircuitTimeoutError,
  isCircuitOpenError,
  isCircuitTimeoutError,
  circuitOpenError,
  OPEN_REJECTION,
  disposedError,
}
