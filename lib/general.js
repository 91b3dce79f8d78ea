'use strict'

// The general path: timeouts, the error filter, slow calls, the histogram
// and per-call events. A breaker whose options or listeners need any of
// these sends every call here; the others (a failure-rate window included)
// run CLOSED calls in `execute` itself (breaker.js).
//
// Each call pays only for what its breaker's features need:
// - The clock is read once when the call starts and once when it ends, if
//   anything needs its duration (slow calls, the histogram, a listener of
//   `success`, `failure` or `timeout`): one read at each end, shared by
//   every feature. A timeout needs none (deadlines.js).
// - Only a timeout has to settle the caller's promise before the task
//   settles: only then is there a promise of our own (and a call record).
//   With a failureFallback or an errorFilter the caller gets the promise of
//   the handlers (`then`), whose result they decide; otherwise the caller
//   gets the task's own promise, which the handlers only observe.
// - A CLOSED call that needs no clock shares the breaker's two handlers: no
//   closure per call.
// - An event nobody listens to is not emitted (nor are its arguments made).
// - A success's latency goes to the success batch with the success: one
//   native crossing per batch (batching.js), none per call.

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
const NOBODY = Object.freeze({ success: null, failure: null, timeout: null, reject: null, fallback: null })

class GeneralPath {
  #context
  #config
  #publish
  #recordSuccess
  #recordLatency
  #deadlines
  // Whether the handlers decide the caller's outcome (a failureFallback or
  // an errorFilter) rather than only observe the task's promise.
  #decides
  // Whether calls are timed for the options (slow calls, the histogram).
  #timed
  #histogram
  // Whether a call's duration is needed: #timed, or a listener that gets it.
  #measured
  // Which per-call events have listeners.
  #listening = NOBODY
  // The handlers of CLOSED calls that need no clock, shared by all of them.
  #succeeded
  #failed
  // The bulkhead of a breaker with maxConcurrent (bulkhead.js), and what
  // it calls once a call holds a permit.
  #bulkhead
  #admittedCall

  /** `batch` is the breaker's success batch (batching.js). */
  constructor(context, batch) {
    const config = context.config
    this.#context = context
    this.#config = config
    this.#publish = batch.publish
    this.#recordSuccess = batch.recordSuccess
    this.#recordLatency = batch.recordLatency
    this.#histogram = config.policies.histogram === true
    this.#timed = config.slowCallDuration !== undefined || this.#histogram
    this.#decides = config.failureFallback !== undefined || config.errorFilter !== undefined
    if (config.timeout !== undefined) {
      this.#deadlines = new Deadlines(config.timeout, (call) => this.#timeOut(call))
    }
    this.#measured = this.#timed
    this.#succeeded = (value) => this.#ended(ADMIT_RUN, 0, true, value)
    this.#failed = (error) => this.#ended(ADMIT_RUN, 0, false, error)
    this.#bulkhead = context.bulkhead
    this.#admittedCall = (task, ticket) => this.#admitted(task, ticket)
  }

