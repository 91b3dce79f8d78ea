// Four worker threads hammer ONE shared breaker while the dependency fails
// in bursts, so the breaker opens, half-opens and closes hundreds of times
// under real contention. Afterwards the counts must add up exactly, every
// state ever seen must be a state, every transition seen must be one the
// state machine has, and no half-open episode may have admitted two probes.
//
//   CLOSED ──threshold failures──▶ OPEN ──resetTimeout──▶ HALF_OPEN ──probe ok──▶ CLOSED
//                                   ▲                      │  │
//                                   └──────probe fails─────┘  └─lease ran out─▶ HALF_OPEN (next episode)
//
// How probes are told apart from other tasks. The control word (STATE low,
// GENERATION high) changes by one 64-bit CAS per transition and every
// transition bumps the generation, so (state, generation) names one
// episode. Each call reads the word before `execute` (w0) and its task reads
// it again when it starts (w1). A task that starts while w1 is HALF_OPEN is
// not necessarily the probe: a call admitted on the CLOSED fast path, or a
// probe of an episode whose lease ran out, may be held up (its thread
// preempted) between admission and its task starting, and start inside a
// later episode. So a task counts as the probe of episode w1 only if
// w0 === w1 or w0 is the OPEN word w1 came from: then nothing but this
// episode's start happened in between, the call was admitted by the native
// side while the episode was current, and it holds that episode's ticket.
// Two such probes in one episode are a real violation (the check cannot
// fire on a correct breaker). The others are counted as "uncertain". A
// probe's task also notes whether its episode ended while it ran: the next
// generation must then be HALF_OPEN (its lease ran out), never CLOSED or
// OPEN (another call's result deciding in its place). The second test shows
// both checks fire on a breaker that has no probe lease.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import CircuitBreaker, { CircuitBreakerKeys, CircuitBreakerStates, createSharedArray } from 'shared-circuit-breaker'
import { GENERATIONS, STATS, newRecord, watcher } from '../fixtures/stress-record.mjs'

const WORKER = new URL('../fixtures/stress-worker.mjs', import.meta.url)
const { CLOSED, OPEN, HALF_OPEN } = CircuitBreakerStates
const NAMES = ['CLOSED', 'OPEN', 'HALF_OPEN']
// Transitions the state machine has (from -> to), with no forced half-open
// and no STATE written from JavaScript.
const ALLOWED = new Set([`${CLOSED}>${OPEN}`, `${OPEN}>${HALF_OPEN}`, `${HALF_OPEN}>${CLOSED}`, `${HALF_OPEN}>${OPEN}`, `${HALF_OPEN}>${HALF_OPEN}`])

const WORKERS = 4
const CALLS = Number(process.env.STRESS_CALLS ?? 250_000)
const SETTINGS = { lanes: 16, threshold: 3, timeout: 1, burstMs: 1 }

