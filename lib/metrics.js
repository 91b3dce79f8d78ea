'use strict'

// Prometheus output for breakers. Two ways out, one definition of the metric
// families below:
//
// - `prometheusText(statsList)`: the text exposition format 0.0.4, for a
//   hand-written `/metrics` handler (`breaker.metrics()` uses it).
// - `registerPrometheus(registry, breaker)`: adds the breaker to a prom-client
//   `Registry` without requiring prom-client: the registry is duck-typed
//   (`registerMetric`, `getSingleMetric`), and the metric objects it holds
//   read `breaker.getStats()` afresh at every scrape.
//
// Label `name` is the breaker's `name` option; it must be unique within one
// output (two samples with the same labels would make the output invalid), so
// a duplicate is a TypeError, not something silently merged.

const { STATE_NAMES } = require('./constants.js')
const { describe } = require('./describe.js')

// Each state's name and its `state` label: ['HALF_OPEN', 'half_open'], ...
const STATES = STATE_NAMES.map((state) => [state, state.toLowerCase()])

const COUNTER_FIELDS = [
  'requests', 'successes', 'failures', 'rejections', 'timeouts',
  'fallbacks', 'probes', 'slowCalls', 'filtered',
]
const TIME_FIELDS = ['stateSince', 'lastSuccessTime', 'lastFailureTime']

function counter(field, name, help) {
  return {
    name,
    help,
    type: 'counter',
    aggregator: 'sum',
    samples: (stats, out) => out.push({ labels: { name: stats.name }, value: stats[field] }),
  }
}

function gauge(name, help, aggregator, samples) {
  return { name, help, type: 'gauge', aggregator, samples }
}

const HISTOGRAM = 'circuit_breaker_call_duration_seconds'

/**
 * A bulkhead's families, `[key of its stats, metric, type, help]`: for
 * `Bulkhead#metrics()` (bulkhead.js) and for a breaker with
 * `maxConcurrent` (its `getStats().bulkhead`), labelled with the name.
 */
const BULKHEAD_METRICS = [
  ['maxConcurrent', 'bulkhead_max_concurrent', 'gauge', 'Permits of the bulkhead.'],
  ['inUse', 'bulkhead_in_use', 'gauge', 'Permits held now, in every thread and process.'],
  ['queued', 'bulkhead_queued', 'gauge', 'Calls waiting for a permit now.'],
  ['rejected', 'bulkhead_rejected_total', 'counter', 'Calls refused (full, or waited queueTimeout).'],
  ['queueTimeouts', 'bulkhead_queue_timeouts_total', 'counter', 'Calls refused after waiting queueTimeout.'],
  ['reclaimed', 'bulkhead_reclaimed_total', 'counter', 'Permits taken back from holders past their lease.'],
  ['lostReleases', 'bulkhead_lost_releases_total', 'counter', 'Releases that found their permit reclaimed.'],
]
const BULKHEAD_FIELDS = ['maxQueue', ...BULKHEAD_METRICS.map(([key]) => key)]

function bulkheadFamily([key, name, type, help]) {
  return {
    name,
    help,
    type,
    aggregator: type === 'counter' ? 'sum' : 'max',
    samples: (stats, out) => {
      if (stats.bulkhead != null) out.push({ labels: { name: stats.name }, value: stats.bulkhead[key] })
    },
  }
}

/**
 * The metric families, in output order. `samples(stats, out)` pushes
 * `{ metricName?, labels, value }` for one breaker; `labels` is in output
 * order, `name` first. Families whose breakers push nothing are left out.
 */
