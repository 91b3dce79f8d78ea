'use strict'

const { performance } = require('node:perf_hooks')

// ---------------------------------------------------------------------------
// Per-call timeouts without a clock read per call: one timer per breaker
// that files calls into buckets, and one that times them out.
//
// A call joins the open bucket (a field write, no clock read). The first
// call to join an empty open bucket arms the closer: `tick` ms later (a
// sixteenth of the timeout, rounded up, between 1 and 100 ms) it reads the
// clock once and closes the bucket with the deadline `now + timeout`. Every
// call in it began before that read, so none times out early; each began at
// most a tick (plus any delay of the event loop) before it, so none times
// out more than that late. The pending calls sit, oldest first, in a list
// threaded through the call records themselves (adding and removing one is
// a few field writes); their buckets' deadlines follow the same order. The
// waiter waits for the oldest closed bucket's deadline, times out every
// call whose deadline has passed, and waits again for the oldest left.
//
// A task that declares a parameter gets an AbortSignal of its own, aborted
// when it times out; one that declares none gets none (making a signal costs
// ~3 µs on Node 20, far more than the rest of a call: docs/benchmarks.md).
// ---------------------------------------------------------------------------

const OPEN = Infinity

/** The tick of a timeout: how late at most (on an idle event loop) a call times out. */
function tickOf(timeout) {
  return Math.min(Math.max(Math.ceil(timeout / 16), 1), 100)
}

class Deadlines {
  /** `expire(call)` is called for each call whose deadline passed, oldest first. */
  constructor(timeout, expire) {
    this.timeout = timeout
    this.tick = tickOf(timeout)
    this.expire = expire
    // The pending calls, oldest first, linked by their `prev` and `next`.
    this.head = null
    this.tail = null
    // The bucket new calls join: its deadline is OPEN until it closes.
    this.open = { deadline: OPEN }
    this.closer = undefined
    this.waiter = undefined
  }

  /** Adds a call that begins now: the newest. */
  add(call) {
    call.bucket = this.open
    call.prev = this.tail
    call.next = null
    if (this.tail === null) this.head = call
    else this.tail.next = call
    this.tail = call
    if (this.closer === undefined) {
      this.closer = setTimeout(() => this.close(), this.tick)
      this.closer.unref()
    }
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

  close() {
    this.closer = undefined
    // Only pending calls matter: a bucket whose calls all settled stays
    // open for the next ones (and the next one to join arms the closer).
    if (this.tail === null || this.tail.bucket !== this.open) return
    const now = performance.now()
    this.open.deadline = now + this.timeout
    this.open = { deadline: OPEN }
    if (this.waiter === undefined) this.wait(now)
  }

  wait(now) {
    const head = this.head
    // Calls only in the open bucket: its closing arms the waiter.
    if (head === null || head.bucket.deadline === OPEN) return
    this.waiter = setTimeout(() => this.fire(), Math.max(1, Math.ceil(head.bucket.deadline - now)))
    this.waiter.unref()
  }

  fire() {
    this.waiter = undefined
    const now = performance.now()
    // `expire` runs user code (fallbacks, listeners, abort handlers) that
    // may start calls: those join the open bucket, with later deadlines.
    let call
    while ((call = this.head) !== null && call.bucket.deadline <= now) {
      this.delete(call)
      this.expire(call)
    }
    if (this.waiter === undefined) this.wait(now)
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
