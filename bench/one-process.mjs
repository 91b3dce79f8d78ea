#!/usr/bin/env node
// Each opt-in feature's cost per call, every configuration in ONE process,
// taking turns round by round: `await task()`, the bare breaker, then each
// feature (sequential CLOSED successes, `task = async () => 1`). On a busy
// machine this is steadier than run.mjs's feature table, whose reference
// row runs in another process at another moment; it compares nothing with
// the peers. The minimum per row over the rounds, and "added" = that row's
// minimum minus the bare breaker's.
//
//   node bench/one-process.mjs [DIR]   (DIR: another checkout to measure,
//                                       e.g. a build of an older commit)
// Pin it for steadier figures: taskset -c 1 node bench/one-process.mjs

import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROUNDS = 23
const CALLS = 100_000
const root = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'))
const { CircuitBreaker, createSharedArray } = createRequire(import.meta.url)(path.join(root, 'index.js'))

const CONFIGURATIONS = {
  'the bare breaker': {},
  'timeout: 10000': { timeout: 10000 },
  'count window (100 calls)': { failureRateThreshold: 50, windowSize: 100 },
  'time window (10 s)': { failureRateThreshold: 50, windowType: 'time', windowSize: 10000 },
  'success + failure listeners': { listen: true },
  'histogram: true': { histogram: true },
  'all of the above but the count window': {
    timeout: 10000,
    histogram: true,
    failureRateThreshold: 50,
    windowType: 'time',
    windowSize: 10000,
    listen: true,
  },
}

const heard = { count: 0 }
const breakers = Object.entries(CONFIGURATIONS).map(([name, { listen, ...options }]) => {
  const breaker = new CircuitBreaker(createSharedArray(options), options)
  if (listen) {
    breaker.on('success', () => heard.count++)
    breaker.on('failure', () => heard.count++)
  }
  return { name, breaker, samples: [] }
})
const task = async () => 1
const bare = { name: '`await task()`', breaker: null, samples: [] }

async function round(row) {
  const started = process.hrtime.bigint()
  if (row.breaker === null) for (let i = 0; i < CALLS; i++) await task()
  else for (let i = 0; i < CALLS; i++) await row.breaker.execute(task)
  row.samples.push(Number(process.hrtime.bigint() - started) / CALLS)
}

const rows = [bare, ...breakers]
for (let r = 0; r < ROUNDS; r++) for (const row of rows) await round(row)
const expected = CALLS * ROUNDS * 2
if (heard.count !== expected) throw new Error(`the listeners heard ${heard.count} calls, not ${expected}`)

const min = (xs) => Math.min(...xs)
const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1]
const reference = min(breakers[0].samples)
console.log(`${root}: ${ROUNDS} rounds of ${CALLS} calls, ns per call`)
console.log('| configuration | min | median | added (min) |\n|:---|---:|---:|---:|')
for (const row of rows) {
  const added = row.breaker === null || row === breakers[0] ? '' : `${(min(row.samples) - reference).toFixed(0)}`
  console.log(`| ${row.name} | ${min(row.samples).toFixed(1)} | ${median(row.samples).toFixed(1)} | ${added} |`)
}
