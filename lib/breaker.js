'use strict'

// The class: its CLOSED fast path, the admission of other calls, the
// overrides, the counters and the listeners. Every state transition is
// decided in Rust; `execute` reads the STATE slot to take the CLOSED path
// without a native call before the task runs. The general path (options or
// per-call listeners that need more than the fast path) is in general.js.

const { EventEmitter } = require('node:events')
const { threadId } = require('node:worker_threads')
const native = require('./native.js')
const { ADMIT_REJECT, ADMIT_RUN, CircuitBreakerStates, MARK_FALLBACK, MAX_ISOLATIONS, STATE_NAMES } = require('./constants.js')
const { DISPOSED, STATE } = require('./slots.js')
const { describe } = require('./describe.js')
const { OPEN_REJECTION, circuitOpenError, disposedError } = require('./errors.js')
const { arrayLength, createSharedArray, needsGeneralPath, readOptions } = require('./options.js')
const { openBreakerFile } = require('./files.js')
const { publishWaiting, successBatch } = require('./batching.js')
const { afterTransition, unwatch, watch } = require('./watch.js')
const { BreakerContext } = require('./context.js')
const { GeneralPath } = require('./general.js')
const { statsObject } = require('./stats.js')
const fleetMode = require('./fleet.js')
const { prometheusText } = require('./metrics.js')
const { breakerBulkhead } = require('./bulkhead.js')

const CLOSED = CircuitBreakerStates.CLOSED
// A breaker's checked options, for the package's own modules (the dashboard
// shows the thresholds): set by the class below, not exported from index.js.
let configOf
// Set while `fromFile` builds its throwaway breaker (options check only).
let checkingOnly = false
const STATE_EVENTS = ['open', 'halfOpen', 'close']
const CALL_EVENTS = ['success', 'failure', 'reject', 'timeout', 'fallback']

/**
 * A circuit breaker whose whole state lives in a shared `Int32Array`: every
 * breaker built over the same buffer, in any worker thread, shares one
 * failure count, one state and one half-open probe.
 */
class CircuitBreaker extends EventEmitter {
  static {
    configOf = (breaker) => breaker.#config
  }

  // What `execute` reads: the array, DISPOSED once disposed.
  #gate
  // The id, the array and the options, shared with the general path, the
  // success batch and the state watch.
  #context
  #failureThreshold
  #resetTimeout
  #openFallback
  #failureFallback
  #onSuccess
  #onFailure
  #config
  // The general path, and whether the options or listeners need it.
  #calls
  #general = false
  #stateListeners = false
  // Fleet mode (fleet.js): { op, stats, leave }, or undefined.
  #fleet
  // The bulkhead (maxConcurrent), or undefined.
  #bulkhead

