// The shared policies under churn, with real worker threads: four workers
// hammer one breaker while the main thread flips the dependency's health
// every few milliseconds, so the breaker opens, half-opens and closes
// thousands of times. What is checked are invariants, never interleavings:
//
// 1. halfOpenMaxCalls: 3, successThreshold: 2. No half-open episode ever
//    has more than 3 probe tasks running at once; an episode that closed had
//    at least 2 successful tasks start in it, one that reopened a failed one;
//    every transition is one the state machine has; the counts add up
//    exactly once the workers have exited.
// 2. State events. The main thread and every worker listen from before the
//    first call, and short-lived listener workers come and go (some leave by
//    themselves, the rest are terminated). Each thread's events must be in
//    generation order with no generation twice, each transition one the
//    state machine has, the same (state, threadId, time) for a generation in
//    every thread; threads alive at the end must have heard every
//    generation, except ones they skipped while 8 or more transitions
//    behind (the log keeps 8): those gaps are counted and reported. A gap
//    without that excuse is a lost event and fails.
// 3. A count window with failureRateThreshold, four workers: getStats()'s
//    window stays within bounds all along; once the workers have exited the
//    raw window counters equal what the ring holds, and the totals add up.
//
// Probes are told apart as in shared-breaker.test.mjs: a task reads the
// control word (STATE, GENERATION) before `execute` (w0) and when it starts
// (w1); if w1 is HALF_OPEN and w0 was w1 or the OPEN word it came from, the
// call was admitted while that episode was current and holds one of its
// places (see the worker). Whether a check can fail is shown by running the
// same analysis over a breaker with halfOpenMaxCalls: 8 and successThreshold:
// 1, and by feeding the event check lists that break each rule.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import CircuitBreaker, { CircuitBreakerKeys, CircuitBreakerStates, createSharedArray } from 'shared-circuit-breaker'
import { CTL, GENERATIONS, STATS, listen, newControl, newRecord, noteState, watcher } from '../fixtures/stress-policies-record.mjs'
import { sleep, within } from '../fixtures/policy-harness.mjs'
import { startWorker } from '../support/messages.mjs'

const WORKER = new URL('../fixtures/stress-policies-worker.mjs', import.meta.url)
const { CLOSED, OPEN, HALF_OPEN } = CircuitBreakerStates
const NAMES = ['CLOSED', 'OPEN', 'HALF_OPEN']
const GENERATION = CircuitBreakerKeys.GENERATION
// Transitions the state machine has with no isolate/reset/disable/forcing.
const ALLOWED = new Set([`${CLOSED}>${OPEN}`, `${OPEN}>${HALF_OPEN}`, `${HALF_OPEN}>${CLOSED}`, `${HALF_OPEN}>${OPEN}`, `${HALF_OPEN}>${HALF_OPEN}`])
const LOG_ENTRIES = 8

const WORKERS = 4
const LANES = 16
const CALLS = Number(process.env.STRESS_POLICY_CALLS ?? 1_000_000)
const WINDOW_CALLS = Number(process.env.STRESS_WINDOW_CALLS ?? 300_000)
const PROBE_OPTIONS = { failureThreshold: 3, resetTimeout: 2, halfOpenMaxCalls: 3, successThreshold: 2 }
const EXPECT = { maxProbes: 3, successes: 2 }

const between = (low, high) => low + Math.floor(Math.random() * (high - low + 1))

// A worker and its messages in order: the first says it is ready.
const start = (workerData) => startWorker(WORKER, workerData)

// The dependency flaps: down 1-3 ms, up 1-6 ms, until `done()`.
async function flap(ctl, done, look) {
  let flips = 0
  while (!done()) {
    Atomics.store(ctl, CTL.DOWN, 1)
    await sleep(between(1, 3))
    Atomics.store(ctl, CTL.DOWN, 0)
    await sleep(between(1, 6))
    look?.()
    flips++
  }
  return flips
}

