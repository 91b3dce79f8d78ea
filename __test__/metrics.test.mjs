// Prometheus output (metrics.js). Every output is read back with a real
// parser (parse-prometheus-text-format) and, for the registry adapter, by
// prom-client itself. Breakers here are fakes built on the getStats() shape,
// so these tests pin the formatting; the end-to-end test lives with the class.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import parsePrometheus from 'parse-prometheus-text-format'
import client from 'prom-client'
import { prometheusText, registerPrometheus } from '../lib/metrics.js'

const { Registry, Counter } = client
const metricsFile = fileURLToPath(new URL('../lib/metrics.js', import.meta.url))

const COUNTERS = {
  requests: 'circuit_breaker_requests_total',
  successes: 'circuit_breaker_successes_total',
  failures: 'circuit_breaker_failures_total',
  rejections: 'circuit_breaker_rejections_total',
  timeouts: 'circuit_breaker_timeouts_total',
  fallbacks: 'circuit_breaker_fallbacks_total',
  probes: 'circuit_breaker_probes_total',
  slowCalls: 'circuit_breaker_slow_calls_total',
  filtered: 'circuit_breaker_filtered_errors_total',
}
const HISTOGRAM = 'circuit_breaker_call_duration_seconds'

/** A getStats() result; every counter distinct, so a swapped field shows. */
function makeStats(overrides = {}) {
  return {
    name: 'default',
    state: 'CLOSED',
    stateSince: 1_700_000_000_000,
    isolated: false,
    disabled: false,
    consecutiveFailures: 2,
    requests: 100,
    successes: 81,
    failures: 12,
    rejections: 7,
    timeouts: 3,
    fallbacks: 5,
    probes: 4,
    slowCalls: 6,
    filtered: 1,
    lastSuccessTime: 1_700_000_000_100,
    lastFailureTime: 1_700_000_000_200,
    window: null,
    latency: null,
    ...overrides,
  }
}

function makeLatency(overrides = {}) {
  return {
    count: 10,
    sum: 0.1 + 0.2,
    max: 0.9,
    p50: 0.01,
    p90: 0.1,
    p99: 0.9,
    buckets: [
      { le: 0.005, count: 2 },
      { le: 0.05, count: 5 },
      { le: 0.5, count: 8 },
    ],
    ...overrides,
  }
}

function fakeBreaker(stats) {
  return { getStats: () => (typeof stats === 'function' ? stats() : structuredClone(stats)) }
}

function family(parsed, name) {
  const found = parsed.filter((f) => f.name === name)
  assert.equal(found.length, 1, `family ${name} appears ${found.length} times`)
  return found[0]
}

/**
 * Every sample as { name, labels, value } (value as the text has it). The
 * parser (1.1.1) folds a labelled histogram into one label-less object and
 * drops its _sum and _count, so histograms are read as untyped here: their
 * _bucket, _sum and _count lines then come back one by one with labels.
 */
