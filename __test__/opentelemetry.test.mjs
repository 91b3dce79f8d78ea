// registerOpenTelemetry(meter, breaker), read back through the official SDK:
// a MeterProvider whose PeriodicExportingMetricReader exports to an
// InMemoryMetricExporter on forceFlush().
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'
import CircuitBreaker, { createSharedArray, registerOpenTelemetry } from 'shared-circuit-breaker'

function sdk() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3600000 })
  const provider = new MeterProvider({ readers: [reader] })
  const meter = provider.getMeter('breakers')
  // Every collection: name -> { description, unit, points: [{ attributes, value }] }.
  const collect = async () => {
    exporter.reset()
    await reader.forceFlush()
    const metrics = {}
    for (const resource of exporter.getMetrics()) {
      for (const scope of resource.scopeMetrics) {
        for (const metric of scope.metrics) {
          metrics[metric.descriptor.name] = {
            description: metric.descriptor.description,
            unit: metric.descriptor.unit,
            points: metric.dataPoints.map(({ attributes, value }) => ({ attributes, value })),
          }
        }
      }
    }
    return metrics
  }
  return { meter, collect, shutdown: () => provider.shutdown() }
}

// The value of `metric` for breaker `name` (and more attributes).
function valueOf(metrics, metric, attributes) {
  const points = (metrics[metric]?.points ?? []).filter((p) =>
    Object.entries(attributes).every(([k, v]) => p.attributes[k] === v))
  assert.equal(points.length, 1, `${metric} ${JSON.stringify(attributes)}: ${JSON.stringify(metrics[metric])}`)
  return points[0].value
}

test('counters and gauges carry the breaker\'s counts and state, under the Prometheus names and labels', async () => {
  const { meter, collect, shutdown } = sdk()
  const breaker = new CircuitBreaker(createSharedArray(), { name: 'inventory', failureThreshold: 3, resetTimeout: 60000 })
  registerOpenTelemetry(meter, breaker)
  await breaker.execute(async () => 'ok')
  await breaker.execute(async () => 'ok')
  for (let i = 0; i < 3; i++) await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})
  await breaker.execute(async () => 'refused').catch(() => {})

  const metrics = await collect()
  const stats = breaker.getStats()
  const labels = { name: 'inventory' }
  assert.equal(valueOf(metrics, 'circuit_breaker_requests', labels), 6)
  assert.equal(valueOf(metrics, 'circuit_breaker_successes', labels), 2)
  assert.equal(valueOf(metrics, 'circuit_breaker_failures', labels), 3)
  assert.equal(valueOf(metrics, 'circuit_breaker_rejections', labels), 1)
  assert.equal(valueOf(metrics, 'circuit_breaker_consecutive_failures', labels), 3)
  assert.equal(stats.consecutiveFailures, 3)
  for (const [state, value] of [['closed', 0], ['open', 1], ['half_open', 0]]) {
    assert.equal(valueOf(metrics, 'circuit_breaker_state', { name: 'inventory', state }), value)
  }
  assert.equal(valueOf(metrics, 'circuit_breaker_isolated', labels), 0)

  // Every family of the Prometheus output is there, counters without
  // `_total`, with the same HELP text as description.
  const prometheus = breaker.metrics()
  const families = [...prometheus.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, type]) => ({ name, type }))
  assert.ok(families.length >= 9)
  for (const { name, type } of families) {
    const otelName = type === 'counter' ? name.replace(/_total$/, '') : name
    const help = new RegExp(`^# HELP ${name} (.*)$`, 'm').exec(prometheus)[1]
    assert.equal(metrics[otelName]?.description, help, otelName)
    // And the same labels, with the same values.
    const promLabels = [...prometheus.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))]
      .map(([, text, value]) => ({
        attributes: Object.fromEntries([...text.matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => [k, v])),
        value: Number(value),
      }))
    assert.deepEqual(metrics[otelName].points, promLabels, otelName)
  }
  await shutdown()
})

test('the latency histogram as percentile gauges, and the window gauges, when the breaker has them', async () => {
  const { meter, collect, shutdown } = sdk()
  const options = { name: 'timed', histogram: true, failureRateThreshold: 50, windowSize: 10, minimumCalls: 10 }
  const breaker = new CircuitBreaker(createSharedArray(options), options)
  const plain = new CircuitBreaker(createSharedArray(), { name: 'plain' })
  registerOpenTelemetry(meter, breaker)
  registerOpenTelemetry(meter, plain)
  for (const ms of [1, 2, 5, 20]) await breaker.execute(() => new Promise((resolve) => setTimeout(resolve, ms)))
  await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})

  const metrics = await collect()
  const { latency, window } = breaker.getStats()
  const duration = metrics.circuit_breaker_call_duration_seconds
  assert.equal(duration.unit, 's')
  assert.deepEqual(
    duration.points.map((p) => [p.attributes.quantile, p.value]),
    [['0.5', latency.p50], ['0.9', latency.p90], ['0.99', latency.p99], ['1', latency.max]],
  )
  assert.ok(duration.points.every((p) => p.attributes.name === 'timed'), 'no percentiles for the breaker without a histogram')
  // A 20 ms timer may fire a little early; the histogram buckets are 4 per power of two.
  assert.ok(latency.max >= 0.01, `max ${latency.max}`)
  assert.equal(valueOf(metrics, 'circuit_breaker_window_calls', { name: 'timed' }), window.calls)
  assert.equal(valueOf(metrics, 'circuit_breaker_window_failure_rate', { name: 'timed' }), window.failureRate / 100)
  assert.equal(metrics.circuit_breaker_window_calls.points.length, 1)
  await shutdown()
})