// Listener workers come and go while `done()` is false, up to two at a
// time. Every other one leaves by itself after its lifetime (listeners
// attached: it must still exit), the others are terminated before that.
async function churnListeners(array, options, done) {
  const lists = []
  const figures = { started: 0, terminated: 0, leftByThemselves: 0 }
  async function one() {
    const lifetimeMs = between(20, 120)
    const terminate = figures.started++ % 2 === 1
    const { worker, next, exited } = start({ role: 'listener', array, options, lifetimeMs, ctl: newControl() })
    await within(next(), 30_000, 'a listener worker started')
    if (terminate) {
      await sleep(between(1, lifetimeMs - 5))
      await worker.terminate()
      figures.terminated++
      return
    }
    const { events, start: startGeneration, threadId } = await within(next(), 30_000, 'a listener worker reported')
    // Nothing is left for it to do: its listeners must not keep it alive.
    assert.equal(await within(exited, 15_000, `listener worker ${threadId} exited by itself`), 0)
    figures.leftByThemselves++
    lists.push({ who: `listener ${threadId}`, events, start: startGeneration })
  }
  while (!done()) await Promise.all([one(), sleep(between(5, 30)).then(one)])
  return { lists, figures }
}

// Four call workers, the main thread flipping health and listening, listener
// workers coming and going. Returns what every thread recorded, after every
// worker has exited.
async function runProbes({ options, calls, churn }) {
  const array = createSharedArray(options)
  const ctl = newControl()
  const record = newRecord()
  const breaker = new CircuitBreaker(array, options)
  const mainEvents = listen(breaker, array)
  const { look } = watcher(array, record)
  const started = performance.now()
  const workers = Array.from({ length: WORKERS }, () =>
    start({ role: 'calls', array, options, ctl, record, calls, lanes: LANES, workers: WORKERS, probeHold: 16 }),
  )
  const ready = await within(Promise.all(workers.map((w) => w.next())), 60_000, 'the call workers started')
  const threadIds = ready.map((message) => message.threadId)
  Atomics.store(ctl, CTL.GO, 1)
  Atomics.notify(ctl, CTL.GO)
  const done = () => Atomics.load(ctl, CTL.DONE) >= WORKERS
  const [flips, churned, results] = await Promise.all([
    flap(ctl, done, look),
    churn ? churnListeners(array, options, done) : { lists: [], figures: {} },
    within(Promise.all(workers.map((w) => w.next())), 240_000, 'the call workers reported'),
  ])
  const codes = await within(Promise.all(workers.map((w) => w.exited)), 15_000, 'the call workers exited by themselves (listeners attached)')
  assert.deepEqual(codes, Array(WORKERS).fill(0))
  const finalGeneration = Atomics.load(array, GENERATION) >>> 0
  const deadline = Date.now() + 10_000
  while ((mainEvents.generations.at(-1) ?? 0) < finalGeneration && Date.now() < deadline) await sleep(2)
  look()
  return { array, breaker, record, results, threadIds, mainEvents, churned, flips, finalGeneration, ms: performance.now() - started }
}

const sum = (results, key) => results.reduce((total, r) => total + r.counts[key], 0)

// Every generation's state, from what the threads saw of the control word
// and from the events (which must agree).
function statesOf(run, lists) {
  const { genState, stats } = run.record
  for (const { events } of lists) {
    for (let i = 0; i < events.generations.length; i++) noteState(genState, stats, events.generations[i], events.states[i])
  }
  return genState
}

