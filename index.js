'use strict'

// The JavaScript face of the breaker. Hand-written; `binding.js` is generated
// by `napi build` and loads the native addon. Every state transition is
// decided in Rust; this file reads the STATE slot to take the CLOSED path
// without a native call before the task runs, converts arguments and shapes
// promises.

const fs = require('node:fs')
const { fileURLToPath } = require('node:url')
const { threadId } = require('node:worker_threads')
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
const FAILURE_COUNT = CircuitBreakerKeys.FAILURE_COUNT
const CLOSED = CircuitBreakerStates.CLOSED
// What `native.admit` answers besides a probe ticket (>= 0).
const ADMIT_RUN = -2
const ADMIT_REJECT = -1

const DEFAULT_FAILURE_THRESHOLD = 5
const DEFAULT_RESET_TIMEOUT = 30000
// A thread publishes its successes to the shared counters at the end of the
// current tick, or as soon as this many are waiting, whichever comes first.
const SUCCESS_BATCH = 256

// The publishers of this thread's breakers that have successes waiting, and
// the one end-of-tick callback that runs them all. Reading counters runs
// them at once, so a thread always reads all of its own calls.
let waiting = []
function publishWaiting() {
  const publishers = waiting
  waiting = []
  for (let i = 0; i < publishers.length; i++) publishers[i]()
}
// A thread that exits (`process.exit()` included) publishes first: that
// matters for breaker files, which outlive the process.
process.on('exit', publishWaiting)

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
 * An `Int32Array` over the slots of the breaker file at `path`, mapped
 * shared: every process (and thread) that opens the same file and builds a
 * breaker over the array shares one breaker. Creates the file (mode 0o600
 * unless `mode` says otherwise) when it does not exist and `create` is not
 * false; several processes may race to create it, and all end up on the
 * same file. A file that is not exactly a breaker file of this layout is
 * refused and left untouched.
 */
function openBreakerFile(path, options) {
  const where = filePath(path)
  const create = readOption(options, 'create') ?? true
  const mode = readOption(options, 'mode') ?? 0o600
  if (typeof create !== 'boolean') {
    throw new TypeError(`options.create must be a boolean, got ${describe(create)}`)
  }
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw typeof mode === 'number'
      ? new RangeError(`options.mode must be an integer from 0 to 0o7777, got ${mode}`)
      : new TypeError(`options.mode must be a number, got ${describe(mode)}`)
  }
  let fd
  // Open, or create; a file that another process linked into place and
  // removed again in between sends us round once more.
  for (let attempt = 1; fd === undefined; attempt++) {
    try {
      fd = fs.openSync(where, 'r+')
    } catch (error) {
      if (error.code !== 'ENOENT' || !create) throw error
      try {
        fd = createBreakerFile(where, mode)
      } catch (createError) {
        if (createError.code === 'ENOENT' && createError.path === where && attempt < 3) continue
        // A missing folder: say so about the path asked for, not the temporary one.
        throw createError.code === 'ENOENT' ? error : createError
      }
    }
  }
  try {
    return native.mapFile(fd)
  } catch (error) {
    if (error?.code !== 'ERR_CIRCUIT_BREAKER_FILE') throw error
    const refused = new Error(`circuit-breaker-js: the file ${where} ${error.message}`)
    refused.code = error.code
    refused.path = where
    throw refused
  } finally {
    fs.closeSync(fd)
  }
}

function filePath(path) {
  if (typeof path === 'string' && path !== '' && !path.includes('\0')) return path
  if (path instanceof URL) return fileURLToPath(path)
  throw new TypeError(`path must be a non-empty string or a file: URL, got ${describe(path)}`)
}

// Writes the whole file under a temporary name and links it into place, so
// nobody ever opens a half-written breaker file. Whoever links first wins;
// the others open the winner's file.
function createBreakerFile(path, mode) {
  const temporary = `${path}.${process.pid}-${threadId}-${Math.random().toString(36).slice(2)}.new`
  const fd = fs.openSync(temporary, 'wx+', mode)
  let keep = false
  try {
    fs.fchmodSync(fd, mode) // exactly `mode`, whatever the umask
    fs.writeSync(fd, native.fileImage())
    try {
      fs.linkSync(temporary, path)
    } catch (error) {
      if (error.code !== 'EEXIST') throw error
      return fs.openSync(path, 'r+')
    }
    keep = true
    return fd
  } finally {
    if (!keep) fs.closeSync(fd)
    try {
      fs.unlinkSync(temporary)
    } catch {
      // Leaves a stray temporary file, not a leaked descriptor.
    }
  }
}

