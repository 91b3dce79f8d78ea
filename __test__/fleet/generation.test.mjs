// Fleet mode over memory another thread (or process, over a breaker file)
// wrote junk into: the fleet's side of the binding reads the transition log
// for the generations it has not seen, and a GENERATION word moved far ahead
// must not make it read them one by one. Skipped when redis-server is
// missing unless FLEET_TESTS_REQUIRED=1.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import CircuitBreaker, { CircuitBreakerKeys, createSharedArray } from 'shared-circuit-breaker'
import { skipUnlessServer, startRedis } from './support/redis.mjs'
import { until } from './support/hosts.mjs'

const skip = skipUnlessServer()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

test('a GENERATION word written far ahead during the fleet probe stalls no fleet call', { skip, timeout: 60_000 }, async (t) => {
  const redis = await startRedis()
  t.after(() => redis.stop())
  const array = createSharedArray()
  const breaker = new CircuitBreaker(array, {
    failureThreshold: 1,
    resetTimeout: 50,
    fleet: { url: redis.url, quorum: 1, lease: 30_000, host: 'h1', key: 'generation' },
  })
  t.after(() => breaker.dispose())
  await until(() => breaker.getStats().fleet.connected, 5000, 'the store')
  // This host's trip is the quorum: the fleet opens, and after its open
  // period grants this host the probe lease, which starts a half-open
  // episode here (the fleet's side then watches the log for its end).
  await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})
  await until(() => breaker.getState() === 'HALF_OPEN', 5000, 'the fleet probe')
  const generation = Atomics.load(array, CircuitBreakerKeys.GENERATION)
  Atomics.store(array, CircuitBreakerKeys.GENERATION, generation + 2 ** 30)
  await sleep(20)
  const started = performance.now()
  for (let i = 0; i < 5; i++) {
    assert.equal(breaker.getStats().fleet.host, 'h1')
    await sleep(5)
  }
  const took = performance.now() - started
  assert.ok(took < 1000, `five fleet reads took ${Math.round(took)} ms`)
})