const FAMILIES = [
  counter('requests', 'circuit_breaker_requests_total',
    'Calls made through the circuit breaker, admitted or rejected.'),
  counter('successes', 'circuit_breaker_successes_total',
    'Calls whose task succeeded.'),
  counter('failures', 'circuit_breaker_failures_total',
    'Calls whose task failed and counted as a failure.'),
  counter('rejections', 'circuit_breaker_rejections_total',
    'Calls rejected without running the task because the circuit was not closed.'),
  counter('timeouts', 'circuit_breaker_timeouts_total',
    'Calls that failed because the task exceeded the timeout.'),
  counter('fallbacks', 'circuit_breaker_fallbacks_total',
    'Calls answered by a fallback.'),
  counter('probes', 'circuit_breaker_probes_total',
    'Half-open probe calls admitted.'),
  counter('slowCalls', 'circuit_breaker_slow_calls_total',
    'Calls slower than the slow-call threshold.'),
  counter('filtered', 'circuit_breaker_filtered_errors_total',
    'Task errors that the error filter kept from counting as failures.'),
  gauge('circuit_breaker_state',
    'Current circuit state: 1 for the state the circuit is in, 0 for the others.',
    'sum',
    (stats, out) => {
      for (const [state, label] of STATES) {
        out.push({ labels: { name: stats.name, state: label }, value: stats.state === state ? 1 : 0 })
      }
    }),
  gauge('circuit_breaker_consecutive_failures',
    'Current run of consecutive failures.',
    'max',
    (stats, out) => out.push({ labels: { name: stats.name }, value: stats.consecutiveFailures })),
  gauge('circuit_breaker_isolated',
    '1 if the circuit is held open by isolate(), else 0.',
    'max',
    (stats, out) => out.push({ labels: { name: stats.name }, value: stats.isolated ? 1 : 0 })),
  gauge('circuit_breaker_window_calls',
    'Calls recorded in the failure-rate window.',
    'sum',
    (stats, out) => {
      if (stats.window !== null) out.push({ labels: { name: stats.name }, value: stats.window.calls })
    }),
  gauge('circuit_breaker_window_failure_rate',
    'Failure rate over the failure-rate window, as a ratio from 0 to 1.',
    'average',
    (stats, out) => {
      if (stats.window !== null) {
        out.push({ labels: { name: stats.name }, value: stats.window.failureRate / 100 })
      }
    }),
  {
    name: HISTOGRAM,
    help: 'Duration of the calls the breaker ran, in seconds.',
    type: 'histogram',
    aggregator: 'sum',
    samples: (stats, out) => {
      const latency = stats.latency
      if (latency === null) return
      const bucket = `${HISTOGRAM}_bucket`
      // prom-client's own histograms carry `le` as a number, '+Inf' as a string.
      for (const { le, count } of latency.buckets) {
        out.push({ metricName: bucket, labels: { name: stats.name, le }, value: count })
      }
      out.push({ metricName: bucket, labels: { name: stats.name, le: '+Inf' }, value: latency.count })
      out.push({ metricName: `${HISTOGRAM}_sum`, labels: { name: stats.name }, value: latency.sum })
      out.push({ metricName: `${HISTOGRAM}_count`, labels: { name: stats.name }, value: latency.count })
    },
  },
  ...BULKHEAD_METRICS.map(bulkheadFamily),
]

// ---------------------------------------------------------------------------
// Validation

function typeError(where, expected, received) {
  return new TypeError(`${where} must be ${expected}, got ${describe(received)}`)
}

function rangeError(where, expected, received) {
  return new RangeError(`${where} must be ${expected}, got ${describe(received)}`)
}

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function checkCount(where, value) {
  if (typeof value !== 'number') throw typeError(where, 'a number', value)
  // Counts are exact up to 2^53 (the stats' contract); a 64-bit counter past
  // that (or slots overwritten from JavaScript) still prints, as the nearest
  // number, rather than failing a scrape.
  if (!Number.isInteger(value) || value < 0) {
    throw rangeError(where, 'an integer >= 0', value)
  }
}

function checkFinite(where, value) {
  if (typeof value !== 'number') throw typeError(where, 'a number', value)
  if (!Number.isFinite(value) || value < 0) throw rangeError(where, 'a finite number >= 0', value)
}

function checkBoolean(where, value) {
  if (typeof value !== 'boolean') throw typeError(where, 'a boolean', value)
}