test('the counts are those of every thread sharing the breaker', async () => {
  const { meter, collect, shutdown } = sdk()
  const array = createSharedArray()
  const breaker = new CircuitBreaker(array, { name: 'shared', failureThreshold: 3, resetTimeout: 60000 })
  registerOpenTelemetry(meter, breaker)
  const report = await new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./fixtures/worker.mjs', import.meta.url), {
      workerData: { role: 'trip', array, threshold: 3, timeout: 60000 },
    })
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  assert.equal(report.calls, 3)
  const metrics = await collect()
  assert.equal(valueOf(metrics, 'circuit_breaker_failures', { name: 'shared' }), 3)
  assert.equal(valueOf(metrics, 'circuit_breaker_state', { name: 'shared', state: 'open' }), 1)
  await shutdown()
})

test('unregistering stops the reports; a name is registered once per meter; a disposed breaker is left out', async () => {
  const { meter, collect, shutdown } = sdk()
  const a = new CircuitBreaker(createSharedArray(), { name: 'a' })
  const b = new CircuitBreaker(createSharedArray(), { name: 'b' })
  const unregister = registerOpenTelemetry(meter, a)
  registerOpenTelemetry(meter, b)
  assert.throws(() => registerOpenTelemetry(meter, a), /breaker is already registered with this meter/)
  const twin = new CircuitBreaker(createSharedArray(), { name: 'a' })
  assert.throws(() => registerOpenTelemetry(meter, twin), (error) =>
    error instanceof TypeError && /name must be unique for the meter, got the string "a"/.test(error.message))
  await a.execute(async () => 1)
  let metrics = await collect()
  const requests = (name) => metrics.circuit_breaker_requests.points.find((p) => p.attributes.name === name)?.value
  assert.deepEqual([requests('a'), requests('b')], [1, 0])
  unregister()
  unregister()
  await a.execute(async () => 2)
  await a.execute(async () => 3)
  b.dispose()
  // The SDK repeats a cumulative stream's last point; what matters is that
  // 'a' is no longer read (3 requests now) and a disposed 'b' fails nothing.
  metrics = await collect()
  assert.equal(a.getStats().requests, 3)
  assert.ok([undefined, 1].includes(requests('a')), `a reported ${requests('a')} after unregister()`)
  // The name is free again: now the twin's counts are reported under it.
  registerOpenTelemetry(meter, twin)
  for (let i = 0; i < 5; i++) await twin.execute(async () => i)
  metrics = await collect()
  assert.equal(requests('a'), 5)
  await shutdown()
})

test('a meter or breaker of the wrong kind is a TypeError naming the argument and what it got', () => {
  const breaker = new CircuitBreaker(createSharedArray())
  const { meter } = sdk()
  for (const bad of [undefined, null, {}, { createObservableCounter() {} }, 'meter']) {
    assert.throws(() => registerOpenTelemetry(bad, breaker), (error) =>
      error instanceof TypeError && /^registerOpenTelemetry: meter must be an OpenTelemetry Meter .*, got /.test(error.message))
  }
  for (const bad of [undefined, null, {}, 42]) {
    assert.throws(() => registerOpenTelemetry(meter, bad), (error) =>
      error instanceof TypeError && /^registerOpenTelemetry: breaker must be a CircuitBreaker .*, got /.test(error.message))
  }
})

test('no hard dependency: the package loads with @opentelemetry/*, prom-client and cockatiel unresolvable, and depends on none of them', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies']) {
    for (const name of Object.keys(pkg[field] ?? {})) {
      assert.doesNotMatch(name, /^(@opentelemetry\/|prom-client$|cockatiel$)/, `${field} names ${name}`)
    }
  }
  const script = `
    const Module = require('node:module')
    const load = Module._load
    Module._load = function (request, ...rest) {
      if (/^(@opentelemetry\\/|prom-client$|cockatiel$)/.test(request)) throw new Error('loaded ' + request)
      return load.call(this, request, ...rest)
    }
    const m = require('shared-circuit-breaker')
    const b = new m.CircuitBreaker(m.createSharedArray())
    console.log(typeof m.registerOpenTelemetry, typeof m.registerPrometheus, b.getState())
  `
  const run = spawnSync(process.execPath, ['-e', script], { cwd: new URL('..', import.meta.url), encoding: 'utf8' })
  assert.equal(run.stderr, '')
  assert.equal(run.stdout.trim(), 'function function CLOSED')
})
