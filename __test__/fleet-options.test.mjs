// The `fleet` option is checked at construction, before anything connects:
// TypeErrors and RangeErrors that name the option; no server needed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import CircuitBreaker from 'shared-circuit-breaker'

const INDEX = fileURLToPath(new URL('../index.js', import.meta.url))
const array = () => new Int32Array(new SharedArrayBuffer(CircuitBreaker.arrayLength() * 4))
const url = 'redis://127.0.0.1:1'

test('a bad fleet option is a TypeError or RangeError naming it', () => {
  const cases = [
    [1, TypeError, /^fleet must be an object with a url, got the number 1/],
    [{}, TypeError, /^fleet\.url must be a redis:\/\/, rediss:\/\/, valkey:\/\/ or valkeys:\/\/ URL string, got undefined/],
    [{ url: 'http://x' }, TypeError, /^fleet\.url .* got "http:\/\/x"/],
    [{ url: 'redis://user:secret@[::1' }, TypeError, /fleet url/],
    [{ url, quorum: 0 }, RangeError, /^fleet\.quorum must be an integer from 1 to 1000, got 0$/],
    [{ url, quorum: '2' }, TypeError, /^fleet\.quorum must be a number, got/],
    [{ url, voteWindow: 1.5 }, RangeError, /^fleet\.voteWindow must be an integer from 1 to 86400000, got 1.5$/],
    [{ url, lease: 0 }, RangeError, /^fleet\.lease /],
    [{ url, commandTimeout: 60001 }, RangeError, /^fleet\.commandTimeout /],
    [{ url, refresh: 5 }, RangeError, /^fleet\.refresh must be an integer from 10 to 3600000, got 5$/],
    [{ url, host: 'two words' }, RangeError, /^fleet\.host must be 1 to 200 bytes without whitespace, got "two words"$/],
    [{ url, key: '{tag}' }, RangeError, /^fleet\.key must be 1 to 200 bytes without whitespace or braces/],
    [{ url, key: 5 }, TypeError, /^fleet\.key must be a string/],
    [{ url, cluster: 'yes' }, TypeError, /^fleet\.cluster must be a boolean/],
  ]
  for (const [fleet, kind, message] of cases) {
    assert.throws(() => new CircuitBreaker(array(), { fleet }), (error) => error instanceof kind && message.test(error.message), JSON.stringify(fleet))
  }
  // A password never appears in an error.
  assert.throws(() => new CircuitBreaker(array(), { fleet: { url: 'http://user:secret@x' } }), (e) => !e.message.includes('secret'))
})

test('fromFile checks the fleet option before it creates the file', () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cbjs-fleet-options-')), 'x.breaker')
  assert.throws(() => CircuitBreaker.fromFile(file, { fleet: { url, quorum: -1 } }), RangeError)
  assert.equal(fs.existsSync(file), false)
})

test('getStats().fleet is null without the option; a process with an unreachable store exits by itself', () => {
  assert.equal(new CircuitBreaker(array()).getStats().fleet, null)
  const child = spawnSync(
    process.execPath,
    ['-e', `const { CircuitBreaker } = require(${JSON.stringify(INDEX)})
const b = new CircuitBreaker(new Int32Array(new SharedArrayBuffer(CircuitBreaker.arrayLength() * 4)), { fleet: { url: ${JSON.stringify(url)}, key: 'gone' } })
b.on('fleetDegraded', ({ reason }) => console.log(reason.startsWith('the store cannot be reached') ? 'degraded' : reason, b.getStats().fleet.connected))
setTimeout(() => {}, 300)`],
    { encoding: 'utf8', timeout: 10000 },
  )
  assert.equal(child.signal, null, 'exited by itself')
  assert.equal(child.status, 0, child.stderr)
  assert.equal(child.stdout.trim(), 'degraded false')
})
