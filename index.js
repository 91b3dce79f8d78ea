'use strict'

// The package's entry point: it only re-exports. The facade lives in lib/,
// one file per responsibility:
//
//   breaker.js    the class: the CLOSED fast path, admission, overrides, listeners
//   general.js    the general path: one call record per call (timeouts, filter, events)
//   context.js    what the parts of one breaker share (id, array, options)
//   batching.js   per-thread success batching
//   watch.js      state-change events in every thread; afterTransition()
//   deadlines.js  per-call timeouts, one timer per breaker
//   options.js    reading and checking options; array sizes
//   files.js      breaker files
//   errors.js     CircuitOpenError, CircuitTimeoutError
//   bulkhead.js   the Bulkhead: permits shared by every thread and process
//   rate-limiter.js  the RateLimiter: GCRA shared by every thread and process
//   limit-errors.js  BulkheadFullError, RateLimitedError
//   limit-memory.js  the arrays and files bulkheads and rate limiters live in
//   stats.js      the getStats() object
//   metrics.js    Prometheus output
//   dashboard.js  the live dashboard: a request handler (dashboard-page.js: its page)
//   opentelemetry.js  OpenTelemetry instruments (the same metrics)
//   constants.js  the numbers shared with the native binding
//   slots.js      the slot layout, read from the binding
//   describe.js   how error messages name what they received
//   native.js     loads the native addon (binding.js, generated)

const { CircuitBreaker } = require('./lib/breaker.js')
const { CircuitBreakerStates } = require('./lib/constants.js')
const { CircuitBreakerKeys } = require('./lib/slots.js')
const {
  CircuitOpenError,
  CircuitTimeoutError,
  isCircuitOpenError,
  isCircuitTimeoutError,
} = require('./lib/errors.js')
const { arrayLength, createSharedArray } = require('./lib/options.js')
const { openBreakerFile } = require('./lib/files.js')
const { prometheusText, registerPrometheus } = require('./lib/metrics.js')
const { Bulkhead, bulkheadMetrics } = require('./lib/bulkhead.js')
const { RateLimiter } = require('./lib/rate-limiter.js')
const {
  BulkheadFullError,
  RateLimitedError,
  isBulkheadFullError,
  isRateLimitedError,
} = require('./lib/limit-errors.js')
const { dashboard } = require('./lib/dashboard.js')
const { registerOpenTelemetry } = require('./lib/opentelemetry.js')

module.exports = {
  CircuitBreaker,
  CircuitBreakerKeys,
  CircuitBreakerStates,
  CircuitOpenError,
  CircuitTimeoutError,
  isCircuitOpenError,
  isCircuitTimeoutError,
  arrayLength,
  createSharedArray,
  openBreakerFile,
  prometheusText,
  registerPrometheus,
  Bulkhead,
  RateLimiter,
  BulkheadFullError,
  RateLimitedError,
  isBulkheadFullError,
  isRateLimitedError,
  bulkheadMetrics,
  dashboard,
  registerOpenTelemetry,
  default: CircuitBreaker,
}
