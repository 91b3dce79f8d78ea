'use strict'

// The plain object `getStats()` returns, shaped from the binding's stats.

const { STATE_NAMES } = require('./constants.js')

// `s` is what `native.stats` returned for the breaker named `name`.
function statsObject(name, s) {
  const seconds = (micros) => micros / 1e6
  return {
    name,
    state: STATE_NAMES[s.state],
    stateSince: s.stateSince,
    isolated: s.isolations > 0,
    disabled: s.disabled,
    consecutiveFailures: s.consecutiveFailures,
    requests: s.requests,
    successes: s.successes,
    failures: s.failures,
    rejections: s.rejections,
    timeouts: s.timeouts,
    fallbacks: s.fallbacks,
    probes: s.probes,
    slowCalls: s.slowCalls,
    filtered: s.filtered,
    lastSuccessTime: s.lastSuccessTime,
    lastFailureTime: s.lastFailureTime,
    openDuration: s.openMs,
    window:
      s.windowCalls === undefined || s.windowCalls === null
        ? null
        : {
            calls: s.windowCalls,
            failures: s.windowFailures,
            failureRate: s.windowCalls === 0 ? 0 : (100 * s.windowFailures) / s.windowCalls,
          },
    latency:
      s.latencyCount === undefined || s.latencyCount === null
        ? null
        : {
            count: s.latencyCount,
            sum: seconds(s.latencySumMicros),
            max: seconds(s.latencyMaxMicros),
            p50: seconds(s.latencyP50Micros),
            p90: seconds(s.latencyP90Micros),
            p99: seconds(s.latencyP99Micros),
            buckets: s.latencyBoundsMicros.map((bound, i) => ({
              le: seconds(bound),
              count: s.latencyBuckets[i],
            })),
          },
  }
}

module.exports = { statsObject }
