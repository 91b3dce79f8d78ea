// Memory stays flat: 10 million calls on one breaker, and a million breakers
// created and dropped. Each runs in a child process started with
// --expose-gc, which samples its own memory after full collections (see
// ../fixtures/memory-child.mjs). The bounds are generous: they catch a leak
// per call or per breaker (10 million calls leaking 8 bytes each is 76 MiB),
// not allocator noise.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

const CHILD = fileURLToPath(new URL('../fixtures/memory-child.mjs', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CALLS = 10_000_000
const BREAKERS = 1_000_000

async function child(...args) {
  const process_ = spawn(process.execPath, ['--expose-gc', CHILD, ...args.map(String)], { cwd: ROOT })
  let stdout = ''
  let stderr = ''
  process_.stdout.on('data', (chunk) => (stdout += chunk))
  process_.stderr.on('data', (chunk) => (stderr += chunk))
  const killer = setTimeout(() => process_.kill('SIGKILL'), 280_000)
  const [code, signal] = await once(process_, 'exit')
  clearTimeout(killer)
  assert.deepEqual({ code, signal, stderr }, { code: 0, signal: null, stderr: '' })
  return JSON.parse(stdout)
}

test(`${CALLS / 1e6} million calls (successes, failures, refusals, probes): memory stays flat`, { timeout: 300_000 }, async (t) => {
  const result = await child('calls', CALLS)
  t.diagnostic(JSON.stringify(result))
  const blocks = CALLS / 1_000_000
  // Every call was counted: the calls, plus one probe per block.
  assert.equal(result.requests, CALLS + blocks)
  assert.equal(result.outcomes.resolved + result.outcomes.rejected, CALLS)
  assert.equal(result.samples.length, blocks)
  // The first million calls are the warm-up; compare the last sample with it.
  const first = result.samples[0]
  const last = result.samples.at(-1)
  const growth = { rss: last.rss - first.rss, heapUsed: last.heapUsed - first.heapUsed }
  t.diagnostic(`after ${first.calls} calls: rss ${first.rss} MiB, heap ${first.heapUsed} MiB; after ${last.calls}: rss ${last.rss} MiB, heap ${last.heapUsed} MiB; ${result.ms} ms`)
  assert.ok(growth.rss < 32, `RSS grew ${growth.rss} MiB`)
  assert.ok(growth.heapUsed < 8, `heap grew ${growth.heapUsed} MiB`)
})

test(`${BREAKERS / 1e6} million breakers created and dropped: memory and the handle table come back`, { timeout: 300_000 }, async (t) => {
  const result = await child('breakers', BREAKERS)
  t.diagnostic(JSON.stringify(result))
  const { before, after } = result
  t.diagnostic(`before: rss ${before.rss} MiB, heap ${before.heapUsed} MiB; after: rss ${after.rss} MiB, heap ${after.heapUsed} MiB; ${result.ms} ms`)
  assert.ok(after.rss - before.rss < 32, `RSS grew ${after.rss - before.rss} MiB`)
  assert.ok(after.heapUsed - before.heapUsed < 4, `heap grew ${after.heapUsed - before.heapUsed} MiB`)
  // The native table's slots are freed by the finalizers and reused: after
  // the collections the next breaker gets a slot freed earlier, not a new one
  // at the end, and during the run the table never came near one slot per
  // breaker made.
  assert.ok(after.nextHandle <= result.maxHandleSeen, `next handle after the run: ${after.nextHandle}, largest seen ${result.maxHandleSeen}`)
  assert.ok(result.maxHandleSeen < BREAKERS / 4, `largest handle seen during the run: ${result.maxHandleSeen}`)
})
