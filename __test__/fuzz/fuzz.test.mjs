// The long fuzz run: FUZZ_RUNS cases of the constructor (60000 by default,
// about a minute here), with a quarter as many sequences of method calls,
// half as many of binding calls and a tenth as many of breaker files.
// FUZZ_SEED replays a run. What is fed and checked: ../fixtures/fuzz-child.mjs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fuzz } from '../fixtures/fuzz-run.mjs'

const RUNS = Number(process.env.FUZZ_RUNS ?? 60000)

test(`${RUNS} random cases: typed errors, user errors passed through, no crash`, { timeout: 1_800_000 }, async (t) => {
  const started = performance.now()
  const figures = await fuzz(t, RUNS, 1_700_000)
  t.diagnostic(`fuzz took ${Math.round((performance.now() - started) / 1000)} s`)
  assert.deepEqual(figures.failures, [])
  assert.ok(figures.constructed > 0 && figures.wrappedOptionErrors > 0 && figures.calls > 0, JSON.stringify(figures))
})