async function hammer({ workers, calls, leaseless = false }) {
  const array = createSharedArray()
  const record = newRecord()
  const { look } = watcher(array, record)
  let sampling = true
  let mainSamples = 0
  // The main thread samples the word too, between its other work.
  const sampler = (async () => {
    while (sampling) {
      for (let k = 0; k < 2000; k++) look()
      mainSamples += 2000
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
  })()
  const started = performance.now()
  const runs = Array.from({ length: workers }, async () => {
    const worker = new Worker(WORKER, { workerData: { array, calls, record, leaseless, ...SETTINGS } })
    const [[message], [code]] = await Promise.all([once(worker, 'message'), once(worker, 'exit')])
    assert.equal(code, 0)
    return message
  })
  const results = await Promise.all(runs)
  const ms = performance.now() - started
  sampling = false
  await sampler
  look()
  return { array, record, results, ms, mainSamples }
}

function sum(results, key) {
  return results.reduce((total, result) => total + result[key], 0)
}

// 'OPEN+3': the word was OPEN before `execute` and 3 generations later when the task started.
function mergeKinds(results) {
  const merged = {}
  for (const { uncertainKinds } of results) {
    for (const [kind, n] of Object.entries(uncertainKinds)) {
      const [state, delta] = kind.split('+')
      const name = `${NAMES[state]}+${delta}`
      merged[name] = (merged[name] ?? 0) + n
    }
  }
  return merged
}

// Sums a 64-bit counter over the eight stripes, reading the raw slots.
function striped(array, name) {
  const wide = new BigInt64Array(array.buffer, array.byteOffset)
  let total = 0n
  for (let stripe = 0; stripe < 8; stripe++) {
    const index = CircuitBreakerKeys[stripe === 0 ? name : `${name}_${stripe}`]
    total += Atomics.load(wide, index / 2)
  }
  return Number(total)
}

// Walks the generations 0..final and what was seen of each.
function analyse({ genState, probes, started, endedUnder }, finalGeneration) {
  const report = { generations: finalGeneration + 1, unseen: 0, openings: 0, closings: 0, halfOpenEpisodes: 0 }
  Object.assign(report, { probeFailures: 0, leaseExpiries: 0, episodesWithOneProbe: 0, endedByProbeWithNoTaskStarted: [] })
  report.badTransitions = []
  report.endedUnderProbe = { leaseExpired: 0, unseen: 0, otherwise: [] }
  report.maxProbesInAnEpisode = 0
  report.maxTasksStartedInAnEpisode = 0
  for (let g = 0; g <= finalGeneration; g++) {
    const state = genState[g] - 1
    const previous = g > 0 ? genState[g - 1] - 1 : -1
    report.maxProbesInAnEpisode = Math.max(report.maxProbesInAnEpisode, probes[g])
    report.maxTasksStartedInAnEpisode = Math.max(report.maxTasksStartedInAnEpisode, started[g])
    if (endedUnder[g] === 1) {
      // Its probe's task was still running when the episode ended: only a
      // lease running out (HALF_OPEN -> HALF_OPEN) may do that, never
      // another call's result.
      const next = genState[g + 1] - 1
      if (next === HALF_OPEN) report.endedUnderProbe.leaseExpired++
      else if (next < 0) report.endedUnderProbe.unseen++
      else report.endedUnderProbe.otherwise.push(`${g}: HALF_OPEN -> ${NAMES[next]} while its probe ran`)
    }
    if (state < 0) {
      report.unseen++
      continue
    }
    if (state === OPEN) report.openings++
    if (state === CLOSED && g > 0) report.closings++
    if (state === HALF_OPEN) {
      report.halfOpenEpisodes++
      if (probes[g] === 1) report.episodesWithOneProbe++
    }
    if (previous >= 0 && g > 0) {
      if (!ALLOWED.has(`${previous}>${state}`)) report.badTransitions.push(`${g}: ${NAMES[previous]} -> ${NAMES[state]}`)
      if (previous === HALF_OPEN && state === OPEN) report.probeFailures++
      if (previous === HALF_OPEN && state === HALF_OPEN) report.leaseExpiries++
      // An episode its probe ended (CLOSED or OPEN next) had that probe's
      // task start while the episode was current: only the probe's result
      // or a lease running out ends one, and the probe's task starts right
      // after its admission (a lease running out makes HALF_OPEN next).
      if (previous === HALF_OPEN && state !== HALF_OPEN && started[g - 1] === 0) {
        report.endedByProbeWithNoTaskStarted.push(g - 1)
      }
    }
  }
  if (genState[0] - 1 !== CLOSED && genState[0] !== 0) report.badTransitions.push('generation 0 is not CLOSED')
  return report
}

test(`${WORKERS} workers x ${CALLS} calls over one buffer: counts add up, states valid, one probe per episode`, { timeout: 300_000 }, async (t) => {
  const { array, record, results, ms, mainSamples } = await hammer({ workers: WORKERS, calls: CALLS })
  const breaker = new CircuitBreaker(array, SETTINGS.threshold, SETTINGS.timeout)
  const finalGeneration = Atomics.load(array, CircuitBreakerKeys.GENERATION) >>> 0
  const report = analyse(record, finalGeneration)
  const stats = Object.fromEntries(Object.entries(STATS).map(([name, index]) => [name, Atomics.load(record.stats, index)]))
  const calls = sum(results, 'calls')
  const seen = {
    successes: sum(results, 'successes'),
    failures: sum(results, 'failures'),
    rejections: sum(results, 'rejections'),
    ran: sum(results, 'ran'),
  }
  const raw = {
    requests: striped(array, 'TOTAL_REQUEST_COUNT'),
    successes: striped(array, 'SUCCESS_COUNT'),
    failures: striped(array, 'FAILURE_TOTAL'),
    rejections: striped(array, 'REJECTION_COUNT'),
  }
  const figures = {
    wallMs: Math.round(ms),
    perWorkerMs: results.map((r) => Math.round(r.ms)),
    calls,
    seen,
    raw,
    certainProbes: sum(results, 'certainProbes'),
    uncertainHalfOpenStarts: sum(results, 'uncertain'),
    uncertainKinds: mergeKinds(results),
    mainSamples,
    ...report,
    endedByProbeWithNoTaskStarted: report.endedByProbeWithNoTaskStarted.length,
    badTransitions: report.badTransitions.length,
    endedUnderProbe: { ...report.endedUnderProbe, otherwise: report.endedUnderProbe.otherwise.length },
    stats,
  }
  t.diagnostic(JSON.stringify(figures))
  console.log('stress figures', JSON.stringify(figures, null, 1))

  assert.deepEqual(results.flatMap((r) => r.unexpected), [], 'every call resolved, failed with its own error, or was refused as open')
  assert.equal(calls, WORKERS * CALLS)
  // Exact counts, after every worker has exited.
  assert.equal(breaker.getTotalRequestCount(), calls, 'one request counted per call')
  assert.equal(raw.requests, calls)
  assert.equal(raw.successes + raw.failures + raw.rejections, raw.requests, 'successes + failures + rejections = requests')
  assert.equal(raw.successes, seen.successes)
  assert.equal(raw.failures, seen.failures)
  assert.equal(raw.rejections, seen.rejections)
  assert.equal(breaker.getSuccessCount(), seen.successes)
  assert.equal(seen.ran, seen.successes + seen.failures, 'every task that ran settled once')
  // States.
  assert.equal(stats.INVALID, 0, 'every sample of STATE was a state')
  assert.equal(stats.CONFLICTS, 0, 'each generation was seen with one state')
  assert.ok(finalGeneration < GENERATIONS, `generation ${finalGeneration} fits the record`)
  assert.deepEqual(report.badTransitions, [], 'every transition seen is one the state machine has')
  // Probes.
  assert.equal(stats.DUPLICATES, 0, 'no half-open episode admitted a second probe')
  assert.equal(report.maxProbesInAnEpisode, 1)
  assert.deepEqual(report.endedByProbeWithNoTaskStarted, [], 'every episode ended by a probe had its task start in it')
  assert.deepEqual(report.endedUnderProbe.otherwise, [], 'no episode was ended under its probe but by its lease running out')
  // So probes of different episodes overlap only if one's lease ran out under it.
  assert.ok(stats.OVERLAPS === 0 || stats.EXPIRED > 0, `overlaps ${stats.OVERLAPS}, expired ${stats.EXPIRED}`)
  // The breaker really cycled, and the check really ran.
  assert.ok(report.openings >= 50, `openings: ${report.openings}`)
  assert.ok(report.closings >= 50, `closings: ${report.closings}`)
  assert.ok(report.probeFailures >= 10, `probe failures: ${report.probeFailures}`)
  assert.ok(report.episodesWithOneProbe >= 50, `episodes with a counted probe: ${report.episodesWithOneProbe}`)
  assert.ok(report.unseen <= report.generations / 10, `generations never seen: ${report.unseen} of ${report.generations}`)
})

test('the probe checks fire on a breaker that has no probe lease', { timeout: 120_000 }, async (t) => {
  // The same workers and checks, over a JavaScript breaker that lets every
  // caller probe while HALF_OPEN: a check that cannot fail here proves nothing.
  const { array, record, results } = await hammer({ workers: WORKERS, calls: 20_000, leaseless: true })
  const duplicates = Atomics.load(record.stats, STATS.DUPLICATES)
  const report = analyse(record, Atomics.load(array, CircuitBreakerKeys.GENERATION) >>> 0)
  const endedUnderProbe = report.endedUnderProbe.otherwise.length
  t.diagnostic(`duplicate probes caught: ${duplicates}, episodes ended by another call under their probe: ${endedUnderProbe}, probes counted: ${sum(results, 'certainProbes')}`)
  assert.ok(duplicates > 0, 'the broken breaker is caught admitting two probes in one episode')
  assert.ok(endedUnderProbe > 0, 'and caught letting another call end an episode while its probe ran')
})
