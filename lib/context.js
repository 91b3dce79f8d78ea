'use strict'

// What the parts of one breaker share. The class keeps its fields private;
// the general path, the success batch and the state watch get this object
// instead, built by the constructor.

const native = require('./native.js')
const { ADMIT_RUN, ADMIT_TRANSITION } = require('./constants.js')
const { DISPOSED } = require('./slots.js')
const { afterTransition } = require('./watch.js')

function rethrowLater(error) {
  process.nextTick(() => {
    throw error
  })
}

// Emits on `emitter`; a listener that throws must not turn a call's
// outcome around, nor stop the other listeners' events: its error is
// thrown again on its own, as an uncaught exception. With one argument,
// none gathered into an array (nor `arguments` read).
function emitSafely(emitter, event, payload) {
  try {
    emitter.emit(event, payload)
  } catch (error) {
    rethrowLater(error)
  }
}

class BreakerContext {
  /**
   * Holds the breaker itself: whatever holds the context (a pending call's
   * handlers, a waiting success count, the state watch) keeps the breaker,
   * and so its native handle, alive.
   */
  constructor(breaker, id, array, config) {
    this.breaker = breaker
    this.id = id
    // The array; DISPOSED once disposed.
    this.array = array
    this.config = config
    // The bulkhead of a breaker with maxConcurrent (bulkhead.js), or undefined.
    this.bulkhead = undefined
  }

  // Asks the core whether a call may run; tells other threads' listeners
  // when that made a transition.
  decide() {
    const answer = native.admit(this.id, this.config.openFallback === undefined ? 0 : 1)
    // Without a transition: a ticket (>= 0), ADMIT_RUN or ADMIT_REJECT; with
    // one, ADMIT_TRANSITION more: at least ADMIT_TRANSITION + ADMIT_RUN.
    if (answer < ADMIT_TRANSITION + ADMIT_RUN) return answer
    afterTransition(this.array, 1)
    return answer - ADMIT_TRANSITION
  }

  probeResult(ticket, ok, marks) {
    if (this.array !== DISPOSED) afterTransition(this.array, native.probeResult(this.id, ticket, ok, marks))
  }

  // Emits on the breaker (see emitSafely): the per-call events are emitted
  // on every call that has listeners.
  emit(event, payload) {
    emitSafely(this.breaker, event, payload)
  }

  // A call the breaker admitted and its bulkhead (maxConcurrent) refused:
  // it never ran, so a probe gives its half-open place back, and the
  // breaker counts nothing. Returns the caller's promise.
  refusedByBulkhead(ticket, error) {
    if (ticket >= 0 && this.array !== DISPOSED) native.abandonProbe(this.id, ticket)
    if (this.breaker.listenerCount('bulkheadRejected') > 0) this.emit('bulkheadRejected', error)
    return Promise.reject(error)
  }

  // Calls `listeners` (a copy of an event's listeners, as `emit` would
  // take) with two arguments, as `emit` does, without an arguments array.
  call2(listeners, first, second) {
    const breaker = this.breaker
    try {
      for (let i = 0; i < listeners.length; i++) listeners[i].call(breaker, first, second)
    } catch (error) {
      rethrowLater(error)
    }
  }

  // What the state watch (watch.js) reads and emits through.
  // `native.transition` answers `{ status: 'ready', state, time, threadId, pid }`,
  // `{ status: 'pending' }` or `{ status: 'gone' }`.
  readTransition(generation) {
    return this.array === DISPOSED ? undefined : native.transition(this.id, generation)
  }

  emitState(event, payload) {
    if (this.array !== DISPOSED) this.emit(event, payload)
  }
}

module.exports = { BreakerContext, emitSafely }