// The probe checks, against the expected limits; returns what broke them.
function analyseProbes(run, genState, expect) {
  const { maxInflight, succeeded, failed, started, probes } = run.record
  const report = {
    generations: run.finalGeneration + 1,
    unseen: 0,
    halfOpenEpisodes: 0,
    closings: 0,
    reopenings: 0,
    leaseExpiries: 0,
    episodesAtMax: 0,
    mostProbesInAnEpisode: 0,
    overAdmitted: [],
    closedShort: [],
    reopenedWithoutFailure: [],
    badTransitions: [],
  }
  for (let g = 0; g <= run.finalGeneration && g < GENERATIONS; g++) {
    const state = genState[g] - 1
    const previous = g > 0 ? genState[g - 1] - 1 : -1
    const atOnce = maxInflight[g]
    if (atOnce > expect.maxProbes) report.overAdmitted.push(`${g}: ${atOnce} probe tasks at once`)
    if (atOnce === expect.maxProbes) report.episodesAtMax++
    report.mostProbesInAnEpisode = Math.max(report.mostProbesInAnEpisode, probes[g])
    if (state < 0) {
      report.unseen++
      continue
    }
    if (state === HALF_OPEN) report.halfOpenEpisodes++
    if (g === 0 && state !== CLOSED) report.badTransitions.push('generation 0 is not CLOSED')
    if (previous < 0) continue
    if (!ALLOWED.has(`${previous}>${state}`)) report.badTransitions.push(`${g}: ${NAMES[previous]} -> ${NAMES[state]}`)
    if (previous !== HALF_OPEN) continue
    // Episode g-1 ended. Closing takes successThreshold successes of its
    // probes, reopening a failure of one; each such probe's task started
    // while the episode was current and recorded its outcome before it
    // reached the breaker.
    if (state === CLOSED) {
      report.closings++
      if (succeeded[g - 1] < expect.successes) {
        report.closedShort.push(`${g - 1}: closed after ${succeeded[g - 1]} successful tasks (${started[g - 1]} started)`)
      }
    } else if (state === OPEN) {
      report.reopenings++
      if (failed[g - 1] < 1) report.reopenedWithoutFailure.push(`${g - 1}: reopened, no task failed in it`)
    } else {
      report.leaseExpiries++
    }
  }
  return report
}

function assertCountsAddUp(run, calls) {
  const { results, breaker } = run
  assert.deepEqual(results.flatMap((r) => r.counts.unexpected), [], 'every call resolved, failed with its own error, or was refused as open')
  const made = sum(results, 'calls')
  assert.equal(made, WORKERS * calls)
  // After every worker has exited: exact.
  const stats = breaker.getStats()
  const seen = { successes: sum(results, 'successes'), failures: sum(results, 'failures'), rejections: sum(results, 'rejections') }
  assert.equal(stats.requests, made, 'one request counted per call made')
  assert.equal(stats.successes + stats.failures + stats.rejections, stats.requests, 'requests = successes + failures + rejections')
  assert.deepEqual({ successes: stats.successes, failures: stats.failures, rejections: stats.rejections }, seen, 'the totals are what the workers saw')
  assert.equal(sum(results, 'ran'), seen.successes + seen.failures, 'every task that ran settled once')
  return stats
}

let probeRun
function sharedProbeRun() {
  probeRun ??= runProbes({ options: PROBE_OPTIONS, calls: CALLS, churn: true })
  return probeRun
}

