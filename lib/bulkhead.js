'use strict'

// The bulkhead: at most `maxConcurrent` calls in flight among every thread
// and process sharing one array, an optional wait queue, and permits of
// holders that died coming back after a lease. The memory and every rule
// are in Rust (core/src/bulkhead.rs); this class takes a free permit and
// releases it itself, one compare-and-swap each on the permit's HOLDER
// word (even: free, odd: held), exactly as the core's `try_acquire` and
// `release` do, so the common call makes no native call at all.

const { EventEmitter } = require('node:events')
const { threadId } = require('node:worker_threads')
const { performance } = require('node:perf_hooks')
const native = require('./native.js')
const { describe } = require('./describe.js')
const { msOption, readOption } = require('./options.js')
const { FULL_REJECTION, bulkheadFullError } = require('./limit-errors.js')
const { checkArray, sharedArray, openLimitFile, regionOf } = require('./limit-memory.js')
const { emitSafely } = require('./context.js')
const { BULKHEAD_METRICS } = require('./metrics.js')

const LAYOUT = native.bulkheadLayout()
const PERMIT_BASE = LAYOUT.permitBase
const PERMIT_STRIDE = LAYOUT.permitStride
const QUEUED = LAYOUT.queued
const WAKE = LAYOUT.wake

const DEFAULT_LEASE = 60000
const DEFAULT_QUEUE_TIMEOUT = 10000
// How often a waiter over a breaker file (which cannot be waited on) looks
// for a free permit.
const POLL_MS = 20
// A permit token from the binding: index * 2^32 + HOLDER word.
const TOKEN_SCALE = 2 ** 32

