'use strict'

// OpenTelemetry metrics for breakers: `registerOpenTelemetry(meter, breaker)`
// reports the breaker through an OpenTelemetry `Meter` without requiring
// @opentelemetry/api (the meter is duck-typed, as registerPrometheus does
// with prom-client's registry).
//
// The instruments are the Prometheus families of metrics.js, read from the
// same definitions, with the same label (attribute) names and values:
//
// - each `*_total` counter is an observable counter named without `_total`
//   (OpenTelemetry's Prometheus exporter adds it back), e.g.
//   `circuit_breaker_requests`;
// - each gauge is an observable gauge of the same name
//   (`circuit_breaker_state` with `name` and `state`,
//   `circuit_breaker_consecutive_failures`, ...);
// - the latency histogram: OpenTelemetry has no asynchronous histogram, and
//   recording the shared bucket counts into a synchronous one would count
//   every other thread's calls again in each thread that reports them. So
//   the histogram's percentiles are an observable gauge,
//   `circuit_breaker_call_duration_seconds` with a `quantile` attribute
//   (0.5, 0.9, 0.99 and 1 for the maximum), in seconds.
//
// One batch callback per meter reads each registered breaker's getStats()
// once per collection: the counts are those of every thread and process
// sharing the breaker.

const { describe } = require('./describe.js')
const { FAMILIES, HISTOGRAM, checkStats } = require('./metrics.js')

// @opentelemetry/api's ValueType.INT and ValueType.DOUBLE.
const INT = 0
const DOUBLE = 1
const QUANTILES = [['0.5', 'p50'], ['0.9', 'p90'], ['0.99', 'p99'], ['1', 'max']]
const DOUBLE_GAUGES = new Set(['circuit_breaker_window_failure_rate'])

const meters = new WeakMap()

function meterState(meter) {
  let state = meters.get(meter)
  if (state !== undefined) return state
  const instruments = []
  for (const family of FAMILIES) {
    if (family.type === 'counter') {
      instruments.push({
        family,
        instrument: meter.createObservableCounter(family.name.replace(/_total$/, ''), {
          description: family.help,
          valueType: INT,
        }),
      })
    } else if (family.type === 'gauge') {
      instruments.push({
        family,
        instrument: meter.createObservableGauge(family.name, {
          description: family.help,
          valueType: DOUBLE_GAUGES.has(family.name) ? DOUBLE : INT,
        }),
      })
    }
  }
  const duration = meter.createObservableGauge(HISTOGRAM, {
    description: 'Percentiles of the duration of the calls the breaker ran (quantile 1 is the maximum), in seconds: ' +
      'upper bounds of log-scaled buckets, 4 per power of two.',
    unit: 's',
    valueType: DOUBLE,
  })
  const breakers = new Map()
  const callback = (result) => {
    for (const breaker of breakers.values()) {
      let stats
      try {
        stats = breaker.getStats()
      } catch {
        // Disposed: left out of this collection, as registerPrometheus does.
        continue
      }
      const samples = []
      for (const { family, instrument } of instruments) {
        samples.length = 0
        family.samples(stats, samples)
        for (const { labels, value } of samples) result.observe(instrument, value, labels)
      }
      if (stats.latency !== null) {
        for (const [quantile, field] of QUANTILES) {
          result.observe(duration, stats.latency[field], { name: stats.name, quantile })
        }
      }
    }
  }
  meter.addBatchObservableCallback(callback, [...instruments.map((i) => i.instrument), duration])
  state = { breakers }
  meters.set(meter, state)
  return state
}

/**
 * Reports `breaker` through `meter` (an OpenTelemetry `Meter`). Returns a
 * function that stops reporting it; calling it again does nothing.
 *
 * @throws {TypeError} `meter` is not a Meter; `breaker` is not a breaker; the
 *   breaker is registered with this meter already, or another with its name.
 */
function registerOpenTelemetry(meter, breaker) {
  if (
    typeof meter !== 'object' || meter === null ||
    typeof meter.createObservableCounter !== 'function' ||
    typeof meter.createObservableGauge !== 'function' ||
    typeof meter.addBatchObservableCallback !== 'function'
  ) {
    throw new TypeError(
      'registerOpenTelemetry: meter must be an OpenTelemetry Meter (with createObservableCounter(), ' +
        `createObservableGauge() and addBatchObservableCallback()), got ${describe(meter)}`,
    )
  }
  if (typeof breaker !== 'object' || breaker === null || typeof breaker.getStats !== 'function') {
    throw new TypeError(`registerOpenTelemetry: breaker must be a CircuitBreaker (with getStats()), got ${describe(breaker)}`)
  }
  const stats = breaker.getStats()
  checkStats('registerOpenTelemetry: breaker.getStats()', stats)
  const state = meterState(meter)
  for (const registered of state.breakers.values()) {
    if (registered === breaker) throw new TypeError('registerOpenTelemetry: breaker is already registered with this meter')
  }
  if (state.breakers.has(stats.name)) {
    throw new TypeError(
      `registerOpenTelemetry: breaker.getStats().name must be unique for the meter, got ${describe(stats.name)}, ` +
        'which another registered breaker has: give each breaker its own `name` option',
    )
  }
  state.breakers.set(stats.name, breaker)
  return function unregister() {
    if (state.breakers.get(stats.name) === breaker) state.breakers.delete(stats.name)
  }
}

module.exports = { registerOpenTelemetry }