test(`halfOpenMaxCalls 3, successThreshold 2, ${WORKERS} workers x ${CALLS} calls: never more than 3 probes at once, counts add up`, { timeout: 300_000 }, async (t) => {
  const run = await sharedProbeRun()
  const lists = [{ events: run.mainEvents }, ...run.results.map((r) => ({ events: r.events })), ...run.churned.lists]
  const genState = statesOf(run, lists)
  const report = analyseProbes(run, genState, EXPECT)
  const stats = assertCountsAddUp(run, CALLS)
  const certain = sum(run.results, 'certainProbes')
  const figures = {
    ms: Math.round(run.ms),
    flips: run.flips,
    certainProbes: certain,
    uncertainHalfOpenStarts: sum(run.results, 'uncertain'),
    probesAdmitted: stats.probes,
    requests: stats.requests,
    rejections: stats.rejections,
    ...report,
    overAdmitted: report.overAdmitted.length,
    closedShort: report.closedShort.length,
    reopenedWithoutFailure: report.reopenedWithoutFailure.length,
    badTransitions: report.badTransitions.length,
  }
  t.diagnostic(JSON.stringify(figures))
  // States.
  assert.equal(run.record.stats[STATS.INVALID], 0, 'every sample of STATE was a state')
  assert.equal(run.record.stats[STATS.CONFLICTS], 0, 'each generation was seen (and heard of) with one state')
  assert.ok(run.finalGeneration < GENERATIONS, `generation ${run.finalGeneration} fits the record`)
  assert.equal(sum(run.results, 'beyondRecord'), 0)
  assert.ok(['CLOSED', 'OPEN', 'HALF_OPEN'].includes(run.breaker.getState()))
  assert.deepEqual(report.badTransitions, [], 'every transition seen is one the state machine has')
  // Probes.
  assert.deepEqual(report.overAdmitted, [], `no episode ran more than ${EXPECT.maxProbes} probe tasks at once`)
  assert.deepEqual(report.closedShort, [], `every episode that closed had ${EXPECT.successes} successful tasks in it`)
  assert.deepEqual(report.reopenedWithoutFailure, [], 'every episode that reopened had a failed task in it')
  assert.ok(certain <= stats.probes, `probe tasks counted ${certain}, probes admitted ${stats.probes}`)
  // The breaker really cycled, and the checks really ran.
  assert.ok(report.halfOpenEpisodes >= 100, `half-open episodes: ${report.halfOpenEpisodes}`)
  assert.ok(report.closings >= 30, `closings: ${report.closings}`)
  assert.ok(report.reopenings >= 30, `probe failures: ${report.reopenings}`)
  assert.ok(report.episodesAtMax >= 10, `episodes with ${EXPECT.maxProbes} probe tasks at once: ${report.episodesAtMax}`)
  assert.ok(report.unseen <= report.generations / 10, `generations never seen: ${report.unseen} of ${report.generations}`)
})

// Checks one thread's events. `complete`: the thread was listening from
// `start` to the end, so it must have heard every generation up to `final`
// but those it skipped while 8 or more behind.
function checkEvents({ events, start = 0, complete = false, final }) {
  const problems = []
  const figures = { events: events.generations.length, gapsBehind: 0, lost: 0 }
  problems.push(...events.misnamed.map((m) => `payload not matching its event: ${m}`))
  let previous = start
  // The state of `previous`, if known: generation 0 of a fresh buffer is CLOSED.
  let previousState = start === 0 ? CLOSED : undefined
  const skipped = (from, to, now) => {
    for (let g = from; g < to; g++) {
      // The next event was heard when the breaker was at `now`: a thread
      // that skipped g had found g's log entry overwritten, or was more than
      // 8 behind, so `now` >= g + 8. Anything else is a lost event.
      if (now >= g + LOG_ENTRIES) figures.gapsBehind++
      else {
        figures.lost++
        if (problems.length < 20) problems.push(`generation ${g} lost (next event heard at ${now})`)
      }
    }
  }
  for (let i = 0; i < events.generations.length; i++) {
    const g = events.generations[i]
    const state = events.states[i]
    if (g === previous && i > 0) {
      problems.push(`generation ${g} heard twice (event ${i})`)
      continue
    }
    if (g <= previous) {
      problems.push(`generation ${g} heard after ${previous} (event ${i})`)
      continue
    }
    if (g === previous + 1) {
      if (previousState !== undefined && !ALLOWED.has(`${previousState}>${state}`)) {
        problems.push(`${g}: ${NAMES[previousState]} -> ${NAMES[state]}`)
      }
    } else if (i > 0 || complete) {
      skipped(previous + 1, g, events.nows[i])
    }
    previous = g
    previousState = state
  }
  if (complete && previous !== final) {
    problems.push(`heard up to ${previous}, not the final generation ${final}`)
    figures.lost += final - previous
  }
  return { problems, figures }
}

