// The two clocks: decisions run on the host's monotonic clock (on Linux
// CLOCK_BOOTTIME, which /proc/uptime also reads), and the times users see are
// `Date.now()`-scale and never later than now. Stepping the wall clock needs
// root and would disturb the host: the Rust tests step injected clocks.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import CircuitBreaker, { createSharedArray } from 'shared-circuit-breaker'

const native = createRequire(import.meta.url)('../binding.js')

test('decisions use a clock on the scale of /proc/uptime (CLOCK_BOOTTIME)', { skip: process.platform !== 'linux' }, () => {
  const before = native.hostClockMs()
  const [uptimeSeconds] = readFileSync('/proc/uptime', 'utf8').split(' ')
  const after = native.hostClockMs()
  // /proc/uptime has 10 ms steps, rounded down.
  const uptimeMs = Number(uptimeSeconds) * 1000
  assert.ok(uptimeMs >= before - 10 && uptimeMs <= after, `uptime ${uptimeMs} ms, host clock ${before}..${after} ms`)
  assert.ok(Math.abs(native.hostClockMs() - Date.now()) > 365 * 24 * 3600 * 1000, 'not the wall clock')
})

test('the host clock never goes back between readings', () => {
  let last = native.hostClockMs()
  for (let i = 0; i < 10_000; i++) {
    const now = native.hostClockMs()
    assert.ok(now >= last, `${now} after ${last}`)
    last = now
  }
})

test('stateSince and lastFailureTime are Date.now()-scale and never in the future', async () => {
  const breaker = new CircuitBreaker(createSharedArray(), 1, 60_000)
  const before = Date.now()
  await assert.rejects(breaker.execute(async () => {
    throw new Error('down')
  }))
  const stats = breaker.getStats()
  const after = Date.now()
  assert.equal(stats.state, 'OPEN')
  for (const name of ['stateSince', 'lastFailureTime']) {
    assert.ok(stats[name] >= before && stats[name] <= after, `${name} ${stats[name]} outside ${before}..${after}`)
  }
  assert.ok(breaker.getLastFailureTime() <= Date.now())
})

test('an open period is measured on the host clock', async () => {
  const breaker = new CircuitBreaker(createSharedArray(), 1, 50)
  await assert.rejects(breaker.execute(async () => {
    throw new Error('down')
  }))
  const opened = native.hostClockMs()
  assert.equal(breaker.getState(), 'OPEN')
  while (native.hostClockMs() - opened < 60) await new Promise((resolve) => setTimeout(resolve, 5))
  assert.equal(breaker.getState(), 'HALF_OPEN')
})
