'use strict'

// The JavaScript face of the breaker. Hand-written; `binding.js` is generated
// by `napi build` and loads the native addon. Every state transition is
// decided in Rust; this file reads the STATE slot to take the CLOSED path
// without a native call before the task runs, converts arguments and shapes
// promises.

const native = loadNative()

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

function loadNative() {
  try {
    return require('./binding.js')
  } catch (cause) {
    const platform = `${process.platform}-${process.arch}`
    throw new Error(
      `circuit-breaker-js: no native binary could be loaded for ${platform}. ` +
        'Its prebuilt binary comes as an optional dependency: reinstall without ' +
        '--no-optional / --omit=optional, or, with Rust installed, build it from ' +
        'source with `npm run build` in the package folder.',
      { cause },
    )
  }
}

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

const canSilenceStacks = Object.getOwnPropertyDescriptor(Error, 'stackTraceLimit')?.writable === true

function circuitOpenError() {
  if (!canSilenceStacks) return new CircuitOpenError()
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  const error = new CircuitOpenError()
  Error.stackTraceLimit = limit
  return error
}

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
    this.#onSuccess = (value) => {
      native.success(id)
      return value
    }
    this.#onFailure = (error) => {
      native.failure(id)
      return this.#fallBack(error)
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
    return this.#run(
      task,
      (value) => {
        native.probeResult(id, decision, 1)
        return value
      },
      (error) => {
        native.probeResult(id, decision, 0)
        return this.#fallBack(error)
      },
    )
  }

  #run(task, onSuccess, onFailure) {
    let result
    try {
      result = task()
    } catch (error) {
      try {
        return Promise.resolve(onFailure(error))
      } catch (fallbackError) {
        return Promise.reject(fallbackError)
      }
    }
    return Promise.resolve(result).then(onSuccess, onFailure)
  }

  #fallBack(error) {
    if (this.#failureFallback === undefined) throw error
    return this.#failureFallback(error)
  }

  #reject() {
    const error = circuitOpenError()
    if (this.#openFallback === undefined) return Promise.reject(error)
    try {
      return Promise.resolve(this.#openFallback(error))
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