// Every thread that heard generation g heard the same transition.
function crossCheck(lists, threadIds) {
  const problems = []
  const known = new Map()
  const makers = new Set(threadIds)
  for (const { who, events } of lists) {
    for (let i = 0; i < events.generations.length; i++) {
      const g = events.generations[i]
      const entry = `${NAMES[events.states[i]]} by ${events.threadIds[i]} at ${events.times[i]}`
      if (!makers.has(events.threadIds[i]) && problems.length < 20) problems.push(`${who}: ${g} made by thread ${events.threadIds[i]}, not a call worker`)
      const first = known.get(g)
      if (first === undefined) known.set(g, { entry, who })
      else if (first.entry !== entry && problems.length < 20) problems.push(`${g}: ${first.who} heard ${first.entry}, ${who} heard ${entry}`)
    }
  }
  return problems
}

test('state events under churn: in order, none twice, valid transitions, every generation heard unless 8 behind', { timeout: 300_000 }, async (t) => {
  const run = await sharedProbeRun()
  const final = run.finalGeneration
  const alive = [
    { who: 'main', events: run.mainEvents, complete: true },
    ...run.results.map((r) => ({ who: `worker ${r.threadId}`, events: r.events, complete: true })),
  ]
  const all = [...alive, ...run.churned.lists]
  const figures = { finalGeneration: final, listenerWorkers: run.churned.figures, threads: {} }
  const problems = []
  for (const list of all) {
    const checked = checkEvents({ ...list, final })
    figures.threads[list.who] = checked.figures
    problems.push(...checked.problems.map((p) => `${list.who}: ${p}`))
  }
  for (const r of run.results) {
    if (r.finalGeneration !== final) problems.push(`worker ${r.threadId} saw final generation ${r.finalGeneration}, not ${final}`)
  }
  problems.push(...crossCheck(all, run.threadIds))
  t.diagnostic(JSON.stringify(figures))
  assert.deepEqual(problems, [], 'every thread heard a valid sequence of transitions')
  // The run was worth checking.
  assert.ok(final >= 300, `transitions: ${final}`)
  assert.ok(run.mainEvents.generations.length >= final / 2, `the main thread heard ${run.mainEvents.generations.length} of ${final}`)
  assert.ok(run.churned.figures.leftByThemselves >= 2 && run.churned.figures.terminated >= 2, JSON.stringify(run.churned.figures))
})

test('the event check catches a duplicate, a wrong order, a bad transition, a lost event and a missing tail', () => {
  const list = (rows) => ({
    generations: rows.map((r) => r[0]),
    states: rows.map((r) => r[1]),
    nows: rows.map((r) => r[2] ?? r[0]),
    threadIds: rows.map(() => 1),
    times: rows.map(() => 0),
    misnamed: [],
  })
  const good = list([[1, OPEN], [2, HALF_OPEN], [3, CLOSED], [4, OPEN], [5, HALF_OPEN], [6, HALF_OPEN], [7, OPEN]])
  assert.deepEqual(checkEvents({ events: good, complete: true, final: 7 }).problems, [])
  // A gap skipped while 8 behind is reported, not failed.
  const behind = list([[1, OPEN], [2, HALF_OPEN], [12, OPEN, 20], [13, HALF_OPEN]])
  const skipped = checkEvents({ events: behind, complete: true, final: 13 })
  assert.deepEqual(skipped.problems, [])
  assert.equal(skipped.figures.gapsBehind, 9)
  const bad = (rows, final = rows.at(-1)[0]) => checkEvents({ events: list(rows), complete: true, final }).problems
  assert.match(bad([[1, OPEN], [2, HALF_OPEN], [2, HALF_OPEN], [3, CLOSED]]).join(), /heard twice/)
  assert.match(bad([[1, OPEN], [3, CLOSED, 12], [2, HALF_OPEN]]).join(), /heard after/)
  assert.match(bad([[1, OPEN], [2, CLOSED]]).join(), /OPEN -> CLOSED/)
  assert.match(bad([[1, CLOSED]]).join(), /CLOSED -> CLOSED/)
  assert.match(bad([[1, OPEN], [3, CLOSED, 3]]).join(), /generation 2 lost/)
  assert.match(bad([[1, OPEN], [2, HALF_OPEN]], 5).join(), /not the final generation 5/)
  const threads = [{ who: 'a', events: list([[1, OPEN]]) }, { who: 'b', events: { ...list([[1, OPEN]]), times: [5] } }]
  assert.match(crossCheck(threads, [1]).join(), /a heard OPEN by 1 at 0, b heard OPEN by 1 at 5/)
  assert.match(crossCheck(threads.slice(0, 1), [2]).join(), /not a call worker/)
})

