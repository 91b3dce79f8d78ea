'use strict'

// The JavaScript face of the breaker. Hand-written; `binding.js` is generated
// by `napi build` and loads the native addon. Every state transition is
// decided in Rust; this file reads the STATE slot to take the CLOSED path
// without a native call before the task runs, converts arguments and shapes
// promises.

const native = require('./native.js')

/** Slot name -> index in the shared `Int32Array`. Defined once, in Rust. */
const CircuitBreakerKeys = Object.freeze(
  Object.fromEntries(native.layout().map((name, index) => [name, index])),
)

/** The values of the `STATE` slot. */
const CircuitBreakerStates = Object.freeze({ CLOSED: 0, OPEN: 1, HALF_OPEN: 2 })

const STATE_NAMES = Object.freeze(['CLOSED', 'OPEN', 'HALF_OPEN'])
const SLOT_COUNT = Object.keys(CircuitBreakerKeys).length
const STATE = CircuitBreakerKeys.STATE
const CLOSED = CircuitBreakerStates.CLOSED
// What `native.admit` answers besides a probe ticket (>= 0).
const ADMIT_RUN = -2
const ADMIT_REJECT = -1

const DEFAULT_FAILURE_THRESHOLD = 5
const DEFAULT_RESET_TIMEOUT = 30000

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
  return (
    value !== null &&
    typeof value === 'object' &&
    (value[OPEN_BRAND] === true || value.code === 'ERR_CIRCUIT_OPEN')
  )
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

function throwCircuitOpen() {
  throw circuitOpenError()
}

const RESOLVED = Promise.resolve()

/** A zeroed `Int32Array` over a new `SharedArrayBuffer`, exactly big enough. */
function createSharedArray() {
  return new Int32Array(new SharedArrayBuffer(SLOT_COUNT * Int32Array.BYTES_PER_ELEMENT))
}

