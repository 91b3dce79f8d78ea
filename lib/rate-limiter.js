'use strict'

// The rate limiter: `limit` calls per `interval` ms among every thread and
// process sharing one array, by the generic cell rate algorithm in one
// 64-bit word on the host's monotonic clock (core/src/rate_limiter.rs).

const native = require('./native.js')
const { describe } = require('./describe.js')
const { readOption } = require('./options.js')
const { rateLimitedError } = require('./limit-errors.js')
const { checkArray, sharedArray, openLimitFile } = require('./limit-memory.js')

function readRate(options) {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object, got ${describe(options)}`)
  }
  const rate = {
    limit: readOption(options, 'limit'),
    interval: readOption(options, 'interval'),
    burst: readOption(options, 'burst') ?? 1,
    maxWait: readOption(options, 'maxWait') ?? 0,
  }
  for (const [name, value] of Object.entries(rate)) {
    if (typeof value !== 'number') throw new TypeError(`options.${name} must be a number, got ${describe(value)}`)
  }
  return rate
}

/**
 * At most `limit` calls per `interval` ms (plus `burst - 1`) among every
 * rate limiter over the same array, in every thread and process.
 */
class RateLimiter {
  #array
  #limit
  #interval
  #burst
  #maxWait
  #name

  /**
   * @param array an Int32Array over a SharedArrayBuffer of at least
   *   `RateLimiter.arrayLength()` elements, zeroed or already a rate
   *   limiter of the same `limit`, `interval` and `burst`.
   */
  constructor(array, options) {
    checkArray(array, 'RateLimiter')
    const rate = readRate(options)
    const name = readOption(options, 'name') ?? 'default'
    if (typeof name !== 'string') throw new TypeError(`options.name must be a string, got ${describe(name)}`)
    native.rateLimiterClaim(array, rate.limit, rate.interval, rate.burst)
    if (!(rate.maxWait >= 0 && rate.maxWait <= 2147483647)) {
      throw new RangeError(`options.maxWait must be a number of milliseconds from 0 to 2147483647, got ${rate.maxWait}`)
    }
    this.#array = array
    this.#limit = rate.limit
    this.#interval = rate.interval
    this.#burst = rate.burst
    this.#maxWait = rate.maxWait
    this.#name = name
  }

  /** Length (in Int32Array elements) of the array a rate limiter needs. */
  static arrayLength() {
    return native.rateLimiterArrayLength()
  }

  /** A zeroed Int32Array over a new SharedArrayBuffer, as long as `arrayLength()`. */
  static createSharedArray() {
    return sharedArray(RateLimiter.arrayLength())
  }

  /**
   * A rate limiter over the rate limiter file at `path`, shared by every
   * process that opens it (options `create`, `mode`, `followSymlinks` as
   * for `openBreakerFile`, besides the limiter's own).
   */
  static fromFile(path, options) {
    readRate(options)
    return new RateLimiter(openLimitFile(path, options, 'rateLimiter', RateLimiter.arrayLength()), options)
  }

  /**
   * True, and the call counts against the limit, if a call may go now;
   * false (counted as a rejection) if it would have to wait.
   */
  tryAcquire() {
    return native.rateLimiterAcquire(this.#array, this.#limit, this.#interval, this.#burst, 0) >= 0
  }

  /**
   * Runs `task` when the limit lets it: at once, or after waiting up to
   * `maxWait` ms. Rejects with a `RateLimitedError` (its `retryAfter` says
   * how long it would have had to wait) without calling the task when the
   * wait would be longer.
   */
  execute(task) {
    if (typeof task !== 'function') {
      return Promise.reject(new TypeError(`task must be a function, got ${describe(task)}`))
    }
    let delay
    try {
      delay = native.rateLimiterAcquire(this.#array, this.#limit, this.#interval, this.#burst, this.#maxWait)
    } catch (error) {
      // The array no longer holds this rate limiter (another thread or
      // process wrote over it): a rejection, never a synchronous throw.
      return Promise.reject(error)
    }
    if (delay < 0) return Promise.reject(rateLimitedError(-1 - delay))
    if (delay === 0) return run(task)
    return new Promise((resolve) => setTimeout(resolve, Math.ceil(delay))).then(() => task())
  }

  /** Counts over every thread and process: `admitted`, `delayed` (of them, waited first), `rejected`. */
  getStats() {
    return {
      name: this.#name,
      limit: this.#limit,
      interval: this.#interval,
      burst: this.#burst,
      ...native.rateLimiterStats(this.#array, this.#limit, this.#interval, this.#burst),
    }
  }

  get name() {
    return this.#name
  }
}

function run(task) {
  try {
    return Promise.resolve(task())
  } catch (error) {
    return Promise.reject(error)
  }
}

module.exports = { RateLimiter }