/** Throws a TypeError or RangeError naming `where` if `stats` is not a getStats() result. */
function checkStats(where, stats) {
  if (!isObject(stats)) throw typeError(where, 'a stats object from breaker.getStats()', stats)
  if (typeof stats.name !== 'string') throw typeError(`${where}.name`, 'a string', stats.name)
  if (!STATE_NAMES.includes(stats.state)) {
    throw typeError(`${where}.state`, `one of ${STATE_NAMES.map((s) => `'${s}'`).join(', ')}`, stats.state)
  }
  checkBoolean(`${where}.isolated`, stats.isolated)
  checkBoolean(`${where}.disabled`, stats.disabled)
  checkCount(`${where}.consecutiveFailures`, stats.consecutiveFailures)
  for (const field of COUNTER_FIELDS) checkCount(`${where}.${field}`, stats[field])
  for (const field of TIME_FIELDS) checkFinite(`${where}.${field}`, stats[field])

  const window = stats.window
  if (window !== null) {
    if (!isObject(window)) throw typeError(`${where}.window`, 'null or an object', window)
    checkCount(`${where}.window.calls`, window.calls)
    checkCount(`${where}.window.failures`, window.failures)
    checkFinite(`${where}.window.failureRate`, window.failureRate)
    if (window.failureRate > 100) {
      throw rangeError(`${where}.window.failureRate`, 'a percentage from 0 to 100', window.failureRate)
    }
  }

  const bulkhead = stats.bulkhead
  if (bulkhead != null) {
    if (!isObject(bulkhead)) throw typeError(`${where}.bulkhead`, 'null or an object', bulkhead)
    for (const field of BULKHEAD_FIELDS) checkCount(`${where}.bulkhead.${field}`, bulkhead[field])
  }

  const latency = stats.latency
  if (latency !== null) {
    if (!isObject(latency)) throw typeError(`${where}.latency`, 'null or an object', latency)
    checkCount(`${where}.latency.count`, latency.count)
    checkFinite(`${where}.latency.sum`, latency.sum)
    if (!Array.isArray(latency.buckets)) {
      throw typeError(`${where}.latency.buckets`, 'an array', latency.buckets)
    }
    let previous = null
    latency.buckets.forEach((bucket, i) => {
      const at = `${where}.latency.buckets[${i}]`
      if (!isObject(bucket)) throw typeError(at, 'an object { le, count }', bucket)
      if (typeof bucket.le !== 'number') throw typeError(`${at}.le`, 'a number', bucket.le)
      if (!Number.isFinite(bucket.le)) throw rangeError(`${at}.le`, 'finite', bucket.le)
      checkCount(`${at}.count`, bucket.count)
      if (previous !== null && !(bucket.le > previous.le)) {
        throw rangeError(`${at}.le`, `greater than the bucket before (${formatNumber(previous.le)})`, bucket.le)
      }
      if (previous !== null && bucket.count < previous.count) {
        throw rangeError(`${at}.count`, `cumulative, at least the bucket before (${previous.count})`, bucket.count)
      }
      if (bucket.count > latency.count) {
        throw rangeError(`${at}.count`, `at most latency.count (${latency.count})`, bucket.count)
      }
      previous = bucket
    })
  }
}

// ---------------------------------------------------------------------------
// Text format 0.0.4

/**
 * A sample value or `le` as the text format reads it back exactly: integers
 * in plain decimal (no exponent, even past 1e21), other finite numbers in
 * JavaScript's shortest round-trip form, and `+Inf`, `-Inf`, `NaN`.
 */
function formatNumber(value) {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  if (Number.isInteger(value)) {
    return Math.abs(value) < 1e21 ? String(value) : BigInt(value).toString()
  }
  return String(value)
}

