'use strict'

// Reading and type-checking the options a breaker is built with (ranges
// are checked by the native side), and sizing the shared array they need.

const native = require('./native.js')
const { describe } = require('./describe.js')
const { SLOT_COUNT } = require('./slots.js')

const DEFAULT_FAILURE_THRESHOLD = 5
const DEFAULT_RESET_TIMEOUT = 30000

function requireNumber(name, value) {
  if (typeof value !== 'number') {
    throw new TypeError(`${name} must be a number, got ${describe(value)}`)
  }
  return value
}

// Reads one key of an options object (undefined when there is none); a
// getter or proxy trap that throws becomes a TypeError naming the option,
// with the original as its cause.
function readOption(options, name) {
  if (options === undefined || options === null) return undefined
  try {
    return options[name]
  } catch (cause) {
    throw new TypeError(`options.${name} could not be read: ${messageOf(cause)}`, { cause })
  }
}

function messageOf(error) {
  try {
    return String(error instanceof Error ? error.message : error)
  } catch {
    return 'its getter threw'
  }
}

function optionalFunction(name, value) {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'function') {
    throw new TypeError(`${name} must be a function, got ${describe(value)}`)
  }
  return value
}

function optionalNumber(name, value) {
  return value === undefined || value === null ? undefined : requireNumber(name, value)
}

function optionalBoolean(name, value) {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'boolean') {
    throw new TypeError(`${name} must be a boolean, got ${describe(value)}`)
  }
  return value
}

function positiveMs(name, value) {
  if (value === undefined) return undefined
  if (!(value > 0 && value <= 2147483647)) {
    throw new RangeError(`${name} must be a number of milliseconds above 0 and at most 2147483647, got ${value}`)
  }
  return value
}

const MAX_MS = 2147483647

// A number of milliseconds from 1 to MAX_MS, `fallback` when not given.
function msOption(options, name, fallback, prefix = 'options.') {
  const value = readOption(options, name) ?? fallback
  if (typeof value !== 'number') throw new TypeError(`${prefix}${name} must be a number, got ${describe(value)}`)
  if (!(value >= 1 && value <= MAX_MS)) {
    throw new RangeError(`${prefix}${name} must be a number of milliseconds from 1 to ${MAX_MS}, got ${value}`)
  }
  return value
}

// Reads and type-checks every option; ranges are checked by the native side.
function readOptions(failureThreshold, resetTimeout, openFallback, failureFallback) {
  let options
  if (typeof failureThreshold === 'object' && failureThreshold !== null) {
    options = failureThreshold
    failureThreshold = readOption(options, 'failureThreshold')
    resetTimeout = readOption(options, 'resetTimeout')
    openFallback = readOption(options, 'openFallback')
    failureFallback = readOption(options, 'failureFallback')
  }
  const read = (name) => readOption(options, name)
  const explicitThreshold = failureThreshold !== undefined && failureThreshold !== null
  const config = {
    failureThreshold: requireNumber('failureThreshold', failureThreshold ?? DEFAULT_FAILURE_THRESHOLD),
    resetTimeout: requireNumber('resetTimeout', resetTimeout ?? DEFAULT_RESET_TIMEOUT),
    openFallback: optionalFunction('openFallback', openFallback),
    failureFallback: optionalFunction('failureFallback', failureFallback),
    name: read('name') ?? 'default',
    fleet: read('fleet'),
    timeout: positiveMs('timeout', optionalNumber('timeout', read('timeout'))),
    errorFilter: optionalFunction('errorFilter', read('errorFilter')),
    slowCallDuration: positiveMs('slowCallDuration', optionalNumber('slowCallDuration', read('slowCallDuration'))),
    policies: {
      halfOpenMaxCalls: optionalNumber('halfOpenMaxCalls', read('halfOpenMaxCalls')),
      successThreshold: optionalNumber('successThreshold', read('successThreshold')),
      maxResetTimeout: optionalNumber('maxResetTimeout', read('maxResetTimeout')),
      backoffMultiplier: optionalNumber('backoffMultiplier', read('backoffMultiplier')),
      failureRateThreshold: optionalNumber('failureRateThreshold', read('failureRateThreshold')),
      minimumCalls: optionalNumber('minimumCalls', read('minimumCalls')),
      windowSize: optionalNumber('windowSize', read('windowSize')),
      windowIsTime: undefined,
      windowBuckets: optionalNumber('windowBuckets', read('windowBuckets')),
      consecutiveToo: undefined,
      histogram: optionalBoolean('histogram', read('histogram')),
      maxConcurrent: optionalNumber('maxConcurrent', read('maxConcurrent')),
      maxQueue: optionalNumber('maxQueue', read('maxQueue')),
    },
    // The bulkhead's own (maxConcurrent): checked with or without it.
    queueTimeout: msOption(options, 'queueTimeout', 10000, ''),
    lease: msOption(options, 'lease', 60000, ''),
  }
  if (typeof config.name !== 'string') {
    throw new TypeError(`name must be a string, got ${describe(config.name)}`)
  }
  const windowType = read('windowType') ?? 'count'
  if (windowType !== 'count' && windowType !== 'time') {
    throw new TypeError(`windowType must be 'count' or 'time', got ${describe(windowType)}`)
  }
  config.policies.windowIsTime = windowType === 'time'
  config.policies.consecutiveToo = explicitThreshold && config.policies.failureRateThreshold !== undefined
  return config
}

/**
 * The length (in `Int32Array` elements) of the array a breaker with these
 * options needs: `Object.keys(CircuitBreakerKeys).length` unless the options
 * ask for a failure-rate window, a latency histogram or a bulkhead
 * (`maxConcurrent`). Throws like the constructor for options it would refuse.
 */
function arrayLength(options) {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError(`options must be an object, got ${describe(options)}`)
  }
  const config = readOptions(options ?? {})
  return native.arrayLength(config.failureThreshold, config.resetTimeout, config.policies)
}

/**
 * A zeroed `Int32Array` over a new `SharedArrayBuffer`, exactly as long as a
 * breaker with `options` needs (see `arrayLength`).
 */
function createSharedArray(options) {
  const length = options === undefined ? SLOT_COUNT : arrayLength(options)
  return new Int32Array(new SharedArrayBuffer(length * Int32Array.BYTES_PER_ELEMENT))
}

// Whether calls must take the general path (general.js) rather than the
// CLOSED fast path: because of the options, or
// because someone listens to per-call events. A failure-rate window alone
// does not: the fast path records successes and failures exactly as the
// general path does (failures publish the thread's held-back successes
// first), and the core does the rest.
function needsGeneralPath(config, callListeners) {
  return (
    callListeners ||
    config.timeout !== undefined ||
    config.errorFilter !== undefined ||
    config.slowCallDuration !== undefined ||
    config.policies.histogram === true ||
    config.policies.maxConcurrent !== undefined
  )
}

module.exports = {
  readOption,
  msOption,
  readOptions,
  arrayLength,
  createSharedArray,
  needsGeneralPath,
}
