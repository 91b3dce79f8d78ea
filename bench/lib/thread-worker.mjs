// One worker of the thread scenario. Pins itself to its CPU, builds its
// contender (for circuit-breaker-js: a breaker over the array every worker
// shares), then runs the phases the parent releases one by one:
//   for each phase k: post 'ready', wait until the control word leaves k
//   (Atomics.wait, so all workers start together), run the phase's calls if
//   this worker takes part, post the elapsed ns and the problems found.

import { workerData, parentPort } from 'node:worker_threads'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { loadContender } from './contenders.mjs'
import { baselineCase, compileLoop, timeCase } from './loops.mjs'
import { TASKS } from './tasks.mjs'

const { contender, index, cpu, calls, phases, control, shared, sharedBulkhead } = workerData

function pin() {
  try {
    // '/proc/thread-self' -> '<pid>/task/<tid>': this thread's own id.
    const tid = fs.readlinkSync('/proc/thread-self').split('/').pop()
    execFileSync('taskset', ['-pc', String(cpu), tid], { stdio: 'ignore' })
    return { pinned: true, cpu, tid: Number(tid) }
  } catch (error) {
    return { pinned: false, cpu, reason: error.code === 'ENOENT' ? 'taskset (or /proc/thread-self) not found' : error.message }
  }
}

const pinning = pin()
const contenderModule = await loadContender(contender)
const setup = await contenderModule.setup('closed', 'task', { shared, sharedBulkhead })
const cases = {
  baseline: { name: 'baseline', ...baselineCase('success', TASKS, 'seq') },
  contender: { name: 'contender', ...setup, loop: compileLoop(setup.expr, setup.outcome, 'seq') },
}
let contenderCalls = 0
for (let k = 0; k < phases.length; k++) {
  const phase = phases[k]
  parentPort.postMessage({ type: 'ready', k, pinning })
  Atomics.wait(control, 0, k)
  if (index >= phase.active) {
    parentPort.postMessage({ type: 'done', k, skipped: true })
    continue
  }
  const { ns, problems } = await timeCase(cases[phase.role], calls)
  if (phase.role === 'contender') contenderCalls += calls
  parentPort.postMessage({ type: 'done', k, ns, problems })
}
// Success counts may be published at the end of an event-loop turn.
await new Promise((resolve) => setImmediate(resolve))
parentPort.postMessage({ type: 'finished', contenderCalls })