function readSizes(options) {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object, got ${describe(options)}`)
  }
  const maxConcurrent = readOption(options, 'maxConcurrent')
  const maxQueue = readOption(options, 'maxQueue') ?? 0
  for (const [name, value] of [['maxConcurrent', maxConcurrent], ['maxQueue', maxQueue]]) {
    if (typeof value !== 'number') throw new TypeError(`options.${name} must be a number, got ${describe(value)}`)
  }
  return { maxConcurrent, maxQueue }
}

function readMs(options, name, fallback) {
  return msOption(options, name, fallback)
}

/**
 * At most `maxConcurrent` calls in flight among every bulkhead over the same
 * array, in every thread and process. Emits `'rejected'` (the
 * `BulkheadFullError`) for every call it refuses.
 */
class Bulkhead extends EventEmitter {
  #array
  #maxQueue
  #queueTimeout
  #lease
  #name
  #shared
  // The permit this thread tries first: the one it released last, and the
  // HOLDER word it left there (even: free).
  #hint
  #free = 0
  // The permit of the call running on the fast path (at most one per
  // bulkhead: while it is held, #take fails), or -1, and its HOLDER word:
  // its release is one shared function, no closure made per call.
  #taken = -1
  #takenWord = 0
  #releaseTaken = () => {
    const index = this.#taken
    this.#taken = -1
    this.#release(index, this.#takenWord)
  }

  /**
   * @param array an Int32Array over a SharedArrayBuffer of at least
   *   `Bulkhead.arrayLength(options)` elements, zeroed or already a bulkhead
   *   of the same `maxConcurrent` and `maxQueue`.
   */
  constructor(array, options) {
    super()
    checkArray(array, 'Bulkhead')
    const { maxConcurrent, maxQueue } = readSizes(options)
    this.#queueTimeout = readMs(options, 'queueTimeout', DEFAULT_QUEUE_TIMEOUT)
    this.#lease = readMs(options, 'lease', DEFAULT_LEASE)
    const name = readOption(options, 'name') ?? 'default'
    if (typeof name !== 'string') throw new TypeError(`options.name must be a string, got ${describe(name)}`)
    this.#name = name
    native.bulkheadClaim(array, maxConcurrent, maxQueue)
    this.#array = array
    this.#maxQueue = maxQueue
    this.#shared = array.buffer instanceof SharedArrayBuffer
    this.#hint = threadId % maxConcurrent
  }

  /** Length (in Int32Array elements) of the array a bulkhead with these options needs. */
  static arrayLength(options) {
    const { maxConcurrent, maxQueue } = readSizes(options)
    return native.bulkheadArrayLength(maxConcurrent, maxQueue)
  }

  /** A zeroed Int32Array over a new SharedArrayBuffer, as long as `arrayLength(options)`. */
  static createSharedArray(options) {
    return sharedArray(Bulkhead.arrayLength(options))
  }

  /**
   * A bulkhead over the bulkhead file at `path`, shared by every process
   * that opens it (options `create`, `mode`, `followSymlinks` as for
   * `openBreakerFile`, besides the bulkhead's own).
   */
  static fromFile(path, options) {
    const length = Bulkhead.arrayLength(options)
    readMs(options, 'queueTimeout', DEFAULT_QUEUE_TIMEOUT)
    readMs(options, 'lease', DEFAULT_LEASE)
    return new Bulkhead(openLimitFile(path, options, 'bulkhead', length), options)
  }

  /**
   * Runs `task` once it holds a permit, and releases the permit when the
   * task settles. Rejects with a `BulkheadFullError` when every permit is
   * held and the queue is full (or `maxQueue` is 0), or after waiting
   * `queueTimeout` ms in the queue.
   */
  execute(task) {
    if (typeof task !== 'function') {
      return Promise.reject(new TypeError(`task must be a function, got ${describe(task)}`))
    }
    const word = this.#take()
    if (word === 0) {
      try {
        return this.#acquireSlowly(task)
      } catch (error) {
        // The array no longer holds this bulkhead (another thread or process
        // wrote over it): a rejection, as for any other refusal.
        return Promise.reject(error)
      }
    }
    if (this.#taken !== -1) return this.#run(task, this.#releaser(this.#hint, word))
    this.#taken = this.#hint
    this.#takenWord = word
    return this.#run(task, this.#releaseTaken)
  }

  /**
   * Takes a permit if one is free (or reclaimable) now, without waiting:
   * returns a handle whose `release()` gives it back (once; also
   * `[Symbol.dispose]`), or null, counted as a rejection.
   */
  tryAcquire() {
    const word = this.#take()
    if (word !== 0) return this.#handle(this.#hint, word)
    const token = native.bulkheadAcquire(this.#array, this.#hint, this.#lease, false)
    if (token < 0) return null
    return this.#handle(Math.floor(token / TOKEN_SCALE), token % TOKEN_SCALE | 0)
  }

  // The core's `try_acquire`, for the permit this thread released last:
  // its HOLDER word from even `w` to `w + 1`. Expects the word it left
  // there, so the common case is one compare-and-swap (an Atomics call
  // costs more than the arithmetic around it); else tries once with the
  // word found. Returns the word written (odd), or 0 if the permit is held.
  #take() {
    const array = this.#array
    const slot = PERMIT_BASE + this.#hint * PERMIT_STRIDE
    const expected = this.#free
    const found = Atomics.compareExchange(array, slot, expected, (expected + 1) | 0)
    if (found === expected) return (expected + 1) | 0
    if ((found & 1) === 0 && Atomics.compareExchange(array, slot, found, (found + 1) | 0) === found) return (found + 1) | 0
    return 0
  }

  #handle(index, word) {
    let held = true
    const release = () => {
      if (!held) return
      held = false
      this.#release(index, word)
    }
    const handle = { release }
    if (typeof Symbol.dispose === 'symbol') handle[Symbol.dispose] = release
    return handle
  }

  // Runs `task`, calling `release` once when it settles or throws.
  #run(task, release) {
    let promise
    try {
      promise = Promise.resolve(task())
    } catch (error) {
      release()
      return Promise.reject(error)
    }
    promise.then(release, release)
    return promise
  }

  #runToken(task, token) {
    return this.#run(task, this.#releaser(Math.floor(token / TOKEN_SCALE), token % TOKEN_SCALE | 0))
  }

  // The core's `release`: HOLDER from `word` (odd) to `word + 1`; then, if
  // calls wait, WAKE moves and one waiter of this process is woken (others,
  // over a breaker file, look every POLL_MS).
  #release(index, word) {
    const array = this.#array
    if (Atomics.compareExchange(array, PERMIT_BASE + index * PERMIT_STRIDE, word, (word + 1) | 0) !== word) {
      // Reclaimed after its lease: it is someone else's permit now. Counted
      // if the array still holds a bulkhead: a release runs when a task
      // settles, where a throw would be an unhandled rejection.
      try {
        native.bulkheadCountLost(array)
      } catch {
        // Another thread or process wrote over the array: nothing to count in.
      }
      return
    }
    this.#hint = index
    this.#free = (word + 1) | 0
    if (Atomics.load(array, QUEUED) > 0) {
      Atomics.add(array, WAKE, 1)
      if (this.#shared) Atomics.notify(array, WAKE, 1)
    }
  }

  #acquireSlowly(task) {
    const token = native.bulkheadAcquire(this.#array, this.#hint, this.#lease, this.#maxQueue > 0)
    if (token >= 0) return this.#runToken(task, token)
    if (token === -1) {
      // Nobody listening: the error is made only when the caller's handler runs.
      if (this.listenerCount('rejected') === 0) return Promise.resolve(FULL_REJECTION)
      return this.#refused(bulkheadFullError())
    }
    return this.#queue(-2 - token).then(
      (permit) => this.#runToken(task, permit),
      (error) => this.#refused(error),
    )
  }

  // Waits in queue place `place` for a permit: resolves with its token, or
  // rejects with a BulkheadFullError after queueTimeout.
  #queue(place) {
    const deadline = performance.now() + this.#queueTimeout
    return new Promise((resolve, reject) => this.#wait(place, deadline, resolve, reject))
  }

  // A call refused: the event, and the caller's rejection.
  #refused(error) {
    if (this.listenerCount('rejected') > 0) emitSafely(this, 'rejected', error)
    return Promise.reject(error)
  }

  /**
   * For a breaker with `maxConcurrent` (general.js), once the breaker has
   * admitted a call with `ticket`: calls `run(wrapped, ticket)` as soon as
   * the call holds a permit, where `wrapped` calls `task` (with the abort
   * signal, if `task` takes one) and releases the permit when the task
   * settles or throws. Refused (full, or queueTimeout), returns
   * `breaker.refusedByBulkhead(ticket, error)` (context.js).
   */
  enter(task, ticket, run, breaker) {
    const word = this.#take()
    if (word === 0) return this.#enterSlowly(task, ticket, run, breaker)
    if (this.#taken !== -1) return run(this.#releasing(task, this.#releaser(this.#hint, word)), ticket)
    this.#taken = this.#hint
    this.#takenWord = word
    return run(this.#releasing(task, this.#releaseTaken), ticket)
  }

  #enterSlowly(task, ticket, run, breaker) {
    let token
    try {
      token = native.bulkheadAcquire(this.#array, this.#hint, this.#lease, this.#maxQueue > 0)
    } catch (error) {
      return Promise.reject(error)
    }
    const enterWith = (permit) => run(this.#releasing(task, this.#releaser(Math.floor(permit / TOKEN_SCALE), permit % TOKEN_SCALE | 0)), ticket)
    if (token >= 0) return enterWith(token)
    const refuse = (error) => {
      if (this.listenerCount('rejected') > 0) emitSafely(this, 'rejected', error)
      return breaker.refusedByBulkhead(ticket, error)
    }
    if (token === -1) return refuse(bulkheadFullError())
    return this.#queue(-2 - token).then(enterWith, refuse)
  }

  // Releases permit `index` (HOLDER `word`).
  #releaser(index, word) {
    return () => this.#release(index, word)
  }

  // `task`, calling `release` once when the task settles or throws.
  #releasing(task, release) {
    const call = (signal) => {
      let promise
      try {
        promise = Promise.resolve(signal === undefined ? task() : task(signal))
      } catch (error) {
        release()
        throw error
      }
      promise.then(release, release)
      return promise
    }
    // Read as the breaker's general path reads it: a `task` that is no
    // function, or whose `length` throws (a revoked proxy), fails when
    // called, as a rejection, not here as a synchronous throw.
    let takesSignal = false
    try {
      takesSignal = task.length !== 0
    } catch {}
    return takesSignal ? call : () => call(undefined)
  }

  // A waiter holds a queue place (QUEUED counts it): it reads WAKE, tries
  // for a permit again, and only then waits for WAKE to move, so a permit
  // released after it queued is never slept through (core/src/bulkhead.rs,
  // "Waking"; tests/loom_bulkhead.rs).
  #wait(place, deadline, resolve, reject) {
    const array = this.#array
    const seen = Atomics.load(array, WAKE)
    let token
    try {
      token = native.bulkheadRetry(array, this.#hint, this.#lease, place)
    } catch (error) {
      reject(error)
      return
    }
    if (token >= 0) {
      resolve(token)
      return
    }
    const remaining = deadline - performance.now()
    if (remaining <= 0) {
      try {
        native.bulkheadLeave(array, place, true)
      } catch (error) {
        // The array was written over since the retry above (this runs in a
        // timer: a throw would end the process).
        reject(error)
        return
      }
      reject(bulkheadFullError(this.#queueTimeout))
      return
    }
    const again = () => this.#wait(place, deadline, resolve, reject)
    if (!this.#shared) {
      setTimeout(again, Math.min(POLL_MS, Math.ceil(remaining)))
      return
    }
    const waited = Atomics.waitAsync(array, WAKE, seen, Math.ceil(remaining))
    if (!waited.async) {
      setImmediate(again)
      return
    }
    // A pending waitAsync does not keep the event loop alive; this timer
    // (the deadline) does, and whichever comes first goes on.
    let pending = true
    const once = () => {
      if (!pending) return
      pending = false
      clearTimeout(timer)
      again()
    }
    const timer = setTimeout(once, Math.ceil(remaining))
    waited.value.then(once)
  }

  /**
   * Counts over every thread and process sharing the array: `inUse`
   * permits held now, `queued` calls waiting, `rejected` calls refused
   * (`queueTimeouts` of them after waiting), `reclaimed` permits taken back
   * after their lease, `lostReleases` releases that found theirs reclaimed.
   */
  getStats() {
    return { name: this.#name, ...native.bulkheadStats(this.#array) }
  }

  /** `getStats()` without the name: what a breaker's `getStats().bulkhead` is. */
  counts() {
    return native.bulkheadStats(this.#array)
  }

  /** The stats in the Prometheus text format. */
  metrics() {
    return bulkheadMetrics([this])
  }

  /** The name given in the options ('default'). */
  get name() {
    return this.#name
  }
}

/** Prometheus text for `bulkheads`, one series per bulkhead, labelled with its name. */
function bulkheadMetrics(bulkheads) {
  const stats = bulkheads.map((b) => b.getStats())
  const lines = []
  for (const [key, metric, type, help] of BULKHEAD_METRICS) {
    lines.push(`# HELP ${metric} ${help}`, `# TYPE ${metric} ${type}`)
    for (const s of stats) lines.push(`${metric}{name="${escapeLabel(s.name)}"} ${s[key]}`)
  }
  return `${lines.join('\n')}\n`
}

/**
 * The bulkhead of a breaker with `maxConcurrent` (its checked `config`),
 * over `array`, the breaker's: the region after the breaker's own slots
 * (and its window and histogram), as `arrayLength` sized it.
 */
function breakerBulkhead(array, config) {
  const { maxConcurrent, maxQueue = 0 } = config.policies
  const length = native.bulkheadArrayLength(maxConcurrent, maxQueue)
  const end = native.arrayLength(config.failureThreshold, config.resetTimeout, config.policies)
  const { queueTimeout, lease, name } = config
  return new Bulkhead(regionOf(array, end - length, end), { maxConcurrent, maxQueue, queueTimeout, lease, name })
}

function escapeLabel(value) {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

module.exports = { Bulkhead, bulkheadMetrics, breakerBulkhead }