// What a disposed breaker's `execute` reads: never CLOSED, so every call
// takes the path that reports the disposal.
const DISPOSED = new Int32Array(new SharedArrayBuffer(8 * Int32Array.BYTES_PER_ELEMENT))
Atomics.store(DISPOSED, STATE, CircuitBreakerStates.OPEN)

function disposedError() {
  return new TypeError('this circuit breaker was disposed')
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

// Reads one key of an options object (undefined when there is none); a
// getter or proxy trap that throws becomes a TypeError naming the option,
// with the original as its cause.
function readOption(options, name) {
  if (options === undefined || options === null) return undefined
  try {
    return options[name]
  } catch (cause) {
    throw new TypeError(`options.${name} could not be read: ${messageOf(cause)}`, { cause })
  }
}

function messageOf(error) {
  try {
    return String(error instanceof Error ? error.message : error)
  } catch {
    return 'its getter threw'
  }
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
  // The array; DISPOSED once disposed, so `execute` never sees CLOSED.
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
      failureThreshold = readOption(options, 'failureThreshold')
      resetTimeout = readOption(options, 'resetTimeout')
      openFallback = readOption(options, 'openFallback')
      failureFallback = readOption(options, 'failureFallback')
    }
    this.#failureThreshold = requireNumber(
      'failureThreshold',
      failureThreshold ?? DEFAULT_FAILURE_THRESHOLD,
    )
    this.#resetTimeout = requireNumber('resetTimeout', resetTimeout ?? DEFAULT_RESET_TIMEOUT)
    this.#openFallback = optionalFunction('openFallback', openFallback)
    this.#failureFallback = optionalFunction('failureFallback', failureFallback)
    // Validates the array (TypeError / RangeError) and the numbers (RangeError).
    this.#id = native.create(this, sharedArray, this.#failureThreshold, this.#resetTimeout)
    this.#array = sharedArray

    // Successes of this thread not yet added to the shared counters. A
    // success that changes no state (the run of failures is already 0) only
    // bumps `pending`; the count reaches shared memory, with the time of the
    // last success, at the end of the tick or every SUCCESS_BATCH successes.
    // Every handler below names `this`: while a call is pending or a count is
    // waiting, the breaker (and so its native handle) cannot be collected.
    let pending = 0
    let queued = false
    // Publishes the waiting successes. `endsRun` 1: the newest of them found
    // a run of failures to end; 0: they only add to the counts (each found
    // the run at 0 when it happened, so failures counted since still count).
    const publish = (endsRun) => {
      if (pending !== 0 && this.#array !== DISPOSED) {
        const count = pending
        pending = 0
        native.success(this.#id, count, endsRun)
      }
    }
    const publishAtTickEnd = () => {
      queued = false
      publish(0)
    }
    const recordSuccess = () => {
      pending++
      if (Atomics.load(this.#array, FAILURE_COUNT) !== 0) {
        publish(1)
      } else if (pending >= SUCCESS_BATCH) {
        publish(0)
      } else if (!queued) {
        queued = true
        if (waiting.push(publishAtTickEnd) === 1) process.nextTick(publishWaiting)
      }
    }
    if (this.#failureFallback === undefined) {
      // The caller gets the task's own promise; these only observe it.
      this.#onSuccess = recordSuccess
      this.#onFailure = () => {
        if (this.#array !== DISPOSED) native.failure(this.#id)
      }
    } else {
      this.#onSuccess = (value) => {
        recordSuccess()
        return value
      }
      this.#onFailure = (error) => {
        if (this.#array !== DISPOSED) native.failure(this.#id)
        return this.#failureFallback(error)
      }
    }
  }

  /**
   * A breaker over the breaker file at `path` (see `openBreakerFile`, whose
   * `create` and `mode` options it takes besides the breaker's own).
   */
  static fromFile(path, options) {
    // The breaker's own options are checked before any file is created.
    new CircuitBreaker(createSharedArray(), options ?? {}).dispose()
    return new CircuitBreaker(openBreakerFile(path, options), options ?? {})
  }

  /**
   * Runs `task` if the circuit lets it through. Resolves with its value, or
   * with a fallback's; rejects with its error or a `CircuitOpenError`.
   */
  execute(task) {
    if (typeof task !== 'function') {
      return Promise.reject(new TypeError(`task must be a function, got ${describe(task)}`))
    }
    if (Atomics.load(this.#array, STATE) !== CLOSED) return this.#admit(task)
    // CLOSED. The task is called from this frame rather than from a helper:
    // an Error the task makes captures one stack frame fewer, which in V8 is
    // worth ~0.5 µs a failure.
    // Promise.resolve() inside the try: a returned promise whose
    // `constructor` getter throws is a failure of the task, not of execute.
    let promise
    try {
      promise = Promise.resolve(task())
    } catch (error) {
      return this.#settleThrown(error, this.#onFailure)
    }
    if (this.#failureFallback !== undefined) return promise.then(this.#onSuccess, this.#onFailure)
    promise.then(this.#onSuccess, this.#onFailure)
    return promise
  }

  #admit(task) {
    if (this.#array === DISPOSED) return Promise.reject(disposedError())
    const decision = native.admit(this.#id)
    if (decision === ADMIT_RUN) return this.#run(task, this.#onSuccess, this.#onFailure)
    if (decision === ADMIT_REJECT) return this.#reject()
    // The handlers name `this`, so a pending probe keeps its breaker (and so
    // its native handle) alive until it reports.
    return this.#run(
      task,
      (value) => {
        if (this.#array !== DISPOSED) native.probeResult(this.#id, decision, 1)
        return value
      },
      (error) => {
        if (this.#array !== DISPOSED) native.probeResult(this.#id, decision, 0)
        return this.#failureFallback === undefined ? undefined : this.#failureFallback(error)
      },
    )
  }

  // Calls the task and hands its outcome to the handlers. Without a
  // failureFallback the handlers only record, and the caller gets the task's
  // own promise: no second promise to wait through, and a failure reaches
  // the caller without being thrown again. With one, the caller gets the
  // handlers' promise, which resolves with the fallback's result.
  #run(task, onSuccess, onFailure) {
    let promise
    try {
      promise = Promise.resolve(task())
    } catch (error) {
      return this.#settleThrown(error, onFailure)
    }
    if (this.#failureFallback !== undefined) return promise.then(onSuccess, onFailure)
    promise.then(onSuccess, onFailure)
    return promise
  }

  // A task that threw instead of returning a promise.
  #settleThrown(error, onFailure) {
    try {
      const fallen = onFailure(error)
      return this.#failureFallback === undefined ? Promise.reject(error) : Promise.resolve(fallen)
    } catch (fallbackError) {
      return Promise.reject(fallbackError)
    }
  }

  // Rejects a microtask later, when the caller's handler is attached: see
  // OPEN_REJECTION.
  #reject() {
    if (this.#openFallback === undefined) return Promise.resolve(OPEN_REJECTION)
    try {
      return Promise.resolve(this.#openFallback(circuitOpenError()))
    } catch (fallbackError) {
      return Promise.reject(fallbackError)
    }
  }

  /** `'CLOSED' | 'OPEN' | 'HALF_OPEN'`: `'HALF_OPEN'` as soon as a call would probe. */
  getState() {
    return STATE_NAMES[native.state(this.#live())]
  }

  /** The `SharedArrayBuffer` under the array. */
  getSharedBuffer() {
    this.#live()
    return this.#array.buffer
  }

  /** Forces HALF_OPEN in every thread: the next caller, anywhere, probes. */
  transitionToHalfOpen() {
    native.forceHalfOpen(this.#live())
  }

  /** Calls that settled or were rejected, in every thread sharing the buffer. */
  getTotalRequestCount() {
    return this.#totals().requests
  }

  /** Calls that succeeded, in every thread sharing the buffer. */
  getSuccessCount() {
    return this.#totals().successes
  }

  /** `Date.now()`-scale time of the last failure anywhere, or 0. */
  getLastFailureTime() {
    return this.#totals().lastFailureTime
  }

  /** `Date.now()`-scale time of the last success anywhere, or 0. */
  getLastSuccessTime() {
    return this.#totals().lastSuccessTime
  }

  // This thread's own successes are published first, so a thread always
  // reads its own calls; other threads' arrive by the end of their tick.
  #totals() {
    publishWaiting()
    return native.totals(this.#live())
  }

  #live() {
    if (this.#array === DISPOSED) throw disposedError()
    return this.#id
  }

  /**
   * Frees this breaker's native side now rather than when it is collected:
   * its handle, its hold on the array and, over a breaker file, its share of
   * the mapping. The shared state is left as it is (other breakers over the
   * buffer go on). Afterwards `execute` rejects and the other methods throw a
   * `TypeError`; calls still running are not counted. Idempotent.
   */
  dispose() {
    if (this.#array === DISPOSED) return
    publishWaiting()
    this.#array = DISPOSED
    native.dispose(this)
  }

  get failureThreshold() {
    return this.#failureThreshold
  }

  get resetTimeout() {
    return this.#resetTimeout
  }
}

if (typeof Symbol.dispose === 'symbol') {
  CircuitBreaker.prototype[Symbol.dispose] = CircuitBreaker.prototype.dispose
}

module.exports = {
  CircuitBreaker,
  CircuitBreakerKeys,
  CircuitBreakerStates,
  CircuitOpenError,
  isCircuitOpenError,
  createSharedArray,
  openBreakerFile,
  default: CircuitBreaker,
}