// The bug the gap check above looks for, made reproducible: lib/watch.js
// deliver() asks the log for g (native.transition), which answers ready,
// pending or gone (core: Breaker::read_log). A writer held up between its
// CAS and its log write (preempted) leaves the slot at an older generation,
// then claimed at exactly g (being written), then published; g must be
// pending in both of the first two, never "gone". A worker emulates one.
test('a transition whose log entry is written a moment late is heard, not skipped', { timeout: 60_000 }, async (t) => {
  const transitions = 600
  const array = createSharedArray()
  const breaker = new CircuitBreaker(array, { failureThreshold: 1, resetTimeout: 60_000 })
  const events = listen(breaker, array)
  const worker = new Worker(new URL('../fixtures/stress-policies-late-log.mjs', import.meta.url), { workerData: { array, transitions } })
  assert.equal((await once(worker, 'exit'))[0], 0)
  const deadline = Date.now() + 10_000
  while ((events.generations.at(-1) ?? 0) < transitions && Date.now() < deadline) await sleep(5)
  const checked = checkEvents({ events, complete: true, final: transitions })
  t.diagnostic(JSON.stringify(checked.figures))
  breaker.removeAllListeners()
  assert.deepEqual(checked.problems.slice(0, 5), [], `${checked.figures.lost} of ${transitions} transitions never heard`)
})

test('a transition whose log writer died mid-write is given up after a second; later ones are heard', { timeout: 60_000 }, async () => {
  const array = createSharedArray()
  const breaker = new CircuitBreaker(array, { failureThreshold: 1, resetTimeout: 60_000 })
  const events = listen(breaker, array)
  const started = Date.now()
  const worker = new Worker(new URL('../fixtures/stress-policies-late-log.mjs', import.meta.url), { workerData: { array, transitions: 5, abandon: 2 } })
  assert.equal((await once(worker, 'exit'))[0], 0)
  while ((events.generations.at(-1) ?? 0) < 5 && Date.now() - started < 10_000) await sleep(5)
  breaker.removeAllListeners()
  assert.deepEqual(events.generations, [1, 3, 4, 5], 'generation 2 is never heard, and nothing else is lost')
  assert.ok(Date.now() - started >= 1000, 'generation 2 was waited for before it was given up')
})

test('the probe checks fire on a breaker that admits 8 probes and closes on 1 success', { timeout: 120_000 }, async (t) => {
  // The same workers and analysis, expecting 3 and 2 of a breaker set to 8
  // and 1: a check that cannot fail here proves nothing above.
  const options = { ...PROBE_OPTIONS, halfOpenMaxCalls: 8, successThreshold: 1 }
  const run = await runProbes({ options, calls: 15_000, churn: false })
  const lists = [{ events: run.mainEvents }, ...run.results.map((r) => ({ events: r.events }))]
  const report = analyseProbes(run, statesOf(run, lists), EXPECT)
  t.diagnostic(`episodes with more than 3 probe tasks at once: ${report.overAdmitted.length}, closed on fewer than 2 successes: ${report.closedShort.length}`)
  assert.ok(report.overAdmitted.length > 0, 'caught running more than 3 probes at once')
  assert.ok(report.closedShort.length > 0, 'caught closing on one success')
  assert.deepEqual(report.badTransitions, [])
})

