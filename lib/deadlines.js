'use strict'

const { performance } = require('node:perf_hooks')

// ---------------------------------------------------------------------------
// Per-call timeouts: one timer per breaker, not per call. With one timeout
// for all its calls, a breaker's pending calls time out in the order they
// started: they are kept in that order in a list threaded through the call
// records themselves (no Set, no bucket: adding and removing a call is a
// few field writes). The timer waits for the oldest pending call's deadline;
// when it fires it times out every call whose deadline has passed and waits
// again for the oldest left, if any. So a call times out never early and,
// on an idle event loop, at most 1 ms late (timers have 1 ms granularity).
// A task that declares a parameter gets an AbortSignal of its own, aborted
// when it times out; one that declares none gets none (making a signal costs
// ~4 µs on Node 20, far more than the rest of a call: docs/benchmarks.md).
// ---------------------------------------------------------------------------

class Deadlines {
  /** `expire(call)` is called for each call whose deadline passed, oldest first. */
  constructor(timeout, expire) {
    this.timeout = timeout
    this.expire = expire
    // The pending calls, oldest first, linked by their `prev` and `next`.
    this.head = null
    this.tail = null
    this.timer = undefined
  }

  /** Adds a call whose `start` (performance.now()) is set: the newest. */
  add(call) {
    call.prev = this.tail
    call.next = null
    if (this.tail === null) this.head = call
    else this.tail.next = call
    this.tail = call
    if (this.timer === undefined) this.arm(this.timeout)
  }

  /** Removes a pending call (settled before its deadline). */
  delete(call) {
    const { prev, next } = call
    if (prev === null) this.head = next
    else prev.next = next
    if (next === null) this.tail = prev
    else next.prev = prev
    call.prev = null
    call.next = null
  }

  arm(ms) {
    this.timer = setTimeout(() => this.fire(), Math.max(1, Math.ceil(ms)))
    this.timer.unref()
  }

  fire() {
    this.timer = undefined
    const now = performance.now()
    // `expire` runs user code (fallbacks, listeners, abort handlers) that
    // may start calls: those join the tail with later deadlines.
    let call
    while ((call = this.head) !== null && call.start + this.timeout <= now) {
      this.delete(call)
      this.expire(call)
    }
    if (this.head !== null && this.timer === undefined) this.arm(this.head.start + this.timeout - now)
  }
}

// A throwing 'abort' listener of a task's is the task's problem, not the
// timer's: it is reported as an uncaught exception, after the rest is done.
function abortQuietly(controller, reason) {
  try {
    controller.abort(reason)
  } catch (error) {
    process.nextTick(() => {
      throw error
    })
  }
}

module.exports = { Deadlines, abortQuietly }
