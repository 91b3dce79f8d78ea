// One contender, one timing scenario, in a process of its own. Prints one
// JSON line: the per-repetition ns/call of the contender and of each
// baseline, measured interleaved, and the problems of any repetition whose
// work was not done. Run by run.mjs: node bench/child-scenario.mjs '<json>'

import { loadContender } from './lib/contenders.mjs'
import { baselineCase, compileLoop, effectiveCalls, timeCase } from './lib/loops.mjs'
import { TIMING_SCENARIOS } from './lib/scenarios.mjs'
import { TASKS } from './lib/tasks.mjs'

const { contender, scenario, calls, reps, warmups, warmupCalls, budgetMs } = JSON.parse(process.argv[2])
const def = TIMING_SCENARIOS[scenario]
const n = effectiveCalls(calls, def.shape)
const budgetNs = budgetMs * 1e6
const out = { contender, scenario, calls: n, reps, samples: {}, problems: [] }

async function run(kase, calls, what) {
  const result = await timeCase(kase, calls, budgetNs)
  for (const problem of result.problems) out.problems.push(`${what}, ${kase.name}: ${problem}`)
  if (result.timedOut) {
    out.timeout = { case: kase.name, during: what, done: result.done, calls, ms: result.ns / 1e6, nsPerCall: result.ns / result.done }
  }
  return result
}

const contenderModule = await loadContender(contender)
const setup = await contenderModule.setup(def.kind, def.taskName)
if (setup.na) {
  out.na = setup.na
} else if (setup.problems) {
  for (const problem of setup.problems) out.problems.push(`setup: ${problem}`)
} else {
  const cases = def.baselines.map((name) => ({ name, ...baselineCase(name, TASKS, def.shape) }))
  cases.push({ name: 'contender', ...setup, loop: compileLoop(setup.expr, setup.outcome, def.shape) })
  for (const kase of cases) out.samples[kase.name] = []

  // A case that runs out of its time budget ends the scenario: without it
  // there is no ratio to report, and the run has other cells to measure.
  main: {
    // Outputs agree before timing: a short run of every case must do its work.
    for (const kase of cases) {
      await run(kase, effectiveCalls(128, def.shape), 'check run')
      if (out.timeout) break main
    }
    for (let w = 0; w < warmups; w++) {
      for (const kase of cases) {
        await run(kase, effectiveCalls(warmupCalls, def.shape), 'warm-up')
        if (out.timeout) break main
      }
    }
    // Interleaved: every repetition runs each case once, the order rotating
    // from one repetition to the next so no case always runs first.
    for (let rep = 0; rep < reps; rep++) {
      for (let i = 0; i < cases.length; i++) {
        const kase = cases[(rep + i) % cases.length]
        const { ns } = await run(kase, n, `rep ${rep + 1}`)
        if (out.timeout) break main
        out.samples[kase.name].push(ns / n)
      }
    }
  }
}
process.stdout.write(`${JSON.stringify(out)}\n`)
process.exit(0)