  /**
   * The listeners of each per-call event, `{ success, failure, timeout,
   * reject, fallback }`: an array (a copy), or null when it has none.
   */
  set listening(events) {
    this.#listening = events
    this.#measured = this.#timed || events.success !== null || events.failure !== null || events.timeout !== null
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
    // maxConcurrent: the breaker admitted the call; now a permit.
    if (this.#bulkhead !== undefined) return this.#bulkhead.enter(task, ticket, this.#admittedCall, context)
    return this.#admitted(task, ticket)
  }

  // A call the breaker admitted (holding a permit, with maxConcurrent).
  #admitted(task, ticket) {
    if (this.#deadlines !== undefined) return this.#executeWithTimeout(task, ticket)
    const start = this.#measured ? performance.now() : 0
    let result
    try {
      result = Promise.resolve(task())
    } catch (error) {
      return this.#thrown(ticket, start, error)
    }
    let succeeded = this.#succeeded
    let failed = this.#failed
    if (ticket !== ADMIT_RUN) {
      succeeded = (value) => this.#ended(ticket, start, true, value)
      failed = (error) => this.#ended(ticket, start, false, error)
    } else if (start !== 0) {
      succeeded = (value) => this.#timedSuccess(start, value)
      failed = (error) => this.#ended(ADMIT_RUN, start, false, error)
    }
    if (this.#decides) return result.then(succeeded, failed)
    result.then(succeeded, failed)
    return result
  }

  // A timed CLOSED call succeeded: what #ended and #finish would do, in one
  // step for the common case (no slow-call check), the histogram's and the
  // listeners' (a few ns a call).
  #timedSuccess(start, value) {
    if (this.#config.slowCallDuration !== undefined) return this.#ended(ADMIT_RUN, start, true, value)
    const duration = performance.now() - start
    if (this.#context.array !== DISPOSED) {
      if (this.#histogram) this.#recordLatency(duration)
      this.#recordSuccess()
    }
    const listeners = this.#listening.success
    if (listeners !== null) this.#context.call2(listeners, value, duration)
    return value
  }

  // A task that threw instead of returning a promise.
  #thrown(ticket, start, error) {
    if (!this.#decides) {
      this.#ended(ticket, start, false, error)
      return Promise.reject(error)
    }
    try {
      return Promise.resolve(this.#ended(ticket, start, false, error))
    } catch (outcome) {
      return Promise.reject(outcome)
    }
  }

  // With a timeout the caller's promise is our own: the timer may settle it
  // before the task does. The call record is also the deadline list's node.
  #executeWithTimeout(task, ticket) {
    const call = {
      ticket,
      // The deadline needs no clock read (deadlines.js): only a duration does.
      start: this.#measured ? performance.now() : 0,
      bucket: undefined,
      controller: undefined,
      settled: false,
      resolve: undefined,
      reject: undefined,
      prev: null,
      next: null,
    }
    const promise = new Promise((resolve, reject) => {
      call.resolve = resolve
      call.reject = reject
    })
    let result
    try {
      this.#deadlines.add(call)
      if (task.length === 0) {
        result = Promise.resolve(task())
      } else {
        call.controller = new AbortController()
        result = Promise.resolve(task(call.controller.signal))
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

  // The task of a call with a timeout settled: unless it timed out first,
  // the caller's promise gets what the handlers decide.
  #settle(call, ok, outcome) {
    if (call.settled) return // timed out first
    call.settled = true
    this.#deadlines.delete(call)
    let value
    try {
      value =
        ok && call.start !== 0 && call.ticket === ADMIT_RUN
          ? this.#timedSuccess(call.start, outcome)
          : this.#ended(call.ticket, call.start, ok, outcome, true)
    } catch (error) {
      call.reject(error)
      return
    }
    call.resolve(value)
  }

  // A call ended (without timing out). Returns what the caller's promise
  // resolves with, or throws what it rejects with; observing only (no
  // fallback, no filter, no timeout: `decides` false), it returns nothing.
  #ended(ticket, start, ok, outcome, decides = this.#decides) {
    const config = this.#config
    const duration = start !== 0 && this.#measured ? performance.now() - start : 0
    let marks = config.slowCallDuration !== undefined && duration > config.slowCallDuration ? MARK_SLOW : 0
    if (!ok && config.errorFilter !== undefined) {
      let accepted
      try {
        accepted = Boolean(config.errorFilter(outcome))
      } catch (filterError) {
        this.#finish(ticket, false, marks, filterError, duration)
        throw filterError
      }
      if (accepted) {
        // Not a failure of the dependency: counted as a success, and the
        // caller still gets the error (no fallback).
        this.#finish(ticket, true, marks | MARK_FILTERED, outcome, duration)
        throw outcome
      }
    }
    if (ok) {
      this.#finish(ticket, true, marks, outcome, duration)
      return outcome
    }
    if (config.failureFallback !== undefined) marks |= MARK_FALLBACK
    this.#finish(ticket, false, marks, outcome, duration)
    if (!decides) return undefined
    return this.#fallBack(outcome)
  }

  #timeOut(call) {
    if (call.settled) return
    call.settled = true
    const config = this.#config
    const timeout = config.timeout
    const error = new CircuitTimeoutError(timeout)
    let marks = MARK_TIMED_OUT | (config.failureFallback === undefined ? 0 : MARK_FALLBACK)
    // A timed-out call lasted at least the timeout: a slow failure like any other.
    const slowAfter = config.slowCallDuration
    if (slowAfter !== undefined && Math.max(timeout, performance.now() - call.start) > slowAfter) marks |= MARK_SLOW
    this.#finish(call.ticket, false, marks, error, timeout)
    if (call.controller !== undefined) abortQuietly(call.controller, error)
    let value
    try {
      value = this.#fallBack(error)
    } catch (outcome) {
      call.reject(outcome)
      return
    }
    call.resolve(value)
  }

  // The steps every end of a call takes, settled or timed out: its latency
  // into the histogram, its outcome to the core, its event to the listeners
  // ('timeout' before 'failure' for a call that timed out).
  #finish(ticket, ok, marks, outcome, duration) {
    const context = this.#context
    if (context.array === DISPOSED) return this.#emitEnd(ok, marks, outcome, duration)
    if (this.#histogram) this.#recordLatency(duration)
    if (ticket !== ADMIT_RUN) {
      context.probeResult(ticket, ok ? 1 : 0, marks)
    } else if (ok && marks === 0) {
      this.#recordSuccess()
    } else {
      // Successes held back go first, so the window sees calls in order.
      this.#publish(0)
      const code = ok ? native.markedSuccess(context.id, marks) : native.failure(context.id, marks)
      afterTransition(context.array, code)
    }
    this.#emitEnd(ok, marks, outcome, duration)
  }

  #emitEnd(ok, marks, outcome, duration) {
    const listening = this.#listening
    if ((marks & MARK_TIMED_OUT) !== 0 && listening.timeout !== null) this.#context.call2(listening.timeout, outcome, duration)
    const listeners = ok ? listening.success : listening.failure
    if (listeners !== null) this.#context.call2(listeners, outcome, duration)
  }

  // What the caller gets for a failure: the fallback's result, or the error
  // thrown again.
  #fallBack(error) {
    const failureFallback = this.#config.failureFallback
    if (failureFallback === undefined) throw error
    const result = failureFallback(error)
    if (this.#listening.fallback !== null) this.#context.call2(this.#listening.fallback, result, error)
    return result
  }

  #rejectGeneral() {
    const error = circuitOpenError()
    if (this.#listening.reject !== null) this.#context.emit('reject', error)
    const openFallback = this.#config.openFallback
    if (openFallback === undefined) return Promise.reject(error)
    try {
      const result = openFallback(error)
      if (this.#listening.fallback !== null) this.#context.call2(this.#listening.fallback, result, error)
      return Promise.resolve(result)
    } catch (fallbackError) {
      return Promise.reject(fallbackError)
    }
  }
}

module.exports = { GeneralPath }
