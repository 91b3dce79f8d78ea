'use strict'

// The general path: timeouts, the error filter, slow calls, the window,
// the histogram and per-call events. One call record per call. A breaker
// whose options or listeners need any of these sends every call here; the
// others run CLOSED calls in `execute` itself (breaker.js).

const { performance } = require('node:perf_hooks')
const native = require('./native.js')
const {
  ADMIT_REJECT,
  ADMIT_RUN,
  CircuitBreakerStates,
  MARK_FALLBACK,
  MARK_FILTERED,
  MARK_SLOW,
  MARK_TIMED_OUT,
} = require('./constants.js')
const { DISPOSED, STATE } = require('./slots.js')
const { CircuitTimeoutError, circuitOpenError, disposedError } = require('./errors.js')
const { Deadlines, abortQuietly } = require('./deadlines.js')
const { afterTransition } = require('./watch.js')

const CLOSED = CircuitBreakerStates.CLOSED

class GeneralPath {
  #context
  #config
  #publish
  #recordSuccess
  #deadlines
  // Whether calls are timed (for slow calls or the histogram).
  #timed

  /** `batch` is the breaker's success batch (batching.js). */
  constructor(context, batch) {
    const config = context.config
    this.#context = context
    this.#config = config
    this.#publish = batch.publish
    this.#recordSuccess = batch.recordSuccess
    this.#timed = config.slowCallDuration !== undefined || config.policies.histogram === true
    if (config.timeout !== undefined) {
      this.#deadlines = new Deadlines(config.timeout, (call) => this.#timeOut(call))
    }
    // Whether anyone listens to per-call events; kept by the breaker.
    this.callListeners = false
  }

  // Reads STATE once: CLOSED runs the call, anything else asks the core.
  execute(task) {
    const context = this.#context
    if (context.array === DISPOSED) return Promise.reject(disposedError())
    let ticket = ADMIT_RUN
    if (Atomics.load(context.array, STATE) !== CLOSED) {
      ticket = context.decide()
      if (ticket === ADMIT_REJECT) return this.#rejectGeneral()
    }
    const config = this.#config
    const call = {
      ticket,
      start: this.#timed || this.callListeners || config.timeout !== undefined ? performance.now() : 0,
      bucket: undefined,
      controller: undefined,
      settled: false,
      resolve: undefined,
      reject: undefined,
    }
    const promise = new Promise((resolve, reject) => {
      call.resolve = resolve
      call.reject = reject
    })
    let result
    try {
      if (config.timeout === undefined) {
        result = Promise.resolve(task())
      } else {
        this.#deadlines.add(call)
        if (task.length === 0) {
          result = Promise.resolve(task())
        } else {
          call.controller = new AbortController()
          result = Promise.resolve(task(call.controller.signal))
        }
      }
    } catch (error) {
      this.#settle(call, false, error)
      return promise
    }
    result.then(
      (value) => this.#settle(call, true, value),
      (error) => this.#settle(call, false, error),
    )
    return promise
  }

  #rejectGeneral() {
    const error = circuitOpenError()
    if (this.callListeners) this.#context.emit('reject', error)
    const openFallback = this.#config.openFallback
    if (openFallback === undefined) return Promise.reject(error)
    try {
      const result = openFallback(error)
      if (this.callListeners) this.#context.emit('fallback', result, error)
      return Promise.resolve(result)
    } catch (fallbackError) {
      return Promise.reject(fallbackError)
    }
  }

  #settle(call, ok, outcome) {
    if (call.settled) return // timed out first
    call.settled = true
    this.#deadlines?.delete(call)
    const config = this.#config
    const duration = call.start === 0 ? 0 : performance.now() - call.start
    let marks = config.slowCallDuration !== undefined && duration > config.slowCallDuration ? MARK_SLOW : 0
    if (!ok && config.errorFilter !== undefined) {
      let accepted
      try {
        accepted = Boolean(config.errorFilter(outcome))
      } catch (filterError) {
        this.#finish(call, false, marks, filterError, duration)
        call.reject(filterError)
        return
      }
      if (accepted) {
        // Not a failure of the dependency: counted as a success, and the
        // caller still gets the error (no fallback).
        this.#finish(call, true, marks | MARK_FILTERED, outcome, duration)
        call.reject(outcome)
        return
      }
    }
    if (ok) {
      this.#finish(call, true, marks, outcome, duration)
      call.resolve(outcome)
      return
    }
    if (config.failureFallback !== undefined) marks |= MARK_FALLBACK
    this.#finish(call, false, marks, outcome, duration)
    this.#fallBack(call, outcome)
  }

  #timeOut(call) {
    if (call.settled) return
    call.settled = true
    const timeout = this.#config.timeout
    const error = new CircuitTimeoutError(timeout)
    let marks = MARK_TIMED_OUT | (this.#config.failureFallback === undefined ? 0 : MARK_FALLBACK)
    // A timed-out call lasted at least the timeout: a slow failure like any other.
    const slowAfter = this.#config.slowCallDuration
    if (slowAfter !== undefined && Math.max(timeout, performance.now() - call.start) > slowAfter) marks |= MARK_SLOW
    this.#finish(call, false, marks, error, timeout)
    if (call.controller !== undefined) abortQuietly(call.controller, error)
    this.#fallBack(call, error)
  }

  // The steps every end of a call takes, settled or timed out: its latency
  // into the histogram, its outcome to the core, its event to the listeners
  // ('timeout' before 'failure' for a call that timed out).
  #finish(call, ok, marks, outcome, duration) {
    const context = this.#context
    if (context.array !== DISPOSED && this.#config.policies.histogram === true) {
      native.latency(context.id, Math.min(Math.round(duration * 1000), 0xffffffff))
    }
    this.#report(call, ok, marks)
    if (this.callListeners) {
      if ((marks & MARK_TIMED_OUT) !== 0) context.emit('timeout', outcome, duration)
      context.emit(ok ? 'success' : 'failure', outcome, duration)
    }
  }

  #fallBack(call, error) {
    const failureFallback = this.#config.failureFallback
    if (failureFallback === undefined) {
      call.reject(error)
      return
    }
    try {
      const result = failureFallback(error)
      if (this.callListeners) this.#context.emit('fallback', result, error)
      call.resolve(result)
    } catch (fallbackError) {
      call.reject(fallbackError)
    }
  }

  // Tells the core how a call of the general path ended.
  #report(call, ok, marks) {
    const context = this.#context
    if (context.array === DISPOSED) return
    if (call.ticket !== ADMIT_RUN) {
      context.probeResult(call.ticket, ok ? 1 : 0, marks)
      return
    }
    if (ok && marks === 0) {
      this.#recordSuccess()
      return
    }
    // Successes held back go first, so the window sees calls in order.
    this.#publish(0)
    const code = ok ? native.markedSuccess(context.id, marks) : native.failure(context.id, marks)
    afterTransition(context.array, code)
  }
}

module.exports = { GeneralPath }