test(`a count window with failureRateThreshold, ${WORKERS} workers x ${WINDOW_CALLS} calls: window within bounds, counters match the ring, totals add up`, { timeout: 300_000 }, async (t) => {
  const options = { failureRateThreshold: 50, minimumCalls: 10, windowSize: 50, resetTimeout: 2, halfOpenMaxCalls: 2 }
  const array = createSharedArray(options)
  const ctl = newControl()
  const breaker = new CircuitBreaker(array, options)
  const workers = Array.from({ length: WORKERS }, () =>
    start({ role: 'window', array, options, ctl, calls: WINDOW_CALLS, lanes: LANES, workers: WORKERS }),
  )
  await within(Promise.all(workers.map((w) => w.next())), 60_000, 'the window workers started')
  Atomics.store(ctl, CTL.GO, 1)
  Atomics.notify(ctl, CTL.GO)
  const done = () => Atomics.load(ctl, CTL.DONE) >= WORKERS
  // The main thread reads the window too, between flips.
  const mainSamples = { samples: 0, bad: [] }
  const sample = () => {
    const { window } = breaker.getStats()
    mainSamples.samples++
    if (!(window.calls >= 0 && window.calls <= options.windowSize && window.failures >= 0 && window.failures <= window.calls)) {
      if (mainSamples.bad.length < 10) mainSamples.bad.push(window)
    }
  }
  const [flips, results] = await Promise.all([
    flap(ctl, done, sample),
    within(Promise.all(workers.map((w) => w.next())), 240_000, 'the window workers reported'),
  ])
  assert.deepEqual(await within(Promise.all(workers.map((w) => w.exited)), 15_000, 'the window workers exited'), Array(WORKERS).fill(0))

  const stats = breaker.getStats()
  // The window's raw counters and ring (see core/src/window.rs): once every
  // caller has stopped, CALLS and BAD are exactly what the ring holds.
  const base = Object.keys(CircuitBreakerKeys).length
  const ring = array.subarray(base + 4, base + 4 + options.windowSize)
  const raw = { calls: Atomics.load(array, base + 2), bad: Atomics.load(array, base + 3) }
  const held = { calls: 0, bad: 0 }
  for (const entry of ring) {
    if (entry === 1 || entry === 2) held.calls++
    if (entry === 2) held.bad++
  }
  const figures = {
    flips,
    generations: Atomics.load(array, GENERATION) >>> 0,
    window: stats.window,
    raw,
    held,
    requests: stats.requests,
    failures: stats.failures,
    rejections: stats.rejections,
    samples: sum(results, 'samples') + mainSamples.samples,
    maxWindowCallsSeen: Math.max(...results.map((r) => r.counts.maxWindowCalls)),
  }
  t.diagnostic(JSON.stringify(figures))
  assert.deepEqual([...results.flatMap((r) => r.counts.badSamples), ...mainSamples.bad], [], 'every window read was within bounds')
  assert.ok(stats.window.calls <= options.windowSize, `window calls ${stats.window.calls}`)
  assert.ok(stats.window.failures <= stats.window.calls, `window failures ${stats.window.failures} of ${stats.window.calls}`)
  assert.deepEqual(raw, held, 'the raw window counters equal what the ring holds')
  assert.deepEqual({ calls: stats.window.calls, bad: stats.window.failures }, held, 'getStats().window is the ring')
  assert.equal(stats.window.failureRate, held.calls === 0 ? 0 : (100 * held.bad) / held.calls)
  const made = sum(results, 'calls')
  assert.deepEqual(results.flatMap((r) => r.counts.unexpected), [])
  assert.equal(made, WORKERS * WINDOW_CALLS)
  assert.equal(stats.requests, made, 'one request counted per call made')
  assert.equal(stats.successes + stats.failures + stats.rejections, stats.requests, 'requests = successes + failures + rejections')
  assert.deepEqual(
    { successes: stats.successes, failures: stats.failures, rejections: stats.rejections },
    { successes: sum(results, 'successes'), failures: sum(results, 'failures'), rejections: sum(results, 'rejections') },
  )
  // The rate really opened the breaker, many times.
  assert.ok(figures.generations >= 60, `transitions: ${figures.generations}`)
  assert.ok(stats.rejections > 0)
})
