'use strict'

// Per-thread success batching: a success that changes no state only bumps
// a count in this thread; the count reaches shared memory at the end of the
// tick, or every SUCCESS_BATCH successes. With the histogram, each call's
// latency is staged in this thread the same way and reaches the shared
// histogram with the successes (one native call for up to SUCCESS_BATCH of
// them).

const native = require('./native.js')
const { DISPOSED, FAILURE_COUNT } = require('./slots.js')

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

/**
 * The success batch of one breaker: `recordSuccess()` counts a success of a
 * call admitted while CLOSED, `recordLatency(ms)` stages a call's duration
 * for the histogram, `publish(endsRun)` hands what is waiting to the core.
 * They name `context`, which holds the breaker: while a count is waiting,
 * the breaker (and so its native handle) cannot be collected.
 */
function successBatch(context) {
  // Successes of this thread not yet added to the shared counters. A
  // success that changes no state (the run of failures is already 0) only
  // bumps `pending`; the count reaches shared memory, with the time of the
  // last success, at the end of the tick or every SUCCESS_BATCH successes.
  let pending = 0
  let queued = false
  // Durations (µs) staged for the histogram, made on first use.
  let latencies
  let staged = 0
  // Publishes the waiting successes. `endsRun` 1: the newest of them found
  // a run of failures to end; 0: they only add to the counts (each found
  // the run at 0 when it happened, so failures counted since still count).
  const publish = (endsRun) => {
    if (context.array === DISPOSED) return
    if (staged !== 0) {
      const count = staged
      staged = 0
      native.latencies(context.id, latencies, count)
    }
    if (pending !== 0) {
      const count = pending
      pending = 0
      native.success(context.id, count, endsRun)
    }
  }
  const publishAtTickEnd = () => {
    queued = false
    publish(0)
  }
  const queue = () => {
    queued = true
    if (waiting.push(publishAtTickEnd) === 1) process.nextTick(publishWaiting)
  }
  const recordSuccess = () => {
    pending++
    if (Atomics.load(context.array, FAILURE_COUNT) !== 0) {
      publish(1)
    } else if (pending >= SUCCESS_BATCH) {
      publish(0)
    } else if (!queued) {
      queue()
    }
  }
  // Called before the call's outcome is recorded, so a success's latency
  // goes with it.
  const recordLatency = (ms) => {
    if (latencies === undefined) latencies = new Uint32Array(SUCCESS_BATCH)
    latencies[staged++] = Math.min(Math.round(ms * 1000), 0xffffffff)
    if (staged === SUCCESS_BATCH) {
      staged = 0
      if (context.array !== DISPOSED) native.latencies(context.id, latencies, SUCCESS_BATCH)
    } else if (!queued) {
      queue()
    }
  }
  return { publish, recordSuccess, recordLatency }
}

module.exports = { successBatch, publishWaiting }