  constructor(sharedArray, failureThreshold, resetTimeout, openFallback, failureFallback) {
    super()
    const config = readOptions(failureThreshold, resetTimeout, openFallback, failureFallback)
    this.#config = config
    this.#failureThreshold = config.failureThreshold
    this.#resetTimeout = config.resetTimeout
    this.#openFallback = config.openFallback
    this.#failureFallback = config.failureFallback
    const fleet = fleetMode.readFleetOptions(config.fleet, config)
    // Validates the array (TypeError / RangeError) and the numbers (RangeError).
    const id = native.create(
      this,
      sharedArray,
      config.failureThreshold,
      config.resetTimeout,
      config.policies,
      threadId,
    )
    // Every handler below names `context`, which holds `this`: while a call
    // is pending or a count is waiting, the breaker (and so its native
    // handle) cannot be collected.
    const context = new BreakerContext(this, id, sharedArray, config)
    this.#context = context
    if (config.policies.maxConcurrent !== undefined) {
      // Its permits live after the breaker's slots; sizes differing from
      // the other breakers' over the array are a RangeError.
      try {
        this.#bulkhead = breakerBulkhead(sharedArray, config)
      } catch (error) {
        native.dispose(this)
        throw error
      }
    }
    context.bulkhead = this.#bulkhead
    if (fleet !== undefined && !checkingOnly) this.#fleet = fleetMode.joinFleet(context, fleet)
    const batch = successBatch(context)
    this.#calls = new GeneralPath(context, batch)
    const recordSuccess = batch.recordSuccess
    const publish = batch.publish
    const failureMarks = this.#failureFallback === undefined ? 0 : MARK_FALLBACK
    // With a failure-rate window, successes held back go first, so the
    // window sees calls in order. Without one they need not: a success held
    // back never ends a run of failures (one that does is reported at
    // once), so a failure counts the same after them or before.
    const failed =
      config.policies.failureRateThreshold === undefined
        ? () => {
            if (context.array === DISPOSED) return
            afterTransition(context.array, native.failure(context.id, failureMarks))
          }
        : () => {
            if (context.array === DISPOSED) return
            publish(0)
            afterTransition(context.array, native.failure(context.id, failureMarks))
          }
    if (this.#failureFallback === undefined) {
      // The caller gets the task's own promise; these only observe it.
      this.#onSuccess = recordSuccess
      this.#onFailure = failed
    } else {
      this.#onSuccess = (value) => {
        recordSuccess()
        return value
      }
      this.#onFailure = (error) => {
        failed()
        return this.#failureFallback(error)
      }
    }
    this.#general = needsGeneralPath(config, false)
    this.#gate = sharedArray
  }

  /**
   * A breaker over the breaker file at `path` (see `openBreakerFile`, whose
   * `create` and `mode` options it takes besides the breaker's own).
   */
  static fromFile(path, options) {
    // The breaker's own options are checked before any file is created.
    const breakerOptions = typeof options === 'object' && options !== null ? options : undefined
    // The throwaway breaker checks `fleet` too, but joins nothing.
    checkingOnly = true
    try {
      new CircuitBreaker(createSharedArray(breakerOptions), options ?? {}).dispose()
    } finally {
      checkingOnly = false
    }
    return new CircuitBreaker(openBreakerFile(path, options), options ?? {})
  }

  /** See the exported `arrayLength`. */
  static arrayLength(options) {
    return arrayLength(options)
  }

  /**
   * Runs `task` if the circuit lets it through. Resolves with its value, or
   * with a fallback's; rejects with its error or a `CircuitOpenError`.
   */
  execute(task) {
    if (typeof task !== 'function') {
      return Promise.reject(new TypeError(`task must be a function, got ${describe(task)}`))
    }
    // The general path reads STATE itself. It is entered from here, not
    // through a helper: one stack frame fewer for the errors its tasks make.
    if (this.#general) return this.#calls.execute(task)
    if (Atomics.load(this.#gate, STATE) !== CLOSED) return this.#admit(task)
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

  /**
   * `fn` behind this breaker: a function that calls `fn` through `execute`
   * with the arguments and `this` it was called with, and returns the
   * promise `execute` returns.
   */
  wrap(fn) {
    this.#brand()
    if (typeof fn !== 'function') throw new TypeError(`fn must be a function, got ${describe(fn)}`)
    const breaker = this
    // A method, so that it gets its caller's `this` and is not a constructor;
    // named after `fn` for stack traces and logs.
    const { [fn.name]: wrapped } = {
      [fn.name](...args) {
        return breaker.execute(() => fn.apply(this, args))
      },
    }
    Object.defineProperty(wrapped, 'length', { value: fn.length })
    return wrapped
  }

  #admit(task) {
    const context = this.#context
    if (context.array === DISPOSED) return Promise.reject(disposedError())
    const decision = context.decide()
    if (decision === ADMIT_RUN) return this.#run(task, this.#onSuccess, this.#onFailure)
    if (decision === ADMIT_REJECT) return this.#reject()
    // The handlers name `this`, so a pending probe keeps its breaker (and so
    // its native handle) alive until it reports.
    return this.#run(
      task,
      (value) => {
        this.#context.probeResult(decision, 1, 0)
        return value
      },
      (error) => {
        this.#context.probeResult(decision, 0, this.#failureFallback === undefined ? 0 : MARK_FALLBACK)
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
    return this.#context.array.buffer
  }

  /** Forces HALF_OPEN in every thread: the next caller, anywhere, probes. */
  transitionToHalfOpen() {
    afterTransition(this.#context.array, native.forceHalfOpen(this.#live()))
  }

  /**
   * Holds the breaker OPEN for every thread sharing it until the returned
   * handle is released (by every isolation taken) or `reset()` is called.
   * Throws a RangeError when MAX_ISOLATIONS are held already.
   */
  isolate() {
    const taken = native.isolate(this.#live())
    if (taken === null) {
      throw new RangeError(
        `isolations held at once must be at most ${MAX_ISOLATIONS}, and ${MAX_ISOLATIONS} are held: release one or reset() first`,
      )
    }
    afterTransition(this.#context.array, taken.transition)
    this.#fleet?.op(fleetMode.OP_ISOLATE)
    const epoch = taken.epoch
    let released = false
    const release = () => {
      if (released) return
      // Released through a disposed breaker, the isolation would hold every
      // thread forever: say so. (`reset()` through any breaker ends it.)
      const code = native.releaseIsolation(this.#live(), epoch)
      released = true
      afterTransition(this.#context.array, code)
      this.#fleet?.op(fleetMode.OP_RELEASE)
    }
    const handle = { release }
    if (typeof Symbol.dispose === 'symbol') handle[Symbol.dispose] = release
    return handle
  }

  /**
   * Closes the breaker for every thread and starts over: the run of
   * failures, the window, the backoff and every isolation are cleared.
   * Lifetime counts (`getStats()`) are kept.
   */
  reset() {
    this.#reset()
  }

  /** Same as `reset()`. */
  close() {
    this.#reset()
  }

  #reset() {
    afterTransition(this.#context.array, native.reset(this.#live()))
    this.#fleet?.op(fleetMode.OP_RESET)
  }

  /** Lets every call through in every thread, counting as usual but never opening. */
  disable() {
    afterTransition(this.#context.array, native.setDisabled(this.#live(), true))
    this.#fleet?.op(fleetMode.OP_DISABLE)
  }

  /** Undoes `disable()` for every thread. */
  enable() {
    afterTransition(this.#context.array, native.setDisabled(this.#live(), false))
    this.#fleet?.op(fleetMode.OP_ENABLE)
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

  /**
   * Everything the breaker knows, summed over every thread sharing it, as a
   * plain object. Another thread's successes reach it by the end of that
   * thread's tick.
   */
  getStats() {
    return this.#stats()
  }

  #stats() {
    publishWaiting()
    const stats = statsObject(this.#config.name, native.stats(this.#live()))
    stats.fleet = this.#fleet?.stats() ?? null
    stats.bulkhead = this.#bulkhead?.counts() ?? null
    return stats
  }

  /** `getStats()`, for `JSON.stringify`. */
  toJSON() {
    return this.#stats()
  }

  /** This breaker's statistics in the Prometheus text format, labelled with its `name`. */
  metrics() {
    return prometheusText([this.#stats()])
  }

  get name() {
    return this.#config.name
  }

  #live() {
    if (this.#context.array === DISPOSED) throw disposedError()
    return this.#context.id
  }

  // Throws a TypeError unless `this` is a CircuitBreaker (before EventEmitter
  // code touches whatever `this` is).
  #brand() {
    return this.#config
  }

  // Keeps the general path and the state watch in step with the listeners.
  #listenersChanged() {
    const context = this.#context
    if (context.array === DISPOSED) return
    const listening = {}
    // The listeners as they are now (`once` ones are their wrappers, which
    // remove themselves through `removeListener`, which lands here again).
    for (const event of CALL_EVENTS) {
      const listeners = this.rawListeners(event)
      listening[event] = listeners.length > 0 ? listeners : null
    }
    const calls = CALL_EVENTS.some((event) => listening[event] !== null)
    const states = STATE_EVENTS.some((event) => this.listenerCount(event) > 0)
    this.#calls.listening = listening
    this.#general = needsGeneralPath(context.config, calls)
    if (states !== this.#stateListeners) {
      this.#stateListeners = states
      if (states) watch(context, context.array)
      else unwatch(context, context.array)
    }
  }

  on(event, listener) {
    this.#brand()
    super.on(event, listener)
    this.#listenersChanged()
    return this
  }

  addListener(event, listener) {
    return this.on(event, listener)
  }

  prependListener(event, listener) {
    this.#brand()
    super.prependListener(event, listener)
    this.#listenersChanged()
    return this
  }

  off(event, listener) {
    this.#brand()
    super.off(event, listener)
    this.#listenersChanged()
    return this
  }

  removeListener(event, listener) {
    return this.off(event, listener)
  }

  removeAllListeners(event) {
    this.#brand()
    // EventEmitter tells "all events" from the event `undefined` by the
    // number of arguments.
    if (arguments.length === 0) super.removeAllListeners()
    else super.removeAllListeners(event)
    this.#listenersChanged()
    return this
  }

  /**
   * Frees this breaker's native side now rather than when it is collected:
   * its handle, its hold on the array and, over a breaker file, its share of
   * the mapping. The shared state is left as it is (other breakers over the
   * buffer go on). Afterwards `execute` rejects and the other methods throw a
   * `TypeError`; calls still running are not counted. Idempotent.
   */
  dispose() {
    const context = this.#context
    if (context.array === DISPOSED) return
    publishWaiting()
    if (this.#stateListeners) unwatch(context, context.array)
    this.#stateListeners = false
    this.#fleet?.leave()
    context.array = DISPOSED
    this.#gate = DISPOSED
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

module.exports = { CircuitBreaker, configOf }
