// A short fuzz run for `npm test`; `npm run test:fuzz` runs many more
// cases (see fuzz/fuzz.test.mjs and fixtures/fuzz-child.mjs for what is fed
// and checked). Set FUZZ_SEED to replay a run.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fuzz } from './fixtures/fuzz-run.mjs'

test('random arguments to the constructor, every method and the binding: typed errors, no crash', { timeout: 120_000 }, async (t) => {
  const figures = await fuzz(t, 1500, 110_000)
  assert.deepEqual(figures.failures, [])
  // The cases reached both outcomes.
  assert.ok(figures.constructed > 0 && figures.wrappedOptionErrors > 0 && figures.calls > 0, JSON.stringify(figures))
})