function samplesOf(text) {
  const untyped = text.replace(/^# TYPE (\S+) histogram$/gm, '# TYPE $1 untyped')
  const samples = []
  for (const f of parsePrometheus(untyped)) {
    for (const m of f.metrics) samples.push({ name: f.name, labels: m.labels ?? {}, value: m.value })
  }
  return samples
}

function sampleKey(s) {
  const labels = Object.entries(s.labels).sort(([a], [b]) => (a < b ? -1 : 1))
  return JSON.stringify([s.name, labels])
}

function valueOf(samples, name, labels) {
  const key = sampleKey({ name, labels })
  const found = samples.filter((s) => sampleKey(s) === key)
  assert.equal(found.length, 1, `${key} appears ${found.length} times`)
  return found[0].value
}

function headerLines(text) {
  const count = new Map()
  for (const line of text.split('\n')) {
    const m = /^# (HELP|TYPE) (\S+)/.exec(line)
    if (m) count.set(`${m[1]} ${m[2]}`, (count.get(`${m[1]} ${m[2]}`) ?? 0) + 1)
  }
  return count
}

// --- prometheusText ---------------------------------------------------------

test('renders every counter as a counter family with one sample per breaker', () => {
  const a = makeStats({ name: 'a' })
  const b = makeStats({
    name: 'b', requests: 2 ** 53, successes: 9, failures: 8, rejections: 70,
    timeouts: 60, fallbacks: 50, probes: 40, slowCalls: 30, filtered: 20,
  })
  const text = prometheusText([a, b])
  const parsed = parsePrometheus(text)
  for (const [field, name] of Object.entries(COUNTERS)) {
    const f = family(parsed, name)
    assert.equal(f.type, 'COUNTER', name)
    assert.ok(f.help.length > 0, `${name} has help text`)
    assert.deepEqual(f.metrics, [
      { labels: { name: 'a' }, value: String(a[field]) },
      { labels: { name: 'b' }, value: String(b[field]) },
    ])
  }
  // 2^53 is exact and written without an exponent.
  assert.match(text, /^circuit_breaker_requests_total\{name="b"\} 9007199254740992$/m)
})

test('writes one HELP and one TYPE line per family, each family once, before its samples', () => {
  const text = prometheusText([
    makeStats({ name: 'a', window: { calls: 4, failures: 1, failureRate: 25 }, latency: makeLatency() }),
    makeStats({ name: 'b', window: { calls: 2, failures: 2, failureRate: 100 }, latency: makeLatency() }),
  ])
  const parsed = parsePrometheus(text)
  const names = parsed.map((f) => f.name)
  assert.equal(new Set(names).size, names.length, 'no family split in two')
  assert.equal(names.length, 9 + 5 + 1)
  const headers = headerLines(text)
  for (const name of names) {
    assert.equal(headers.get(`HELP ${name}`), 1, `HELP ${name}`)
    assert.equal(headers.get(`TYPE ${name}`), 1, `TYPE ${name}`)
  }
  assert.equal(headers.size, names.length * 2)
  assert.ok(text.endsWith('\n'))
  // HELP then TYPE then samples, family after family.
  const lines = text.trimEnd().split('\n')
  lines.forEach((line, i) => {
    if (line.startsWith('# HELP ')) assert.ok(lines[i + 1].startsWith(`# TYPE ${line.split(' ')[2]} `), line)
  })
})

test('marks the current state 1 and the other two states 0', () => {
  const expected = {
    CLOSED: { closed: '1', open: '0', half_open: '0' },
    OPEN: { closed: '0', open: '1', half_open: '0' },
    HALF_OPEN: { closed: '0', open: '0', half_open: '1' },
  }
  for (const [state, values] of Object.entries(expected)) {
    const f = family(parsePrometheus(prometheusText([makeStats({ name: 'x', state })])), 'circuit_breaker_state')
    assert.equal(f.type, 'GAUGE')
    assert.deepEqual(
      Object.fromEntries(f.metrics.map((m) => [m.labels.state, m.value])),
      values,
      state,
    )
    for (const m of f.metrics) assert.equal(m.labels.name, 'x')
    assert.equal(f.metrics.length, 3)
  }
})

test('reports consecutive failures and isolation as gauges', () => {
  const parsed = parsePrometheus(prometheusText([
    makeStats({ name: 'a', consecutiveFailures: 0, isolated: true }),
    makeStats({ name: 'b', consecutiveFailures: 17, isolated: false }),
  ]))
  const failures = family(parsed, 'circuit_breaker_consecutive_failures')
  assert.equal(failures.type, 'GAUGE')
  assert.deepEqual(failures.metrics, [
    { labels: { name: 'a' }, value: '0' },
    { labels: { name: 'b' }, value: '17' },
  ])
  const isolated = family(parsed, 'circuit_breaker_isolated')
  assert.equal(isolated.type, 'GAUGE')
  assert.deepEqual(isolated.metrics, [
    { labels: { name: 'a' }, value: '1' },
    { labels: { name: 'b' }, value: '0' },
  ])
})

test('reports the failure-rate window as a 0..1 ratio, only for breakers that have one', () => {
  const parsed = parsePrometheus(prometheusText([
    makeStats({ name: 'with', window: { calls: 8, failures: 3, failureRate: 37.5 } }),
    makeStats({ name: 'without' }),
    makeStats({ name: 'all', window: { calls: 20, failures: 20, failureRate: 100 } }),
  ]))
  const calls = family(parsed, 'circuit_breaker_window_calls')
  assert.equal(calls.type, 'GAUGE')
  assert.deepEqual(calls.metrics, [
    { labels: { name: 'with' }, value: '8' },
    { labels: { name: 'all' }, value: '20' },
  ])
  const rate = family(parsed, 'circuit_breaker_window_failure_rate')
  assert.equal(rate.type, 'GAUGE')
  assert.deepEqual(rate.metrics, [
    { labels: { name: 'with' }, value: '0.375' },
    { labels: { name: 'all' }, value: '1' },
  ])
})

test('leaves out the window and histogram families when no breaker has them', () => {
  const text = prometheusText([makeStats({ name: 'a' }), makeStats({ name: 'b' })])
  const names = parsePrometheus(text).map((f) => f.name)
  assert.ok(!text.includes('window'), text)
  assert.ok(!text.includes(HISTOGRAM), text)
  assert.deepEqual(names, [
    ...Object.values(COUNTERS),
    'circuit_breaker_state',
    'circuit_breaker_consecutive_failures',
    'circuit_breaker_isolated',
  ])
})

test('renders latency as a histogram whose cumulative buckets end with +Inf equal to the count', () => {
  const latency = makeLatency({
    count: 12,
    sum: 3.75,
    buckets: [{ le: 0.001, count: 0 }, { le: 0.01, count: 4 }, { le: 0.1, count: 4 }, { le: 2.5, count: 11 }],
  })
  const text = prometheusText([makeStats({ name: 'slow', latency }), makeStats({ name: 'none' })])

  // The parser's own histogram reading: type and buckets.
  const f = family(parsePrometheus(text), HISTOGRAM)
  assert.equal(f.type, 'HISTOGRAM')
  assert.deepEqual(f.metrics[0].buckets, { 0.001: '0', 0.01: '4', 0.1: '4', 2.5: '11', '+Inf': '12' })

  // Sample by sample, in the order written.
  const samples = samplesOf(text).filter((s) => s.name.startsWith(HISTOGRAM))
  const buckets = samples.filter((s) => s.name === `${HISTOGRAM}_bucket`)
  assert.deepEqual(buckets.map((s) => s.labels.le), ['0.001', '0.01', '0.1', '2.5', '+Inf'])
  for (const s of buckets) assert.equal(s.labels.name, 'slow')
  const counts = buckets.map((s) => Number(s.value))
  for (let i = 1; i < counts.length; i++) assert.ok(counts[i] >= counts[i - 1], `cumulative at ${i}`)
  assert.equal(buckets.at(-1).value, '12')
  assert.equal(valueOf(samples, `${HISTOGRAM}_count`, { name: 'slow' }), '12')
  assert.equal(valueOf(samples, `${HISTOGRAM}_sum`, { name: 'slow' }), '3.75')
  // The breaker without latency has no histogram samples at all.
  assert.ok(samples.every((s) => s.labels.name === 'slow'))
})

test('renders one histogram per breaker, each with its own buckets, sum and count', () => {
  const text = prometheusText([
    makeStats({ name: 'a', latency: makeLatency({ count: 3, sum: 0.5, buckets: [{ le: 0.1, count: 1 }] }) }),
    makeStats({ name: 'b', latency: makeLatency({ count: 9, sum: 7, buckets: [{ le: 1, count: 9 }] }) }),
  ])
  const samples = samplesOf(text)
  assert.equal(valueOf(samples, `${HISTOGRAM}_bucket`, { name: 'a', le: '0.1' }), '1')
  assert.equal(valueOf(samples, `${HISTOGRAM}_bucket`, { name: 'a', le: '+Inf' }), '3')
  assert.equal(valueOf(samples, `${HISTOGRAM}_sum`, { name: 'a' }), '0.5')
  assert.equal(valueOf(samples, `${HISTOGRAM}_count`, { name: 'a' }), '3')
  assert.equal(valueOf(samples, `${HISTOGRAM}_bucket`, { name: 'b', le: '1' }), '9')
  assert.equal(valueOf(samples, `${HISTOGRAM}_bucket`, { name: 'b', le: '+Inf' }), '9')
  assert.equal(valueOf(samples, `${HISTOGRAM}_sum`, { name: 'b' }), '7')
  assert.equal(valueOf(samples, `${HISTOGRAM}_count`, { name: 'b' }), '9')
  assert.equal(headerLines(text).get(`TYPE ${HISTOGRAM}`), 1)
})

test('escapes backslash, double quote and newline in the name label so it reads back unchanged', () => {
  const names = ['say "hi"', 'C:\\dir\\', 'two\nlines', '\\"\n\\n', 'plain']
  const text = prometheusText(names.map((name) => makeStats({ name, latency: makeLatency() })))
  assert.match(text, /name="say \\"hi\\""/)
  assert.match(text, /name="two\\nlines"/)
  // No raw newline inside a sample line: every line is a header or a whole sample.
  for (const line of text.trimEnd().split('\n')) assert.match(line, /^(# (HELP|TYPE) |circuit_breaker_)/, line)
  const samples = samplesOf(text)
  for (const [field, metric] of Object.entries(COUNTERS)) {
    for (const name of names) assert.equal(valueOf(samples, metric, { name }), String(makeStats()[field]))
  }
  for (const name of names) {
    assert.equal(valueOf(samples, 'circuit_breaker_state', { name, state: 'closed' }), '1')
    assert.equal(valueOf(samples, `${HISTOGRAM}_bucket`, { name, le: '+Inf' }), '10')
  }
})

test('writes numbers that read back exactly: plain integers, shortest floats, +Inf', () => {
  const sums = [0.1 + 0.2, 1e21, 2 ** 53, 1.5e-9, 123456.789, 0]
  const text = prometheusText(sums.map((sum, i) => makeStats({
    name: `n${i}`,
    requests: i === 0 ? 2 ** 53 : i,
    window: { calls: 3, failures: 1, failureRate: 100 / 3 },
    latency: makeLatency({ sum, buckets: [{ le: 1e-7, count: 0 }, { le: 0.3, count: 1 }, { le: 60, count: 10 }] }),
  })))
  const samples = samplesOf(text)
  sums.forEach((sum, i) => {
    const written = valueOf(samples, `${HISTOGRAM}_sum`, { name: `n${i}` })
    assert.equal(Number(written), sum, `sum ${sum} written as ${written}`)
    if (Number.isInteger(sum)) assert.match(written, /^\d+$/, `integer ${sum} without exponent`)
    assert.equal(Number(valueOf(samples, 'circuit_breaker_window_failure_rate', { name: `n${i}` })), 100 / 3 / 100)
  })
  assert.equal(valueOf(samples, `${HISTOGRAM}_sum`, { name: 'n1' }), '1000000000000000000000')
  assert.equal(valueOf(samples, 'circuit_breaker_requests_total', { name: 'n0' }), '9007199254740992')
  const les = samples.filter((s) => s.name === `${HISTOGRAM}_bucket` && s.labels.name === 'n0').map((s) => s.labels.le)
  assert.deepEqual(les, ['1e-7', '0.3', '60', '+Inf'])
  // As Prometheus reads them (Go's ParseFloat takes +Inf).
  assert.deepEqual(les.map((le) => (le === '+Inf' ? Infinity : Number(le))), [1e-7, 0.3, 60, Infinity])
})

test('returns an empty string for an empty list', () => {
  assert.equal(prometheusText([]), '')
})

test('throws a TypeError when two stats in one list share a name', () => {
  assert.throws(
    () => prometheusText([makeStats({ name: 'db' }), makeStats({ name: 'cache' }), makeStats({ name: 'db' })]),
    (error) => error instanceof TypeError && /statsList\[2\]\.name must be unique/.test(error.message) &&
      /"db"/.test(error.message) && /statsList\[0\]/.test(error.message),
  )
})

test('rejects a statsList that is not an array, naming it and what it got', () => {
  for (const [bad, got] of [[undefined, 'undefined'], [null, 'null'], [makeStats(), 'an object'], ['x', 'the string "x"']]) {
    assert.throws(() => prometheusText(bad), (error) =>
      error instanceof TypeError && error.message.includes('statsList') && error.message.includes(`got ${got}`))
  }
})

test('rejects malformed stats, naming the field and what it got', () => {
  const cases = [
    [{ name: 5 }, TypeError, 'statsList[0].name', 'the number 5'],
    [{ state: 'closed' }, TypeError, 'statsList[0].state', 'the string "closed"'],
    [{ isolated: 1 }, TypeError, 'statsList[0].isolated', 'the number 1'],
    [{ requests: '3' }, TypeError, 'statsList[0].requests', 'the string "3"'],
    [{ slowCalls: -1 }, RangeError, 'statsList[0].slowCalls', 'the number -1'],
    [{ filtered: 1.5 }, RangeError, 'statsList[0].filtered', 'the number 1.5'],
    [{ timeouts: 2.5 }, RangeError, 'statsList[0].timeouts', 'the number 2.5'],
    [{ window: {} }, TypeError, 'statsList[0].window.calls', 'undefined'],
    [{ window: { calls: 1, failures: 1, failureRate: 150 } }, RangeError, 'statsList[0].window.failureRate', 'the number 150'],
    [{ latency: [] }, TypeError, 'statsList[0].latency', 'an array of length 0'],
    [{ latency: makeLatency({ sum: NaN }) }, RangeError, 'statsList[0].latency.sum', 'the number NaN'],
    [{ latency: makeLatency({ buckets: [{ le: 1, count: 1 }, { le: 1, count: 2 }] }) },
      RangeError, 'statsList[0].latency.buckets[1].le', 'the number 1'],
    [{ latency: makeLatency({ buckets: [{ le: 1, count: 3 }, { le: 2, count: 2 }] }) },
      RangeError, 'statsList[0].latency.buckets[1].count', 'the number 2'],
    [{ latency: makeLatency({ count: 4, buckets: [{ le: 1, count: 5 }] }) },
      RangeError, 'statsList[0].latency.buckets[0].count', 'the number 5'],
    [{ latency: makeLatency({ buckets: [{ le: Infinity, count: 1 }] }) },
      RangeError, 'statsList[0].latency.buckets[0].le', 'the number Infinity'],
  ]
  for (const [override, ErrorClass, where, got] of cases) {
    assert.throws(() => prometheusText([makeStats(override)]), (error) => {
      assert.ok(error instanceof ErrorClass, `${where}: ${error}`)
      assert.ok(error.message.includes(where), `${error.message} names ${where}`)
      assert.ok(error.message.endsWith(`got ${got}`), `${error.message} says it got ${got}`)
      return true
    })
  }
})

// --- registerPrometheus ---------------------------------------------------

test('two breakers in one prom-client registry give one family with two samples each', async () => {
  const registry = new Registry()
  registerPrometheus(registry, fakeBreaker(makeStats({ name: 'a', state: 'OPEN', latency: makeLatency() })))
  registerPrometheus(registry, fakeBreaker(makeStats({ name: 'b"\\\n', requests: 5, latency: makeLatency({ count: 11 }) })))
  const text = await registry.metrics()
  const parsed = parsePrometheus(text)
  for (const [name, headers] of headerLines(text)) assert.equal(headers, 1, name)
  for (const name of Object.values(COUNTERS)) {
    const f = family(parsed, name)
    assert.equal(f.type, 'COUNTER')
    assert.deepEqual(f.metrics.map((m) => m.labels.name), ['a', 'b"\\\n'])
  }
  assert.equal(family(parsed, 'circuit_breaker_state').metrics.length, 6)
  assert.equal(family(parsed, HISTOGRAM).type, 'HISTOGRAM')
  const samples = samplesOf(text)
  assert.equal(valueOf(samples, 'circuit_breaker_requests_total', { name: 'b"\\\n' }), '5')
  assert.equal(valueOf(samples, 'circuit_breaker_state', { name: 'a', state: 'open' }), '1')
  assert.equal(valueOf(samples, `${HISTOGRAM}_bucket`, { name: 'b"\\\n', le: '+Inf' }), '11')
  assert.equal(valueOf(samples, `${HISTOGRAM}_count`, { name: 'b"\\\n' }), '11')
  assert.equal(valueOf(samples, `${HISTOGRAM}_bucket`, { name: 'a', le: '0.05' }), '5')
})

test('the registry prints exactly the samples prometheusText prints', async () => {
  const stats = [
    makeStats({ name: 'a', window: { calls: 3, failures: 1, failureRate: 100 / 3 }, latency: makeLatency() }),
    makeStats({ name: 'q"\\\nq', state: 'HALF_OPEN', isolated: true, latency: makeLatency({ sum: 1e-9 }) }),
    makeStats({ name: 'plain', requests: 2 ** 53 }),
  ]
  const registry = new Registry()
  for (const s of stats) registerPrometheus(registry, fakeBreaker(s))
  const byKey = (list) => new Map(list.map((s) => [sampleKey(s), s.value]))
  const fromRegistry = byKey(samplesOf(await registry.metrics()))
  const fromText = byKey(samplesOf(prometheusText(stats)))
  assert.ok(fromText.size > 40)
  assert.deepEqual(fromRegistry, fromText)
  // Same families and types too.
  const types = (text) => parsePrometheus(text).map((f) => `${f.name} ${f.type}`).sort()
  assert.deepEqual(types(await registry.metrics()), types(prometheusText(stats)))
})

test("prom-client's getMetricsAsJSON agrees with the parsed text", async () => {
  const registry = new Registry()
  registerPrometheus(registry, fakeBreaker(makeStats({ name: 'a', window: { calls: 4, failures: 1, failureRate: 25 }, latency: makeLatency() })))
  registerPrometheus(registry, fakeBreaker(makeStats({ name: 'b', state: 'OPEN', consecutiveFailures: 5 })))
  const json = await registry.getMetricsAsJSON()
  const fromJson = new Map()
  for (const metric of json) {
    assert.equal(typeof metric.help, 'string')
    assert.ok(['counter', 'gauge', 'histogram'].includes(metric.type), metric.type)
    for (const v of metric.values) {
      const labels = Object.fromEntries(Object.entries(v.labels).map(([k, x]) => [k, String(x)]))
      fromJson.set(sampleKey({ name: v.metricName ?? metric.name, labels }), v.value)
    }
  }
  const parsed = samplesOf(await registry.metrics())
  assert.equal(parsed.length, fromJson.size)
  for (const s of parsed) {
    assert.ok(fromJson.has(sampleKey(s)), `${sampleKey(s)} in JSON`)
    assert.equal(Number(s.value), fromJson.get(sampleKey(s)), sampleKey(s))
  }
  const types = Object.fromEntries(json.map((m) => [m.name, m.type.toUpperCase()]))
  for (const f of parsePrometheus(await registry.metrics())) assert.equal(types[f.name], f.type, f.name)
})

test('reads the stats afresh at every scrape', async () => {
  const registry = new Registry()
  let stats = makeStats({ name: 'live', latency: makeLatency() })
  registerPrometheus(registry, { getStats: () => stats })
  const first = samplesOf(await registry.metrics())
  assert.equal(valueOf(first, 'circuit_breaker_requests_total', { name: 'live' }), '100')
  assert.equal(valueOf(first, 'circuit_breaker_state', { name: 'live', state: 'closed' }), '1')
  stats = makeStats({ name: 'live', state: 'OPEN', requests: 250, latency: makeLatency({ count: 40, buckets: [{ le: 1, count: 39 }] }) })
  const second = samplesOf(await registry.metrics())
  assert.equal(valueOf(second, 'circuit_breaker_requests_total', { name: 'live' }), '250')
  assert.equal(valueOf(second, 'circuit_breaker_state', { name: 'live', state: 'closed' }), '0')
  assert.equal(valueOf(second, 'circuit_breaker_state', { name: 'live', state: 'open' }), '1')
  assert.equal(valueOf(second, `${HISTOGRAM}_bucket`, { name: 'live', le: '+Inf' }), '40')
  assert.equal(valueOf(second, `${HISTOGRAM}_bucket`, { name: 'live', le: '1' }), '39')
})

test('one scrape calls getStats() once per breaker, so all families show one moment', async () => {
  const registry = new Registry()
  let calls = 0
  let requests = 0
  registerPrometheus(registry, {
    getStats() {
      calls++
      requests += 10
      // successes + failures always equals requests at any one moment.
      return makeStats({ name: 'c', requests, successes: requests - 3, failures: 3, latency: makeLatency() })
    },
  })
  calls = 0
  const samples = samplesOf(await registry.metrics())
  assert.equal(calls, 1)
  const req = Number(valueOf(samples, 'circuit_breaker_requests_total', { name: 'c' }))
  const ok = Number(valueOf(samples, 'circuit_breaker_successes_total', { name: 'c' }))
  assert.equal(ok + 3, req)
  await registry.metrics()
  assert.equal(calls, 2)
})

test('unregistering removes only that breaker; calling it again does nothing', async () => {
  const registry = new Registry()
  const unregisterA = registerPrometheus(registry, fakeBreaker(makeStats({ name: 'a', latency: makeLatency() })))
  registerPrometheus(registry, fakeBreaker(makeStats({ name: 'b', latency: makeLatency() })))
  assert.equal(typeof unregisterA, 'function')
  unregisterA()
  const samples = samplesOf(await registry.metrics())
  assert.ok(samples.length > 0)
  assert.deepEqual([...new Set(samples.map((s) => s.labels.name))], ['b'])
  unregisterA()
  assert.ok(samplesOf(await registry.metrics()).every((s) => s.labels.name === 'b'))
  // The name is free again.
  registerPrometheus(registry, fakeBreaker(makeStats({ name: 'a', requests: 1 })))
  assert.equal(valueOf(samplesOf(await registry.metrics()), 'circuit_breaker_requests_total', { name: 'a' }), '1')
})

test('skips a breaker whose getStats() throws (disposed) without failing the scrape', async () => {
  const registry = new Registry()
  let disposed = false
  registerPrometheus(registry, {
    getStats() {
      if (disposed) throw new Error('breaker is disposed')
      return makeStats({ name: 'gone', latency: makeLatency() })
    },
  })
  registerPrometheus(registry, fakeBreaker(makeStats({ name: 'kept', latency: makeLatency() })))
  assert.ok(samplesOf(await registry.metrics()).some((s) => s.labels.name === 'gone'))
  disposed = true
  const text = await registry.metrics()
  const samples = samplesOf(text)
  assert.ok(samples.length > 0)
  assert.ok(samples.every((s) => s.labels.name === 'kept'))
  assert.equal((await registry.getMetricsAsJSON()).flatMap((m) => m.values).filter((v) => v.labels.name === 'gone').length, 0)
})

test('skips a breaker whose stats are malformed at scrape time, and warns once', async () => {
  const registry = new Registry()
  let stats = makeStats({ name: 'odd' })
  registerPrometheus(registry, { getStats: () => stats })
  registerPrometheus(registry, fakeBreaker(makeStats({ name: 'fine' })))
  const warnings = []
  const onWarning = (w) => { if (w.code === 'CIRCUIT_BREAKER_BAD_STATS') warnings.push(w) }
  process.on('warning', onWarning)
  try {
    stats = makeStats({ name: 'odd', requests: -1 })
    assert.ok(samplesOf(await registry.metrics()).every((s) => s.labels.name === 'fine'))
    await registry.metrics()
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(warnings.length, 1)
    assert.match(warnings[0].message, /odd.*requests/)
  } finally {
    process.off('warning', onWarning)
  }
})

test('registering the same breaker twice, or a second breaker with a taken name, throws a TypeError', async () => {
  const registry = new Registry()
  const breaker = fakeBreaker(makeStats({ name: 'db' }))
  registerPrometheus(registry, breaker)
  assert.throws(() => registerPrometheus(registry, breaker), (error) =>
    error instanceof TypeError && /already registered/.test(error.message))
  assert.throws(() => registerPrometheus(registry, fakeBreaker(makeStats({ name: 'db', latency: makeLatency() }))), (error) =>
    error instanceof TypeError && /unique/.test(error.message) && /"db"/.test(error.message))
  // Nothing changed: one sample per counter, no histogram family.
  const text = await registry.metrics()
  assert.ok(!text.includes(HISTOGRAM))
  assert.equal(family(parsePrometheus(text), 'circuit_breaker_requests_total').metrics.length, 1)
  // The same breaker may go in another registry.
  registerPrometheus(new Registry(), breaker)
})

test("refuses a registry that already has a metric of the same name it did not register", async () => {
  const registry = new Registry()
  new Counter({ name: 'circuit_breaker_probes_total', help: 'someone else', registers: [registry] })
  assert.throws(() => registerPrometheus(registry, fakeBreaker(makeStats())), (error) =>
    error instanceof TypeError && error.message.includes("'circuit_breaker_probes_total'"))
  // Checked before anything was registered.
  assert.equal(registry.getSingleMetric('circuit_breaker_requests_total'), undefined)
  assert.equal(registry.getMetricsAsArray().length, 1)
})

test('adds the histogram and window families when a breaker that has them joins', async () => {
  const registry = new Registry()
  registerPrometheus(registry, fakeBreaker(makeStats({ name: 'plain' })))
  let text = await registry.metrics()
  assert.ok(!text.includes(HISTOGRAM) && !text.includes('window'))
  registerPrometheus(registry, fakeBreaker(makeStats({
    name: 'rich', window: { calls: 10, failures: 5, failureRate: 50 }, latency: makeLatency(),
  })))
  text = await registry.metrics()
  const samples = samplesOf(text)
  assert.equal(valueOf(samples, 'circuit_breaker_window_failure_rate', { name: 'rich' }), '0.5')
  assert.equal(valueOf(samples, `${HISTOGRAM}_count`, { name: 'rich' }), '10')
  assert.ok(!samples.some((s) => s.name.startsWith('circuit_breaker_window') && s.labels.name === 'plain'))
  assert.equal(family(parsePrometheus(text), HISTOGRAM).type, 'HISTOGRAM')
})

test('registers again after registry.clear()', async () => {
  const registry = new Registry()
  registerPrometheus(registry, fakeBreaker(makeStats({ name: 'a' })))
  registry.clear()
  assert.equal(await registry.metrics(), '\n')
  registerPrometheus(registry, fakeBreaker(makeStats({ name: 'b' })))
  const names = samplesOf(await registry.metrics()).map((s) => s.labels.name)
  assert.deepEqual([...new Set(names)], ['a', 'b'])
})

test('an OpenMetrics registry prints each counter with a single _total', async () => {
  const registry = new Registry(Registry.OPENMETRICS_CONTENT_TYPE)
  registerPrometheus(registry, fakeBreaker(makeStats({ name: 'om', latency: makeLatency() })))
  const text = await registry.metrics()
  assert.match(text, /^# TYPE circuit_breaker_requests counter$/m)
  assert.match(text, /^circuit_breaker_requests_total\{name="om"\} 100$/m)
  assert.match(text, /^circuit_breaker_call_duration_seconds_bucket\{name="om",le="\+Inf"\} 10$/m)
  assert.ok(!text.includes('_total_total'))
  assert.ok(text.endsWith('# EOF\n'))
  // And again on a second scrape (the registry renames counters in place).
  assert.equal(await registry.metrics(), text)
})

test('registerPrometheus names a bad registry or breaker and what it got', () => {
  const breaker = fakeBreaker(makeStats())
  for (const [bad, got] of [[undefined, 'undefined'], [{}, 'an object'], [{ registerMetric() {} }, 'an object'], [new Map(), 'an instance of Map']]) {
    assert.throws(() => registerPrometheus(bad, breaker), (error) =>
      error instanceof TypeError && error.message.includes('registry') && error.message.endsWith(`got ${got}`))
  }
  const registry = new Registry()
  for (const [bad, got] of [[null, 'null'], [{ getStats: 1 }, 'an object'], [42, 'the number 42']]) {
    assert.throws(() => registerPrometheus(registry, bad), (error) =>
      error instanceof TypeError && error.message.includes('breaker') && error.message.endsWith(`got ${got}`))
  }
  assert.throws(() => registerPrometheus(registry, fakeBreaker(makeStats({ state: 'BROKEN' }))), (error) =>
    error instanceof TypeError && error.message.includes('getStats().state'))
  assert.equal(registry.getMetricsAsArray().length, 0)
})

test('metrics.js loads without prom-client', () => {
  const script = `
    const Module = require('node:module')
    const load = Module._load
    Module._load = function (request, ...rest) {
      if (request.includes('prom-client')) throw new Error('prom-client was required')
      return load.call(this, request, ...rest)
    }
    const m = require(${JSON.stringify(metricsFile)})
    const r = { metrics: new Map(), registerMetric(x) { this.metrics.set(x.name, x) }, getSingleMetric(n) { return this.metrics.get(n) } }
    m.registerPrometheus(r, { getStats: () => (${JSON.stringify(makeStats({ name: 'x' }))}) })
    console.log(Object.keys(m).sort().join(','), r.metrics.size,
      Object.keys(require.cache).some((f) => f.includes('prom-client')))
  `
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' })
  assert.equal(run.stderr, '')
  assert.equal(run.stdout.trim(), 'BULKHEAD_METRICS,FAMILIES,HISTOGRAM,checkStats,prometheusText,registerPrometheus 12 false')
})