function describe(value) {
  if (value === null) return 'null'
  switch (typeof value) {
    case 'undefined':
      return 'undefined'
    case 'string':
      return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`
    case 'function':
      return 'a function'
    case 'object':
      return 'an object'
    case 'symbol':
      return 'a symbol'
    default:
      return `${typeof value} ${String(value)}`
  }
}

function requireNumber(name, value) {
  if (typeof value !== 'number') {
    throw new TypeError(`${name} must be a number, got ${describe(value)}`)
  }
  return value
}

function optionalFunction(name, value) {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'function') {
    throw new TypeError(`${name} must be a function, got ${describe(value)}`)
  }
  return value
}

/**
 * A circuit breaker whose whole state lives in a shared `Int32Array`: every
 * breaker built over the same buffer, in any worker thread, shares one
 * failure count, one state and one half-open probe.
 */
class CircuitBreaker {
  #array
  #id
  #failureThreshold
  #resetTimeout
  #openFallback
  #failureFallback
  #onSuccess
  #onFailure

  constructor(sharedArray, failureThreshold, resetTimeout, openFallback, failureFallback) {
    if (typeof failureThreshold === 'object' && failureThreshold !== null) {
      const options = failureThreshold
      failureThreshold = options.failureThreshold
      resetTimeout = options.resetTimeout
      openFallback = options.openFallback
      failureFallback = options.failureFallback
    }
    this.#failureThreshold = requireNumber(
      'failureThreshold',
      failureThreshold ?? DEFAULT_FAILURE_THRESHOLD,
    )
    this.#resetTimeout = requireNumber('resetTimeout', resetTimeout ?? DEFAULT_RESET_TIMEOUT)
    this.#openFallback = optionalFunction('openFallback', openFallback)
    this.#failureFallback = optionalFunction('failureFallback', failureFallback)
    // Validates the array (TypeError / RangeError) and the numbers (RangeError).
    const id = native.create(this, sharedArray, this.#failureThreshold, this.#resetTimeout)
    this.#id = id
    this.#array = sharedArray
    if (this.#failureFallback === undefined) {
      // The caller gets the task's own promise; these only observe it.
      this.#onSuccess = () => {
        native.success(id)
      }
      this.#onFailure = () => {
        native.failure(id)
      }
    } else {
      this.#onSuccess = (value) => {
        native.success(id)
        return value
      }
      this.#onFailure = (error) => {
        native.failure(id)
        return this.#failureFallback(error)
      }
    }
  }

  /**
   * Runs `task` if the circuit lets it through. Resolves with its value, or
   * with a fallback's; rejects with its error or a `CircuitOpenError`.
   */
  execute(task) {
    if (typeof task !== 'function') {
      return Promise.reject(new TypeError(`task must be a function, got ${describe(task)}`))
    }
    if (Atomics.load(this.#array, STATE) === CLOSED) {
      return this.#run(task, this.#onSuccess, this.#onFailure)
    }
    return this.#admit(task)
  }

  #admit(task) {
    const decision = native.admit(this.#id)
    if (decision === ADMIT_RUN) return this.#run(task, this.#onSuccess, this.#onFailure)
    if (decision === ADMIT_REJECT) return this.#reject()
    const id = this.#id
    const fallback = this.#failureFallback
    return this.#run(
      task,
      (value) => {
        native.probeResult(id, decision, 1)
        return value
      },
      (error) => {
        native.probeResult(id, decision, 0)
        return fallback === undefined ? undefined : fallback(error)
      },
    )
  }

  // Calls the task and hands its outcome to the handlers. Without a
  // failureFallback the handlers only record, and the caller gets the task's
  // own promise: no second promise to wait through, and a failure reaches
  // the caller without being thrown again. With one, the caller gets the
  // handlers' promise, which resolves with the fallback's result.
  #run(task, onSuccess, onFailure) {
    let result
    try {
      result = task()
    } catch (error) {
      try {
        const fallen = onFailure(error)
        return this.#failureFallback === undefined ? Promise.reject(error) : Promise.resolve(fallen)
      } catch (fallbackError) {
        return Promise.reject(fallbackError)
      }
    }
    const promise = Promise.resolve(result)
    if (this.#failureFallback !== undefined) return promise.then(onSuccess, onFailure)
    promise.then(onSuccess, onFailure)
    return promise
  }

  // Rejects one microtask later: the caller's handler is attached by then,
  // so Node's unhandled-rejection bookkeeping (~1 µs) never starts.
  #reject() {
    if (this.#openFallback === undefined) return RESOLVED.then(throwCircuitOpen)
    try {
      return Promise.resolve(this.#openFallback(circuitOpenError()))
    } catch (fallbackError) {
      return Promise.reject(fallbackError)
    }
  }

  /** `'CLOSED' | 'OPEN' | 'HALF_OPEN'`: `'HALF_OPEN'` as soon as a call would probe. */
  getState() {
    return STATE_NAMES[native.state(this.#id)]
  }

  /** The `SharedArrayBuffer` under the array. */
  getSharedBuffer() {
    return this.#array.buffer
  }

  /** Forces HALF_OPEN in every thread: the next caller, anywhere, probes. */
  transitionToHalfOpen() {
    native.forceHalfOpen(this.#id)
  }

  /** Calls that settled or were rejected, in every thread sharing the buffer. */
  getTotalRequestCount() {
    return native.totals(this.#id).requests
  }

  /** Calls that succeeded, in every thread sharing the buffer. */
  getSuccessCount() {
    return native.totals(this.#id).successes
  }

  /** `Date.now()`-scale time of the last failure anywhere, or 0. */
  getLastFailureTime() {
    return native.totals(this.#id).lastFailureTime
  }

  /** `Date.now()`-scale time of the last success anywhere, or 0. */
  getLastSuccessTime() {
    return native.totals(this.#id).lastSuccessTime
  }

  get failureThreshold() {
    return this.#failureThreshold
  }

  get resetTimeout() {
    return this.#resetTimeout
  }
}

module.exports = {
  CircuitBreaker,
  CircuitBreakerKeys,
  CircuitBreakerStates,
  CircuitOpenError,
  isCircuitOpenError,
  createSharedArray,
  default: CircuitBreaker,
}
