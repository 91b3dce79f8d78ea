'use strict'

const { performance } = require('node:perf_hooks')

// ---------------------------------------------------------------------------
// Per-call timeouts: one timer per breaker, not per call. Calls that start
// within GRAIN_MS of each other share a bucket with one deadline, GRAIN_MS
// after the first of them plus the timeout (so a call times out at most
// GRAIN_MS late, never early). With one timeout for all, buckets are in
// deadline order, so the timer only ever waits for the first one. A task
// that declares a parameter gets an AbortSignal of its own, aborted when it
// times out; one that declares none gets none (making a signal costs ~4 µs
// on Node 20, far more than the rest of a call).
// ---------------------------------------------------------------------------
const GRAIN_MS = 1

class Deadlines {
  constructor(timeout, expire) {
    this.timeout = timeout
    this.expire = expire
    this.buckets = []
    this.head = 0
    this.timer = undefined
  }

  add(call) {
    let bucket = this.buckets[this.buckets.length - 1]
    if (bucket === undefined || call.start >= bucket.closes) {
      const closes = call.start + Math.min(GRAIN_MS, this.timeout)
      bucket = { closes, deadline: closes + this.timeout, calls: new Set() }
      this.buckets.push(bucket)
      if (this.timer === undefined) this.arm(bucket.deadline - call.start)
    }
    bucket.calls.add(call)
    call.bucket = bucket
  }

  delete(call) {
    call.bucket.calls.delete(call)
  }

  arm(ms) {
    this.timer = setTimeout(() => this.fire(), Math.max(1, Math.ceil(ms)))
    this.timer.unref()
  }

  fire() {
    this.timer = undefined
    const now = performance.now()
    while (this.head < this.buckets.length) {
      const bucket = this.buckets[this.head]
      if (bucket.deadline > now) {
        this.arm(bucket.deadline - now)
        break
      }
      this.buckets[this.head++] = undefined
      for (const call of bucket.calls) this.expire(call)
      bucket.calls.clear()
    }
    if (this.head === this.buckets.length) {
      this.buckets = []
      this.head = 0
    } else if (this.head >= 1024) {
      this.buckets = this.buckets.slice(this.head)
      this.head = 0
    }
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