function escapeLabelValue(value) {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function escapeHelp(text) {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

function formatLabel(key, value) {
  const text = typeof value === 'number' ? formatNumber(value) : value
  return `${key}="${escapeLabelValue(text)}"`
}

/** Throws a TypeError if two stats in `list` share a name. */
function checkUniqueNames(where, list) {
  const seen = new Map()
  list.forEach((stats, i) => {
    if (seen.has(stats.name)) {
      throw new TypeError(
        `${where}[${i}].name must be unique, got ${describe(stats.name)}, ` +
          `already the name of ${where}[${seen.get(stats.name)}]: give each breaker its own \`name\` option`,
      )
    }
    seen.set(stats.name, i)
  })
}

/**
 * Renders breakers' stats in the Prometheus text exposition format 0.0.4.
 *
 * @param {ReadonlyArray<object>} statsList results of `breaker.getStats()`;
 *   their `name`s must be unique (the `name` label tells them apart).
 * @returns {string} one `# HELP` and one `# TYPE` line per metric family, then
 *   one sample per breaker (three for `circuit_breaker_state`, a histogram's
 *   buckets for `circuit_breaker_call_duration_seconds`). Families no breaker
 *   has samples for are left out; an empty list gives `''`.
 * @throws {TypeError} if `statsList` is not an array, a field has the wrong
 *   kind, or two stats share a name.
 * @throws {RangeError} if a count is negative or not an integer, or histogram
 *   buckets are not ascending and cumulative.
 */
function prometheusText(statsList) {
  if (!Array.isArray(statsList)) {
    throw typeError('prometheusText: statsList', 'an array of breaker.getStats() results', statsList)
  }
  statsList.forEach((stats, i) => checkStats(`prometheusText: statsList[${i}]`, stats))
  checkUniqueNames('prometheusText: statsList', statsList)

  let text = ''
  for (const family of FAMILIES) {
    const samples = []
    for (const stats of statsList) family.samples(stats, samples)
    if (samples.length === 0) continue
    text += `# HELP ${family.name} ${escapeHelp(family.help)}\n# TYPE ${family.name} ${family.type}\n`
    for (const { metricName = family.name, labels, value } of samples) {
      const formatted = Object.entries(labels).map(([key, v]) => formatLabel(key, v)).join(',')
      text += `${metricName}{${formatted}} ${formatNumber(value)}\n`
    }
  }
  return text
}

// ---------------------------------------------------------------------------
// prom-client adapter

/** Per registry: its metric objects and the breakers registered in it. */
const registries = new WeakMap()

function registryState(registry) {
  let state = registries.get(registry)
  if (state === undefined) {
    state = {
      // name -> { breaker, warned }; insertion order is output order.
      breakers: new Map(),
      // family name -> metric object, created once per registry.
      metrics: new Map(),
      // One set of stats per scrape: prom-client calls every metric's get()
      // in one synchronous loop, so the snapshot is dropped in a microtask.
      snapshot: null,
    }
    registries.set(registry, state)
  }
  return state
}

function takeSnapshot(state) {
  if (state.snapshot !== null) return state.snapshot
  const snapshot = []
  for (const [name, entry] of state.breakers) {
    let stats
    try {
      stats = entry.breaker.getStats()
    } catch {
      // A disposed breaker: leave it out of this scrape.
      continue
    }
    try {
      checkStats(`getStats() of breaker '${name}'`, stats)
    } catch (error) {
      // A scrape serves every metric in the registry: one bad breaker must
      // not fail it. Say so once per breaker.
      if (!entry.warned) {
        entry.warned = true
        process.emitWarning(`circuit breaker metrics left out: ${error.message}`, {
          code: 'CIRCUIT_BREAKER_BAD_STATS',
        })
      }
      continue
    }
    // The registered name is the label: it was checked unique.
    snapshot.push(stats.name === name ? stats : { ...stats, name })
  }
  state.snapshot = snapshot
  queueMicrotask(() => {
    state.snapshot = null
  })
  return snapshot
}

/** A metric object as prom-client's Registry expects one. */
class BreakerMetric {
  constructor(family, state) {
    // `name` stays a plain writable property: an OpenMetrics registry strips
    // `_total` from counter names in place, and adds it back when printing.
    this.name = family.name
    this.help = family.help
    this.type = family.type
    this.aggregator = family.aggregator
    Object.defineProperty(this, '_family', { value: family })
    Object.defineProperty(this, '_state', { value: state })
  }

  async get() {
    const samples = []
    for (const stats of takeSnapshot(this._state)) this._family.samples(stats, samples)
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values: samples.map(({ metricName, labels, value }) =>
        metricName === undefined ? { value, labels: { ...labels } } : { value, labels: { ...labels }, metricName }),
      aggregator: this.aggregator,
    }
  }

  /** The values are the breakers' own counters: `registry.resetMetrics()` leaves them alone. */
  reset() {}
}

/**
 * Adds a breaker's metrics to a prom-client `Registry`, read from
 * `breaker.getStats()` at every scrape. Several breakers may share one
 * registry: each metric family is registered once, with one sample per
 * breaker, told apart by the `name` label.
 *
 * @param {{ registerMetric(metric: object): void, getSingleMetric(name: string): object | undefined }} registry
 *   a prom-client `Registry` (or `register`, the global one); prom-client is
 *   not loaded by this package.
 * @param {{ getStats(): object }} breaker a CircuitBreaker.
 * @returns {() => void} unregisters the breaker (its samples go; the empty
 *   families stay registered, with HELP and TYPE only). Calling it again does
 *   nothing.
 * @throws {TypeError} for a registry or breaker of the wrong kind, a breaker
 *   already registered there, a breaker whose name another breaker in the
 *   registry has, or a metric of the same name registered by someone else.
 *
 * A breaker whose `getStats()` throws at scrape time (it was disposed) is
 * left out of that scrape. The histogram and window families are registered
 * when a breaker that has them is registered.
 */
function registerPrometheus(registry, breaker) {
  if (
    typeof registry !== 'object' || registry === null ||
    typeof registry.registerMetric !== 'function' ||
    typeof registry.getSingleMetric !== 'function'
  ) {
    throw typeError('registerPrometheus: registry',
      'a prom-client Registry (with registerMetric() and getSingleMetric())', registry)
  }
  if (typeof breaker !== 'object' || breaker === null || typeof breaker.getStats !== 'function') {
    throw typeError('registerPrometheus: breaker', 'a CircuitBreaker (with getStats())', breaker)
  }

  const state = registryState(registry)
  for (const entry of state.breakers.values()) {
    if (entry.breaker === breaker) {
      throw new TypeError('registerPrometheus: breaker is already registered in this registry')
    }
  }
  const stats = breaker.getStats()
  checkStats('registerPrometheus: breaker.getStats()', stats)
  if (state.breakers.has(stats.name)) {
    throw new TypeError(
      `registerPrometheus: breaker.getStats().name must be unique in the registry, got ${describe(stats.name)}, ` +
        'which another registered breaker has: give each breaker its own `name` option',
    )
  }

  // Which families this breaker needs, checked in full before anything changes.
  const needed = FAMILIES.filter((family) => {
    const samples = []
    family.samples(stats, samples)
    return samples.length > 0 || state.metrics.has(family.name)
  })
  for (const family of needed) {
    const existing = registry.getSingleMetric(family.name)
    if (existing !== undefined && existing !== state.metrics.get(family.name)) {
      throw new TypeError(
        `registerPrometheus: registry already has a metric named '${family.name}' that this package did not register`,
      )
    }
  }
  for (const family of needed) {
    let metric = state.metrics.get(family.name)
    if (metric === undefined) {
      metric = new BreakerMetric(family, state)
      state.metrics.set(family.name, metric)
    }
    // Also after `registry.clear()`, which forgets our metrics.
    if (registry.getSingleMetric(family.name) !== metric) registry.registerMetric(metric)
  }

  const entry = { breaker, warned: false }
  state.breakers.set(stats.name, entry)
  state.snapshot = null
  return function unregister() {
    if (state.breakers.get(stats.name) === entry) {
      state.breakers.delete(stats.name)
      state.snapshot = null
    }
  }
}

module.exports = { FAMILIES, HISTOGRAM, BULKHEAD_METRICS, checkStats, prometheusText, registerPrometheus }
