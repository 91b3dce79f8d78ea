// Instant events over breaker files (Linux): a watcher sleeps in a shared
// futex on the file's GENERATION word and the writer of every transition
// wakes it, in whatever process; the listening thread hears it through its
// threadsafe function. Elsewhere the watch polls (these tests skip).
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import CircuitBreaker from 'shared-circuit-breaker'
import { crossProcessLatency } from './support/file-events.mjs'

const linux = process.platform === 'linux'
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const INDEX = path.join(ROOT, 'index.js')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function newPath() {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'cb-file-events-'))
  return path.join(folder, 'test.breaker')
}

// This process's threads named `name`, with their context switches so far.
function threads(name) {
  return fs
    .readdirSync('/proc/self/task')
    .filter((tid) => {
      try {
        return fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === name
      } catch {
        return false
      }
    })
    .map((tid) => {
      const status = fs.readFileSync(`/proc/self/task/${tid}/status`, 'utf8')
      const count = (key) => Number(status.match(new RegExp(`${key}:\\s+(\\d+)`))[1])
      return { tid, switches: count('voluntary_ctxt_switches') + count('nonvoluntary_ctxt_switches') }
    })
}

describe('events over a breaker file', { skip: !linux && 'futex watches are Linux only' }, () => {
  test('1,000 transitions in another process reach a listener here; latency printed', async () => {
    const result = await crossProcessLatency(1000)
    console.log(
      `cross-process events: p50 ${result.p50.toFixed(3)} ms, p99 ${result.p99.toFixed(3)} ms, max ${result.max.toFixed(3)} ms over ${result.count}`,
    )
    assert.equal(result.heard, 1000)
    // A sanity bound, not a target: the 20 ms poll this replaces gives a
    // median near 10 ms.
    assert.ok(result.p50 < 5, `median ${result.p50} ms`)
  })

  test('an idle watcher never wakes: no periodic wake-ups, and it stops with its last listener', async () => {
    const file = newPath()
    const breaker = CircuitBreaker.fromFile(file, { failureThreshold: 1, resetTimeout: 60000 })
    const earlier = new Set(threads('breaker-watch').map((t) => t.tid))
    const seen = []
    const listener = (change) => seen.push(change.state)
    breaker.on('open', listener)
    await sleep(50)
    const watcher = threads('breaker-watch').find((t) => !earlier.has(t.tid))
    assert.ok(watcher, 'a watcher thread for the file')
    await sleep(500)
    const after = threads('breaker-watch').find((t) => t.tid === watcher.tid)
    assert.equal(after.switches, watcher.switches, 'the watcher thread did not run while idle')
    // Still awake to a transition.
    const other = CircuitBreaker.fromFile(file, { failureThreshold: 1, resetTimeout: 60000 })
    other.isolate()
    const deadline = Date.now() + 2000
    while (seen.length === 0 && Date.now() < deadline) await sleep(1)
    assert.deepEqual(seen, ['OPEN'])
    breaker.off('open', listener)
    const gone = Date.now() + 2000
    const alive = () => threads('breaker-watch').some((t) => t.tid === watcher.tid)
    while (alive() && Date.now() < gone) await sleep(5)
    assert.equal(alive(), false, 'the watcher stopped with its last listener')
    breaker.dispose()
    other.dispose()
  })

  test('a process whose only activity is a listener over a file exits by itself', () => {
    const file = newPath()
    const child = spawnSync(
      process.execPath,
      ['-e', `const { CircuitBreaker } = require(${JSON.stringify(INDEX)})
const breaker = CircuitBreaker.fromFile(${JSON.stringify(file)})
breaker.on('open', () => {})
breaker.on('close', () => {})
setTimeout(() => console.log('listening'), 50)`],
      { encoding: 'utf8', timeout: 10000 },
    )
    assert.equal(child.signal, null, 'exited by itself, not killed at the timeout')
    assert.equal(child.status, 0, child.stderr)
    assert.equal(child.stdout.trim(), 'listening')
  })

  test('200 worker exits with state and fleet listeners attached, while another thread makes transitions: no crash, no watcher left', () => {
    const file = newPath()
    const script = `
const { Worker } = require('node:worker_threads')
const fs = require('node:fs')
const { CircuitBreaker } = require(${JSON.stringify(INDEX)})
const file = ${JSON.stringify(file)}
const breaker = CircuitBreaker.fromFile(file, { failureThreshold: 1, resetTimeout: 60000 })
const watchers = () => fs.readdirSync('/proc/self/task').filter((t) => {
  try { return fs.readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim() === 'breaker-watch' } catch { return false }
}).length
let held
const flip = setInterval(() => {
  if (held === undefined) held = breaker.isolate()
  else { held.release(); held = undefined }
}, 1)
const code = \`
const { parentPort, workerData } = require('node:worker_threads')
const { CircuitBreaker } = require(\${JSON.stringify(${JSON.stringify(INDEX)})})
// In fleet mode too, with a store that refuses connections: the agent
// sends fleetDegraded to this thread while it may be exiting.
const breaker = CircuitBreaker.fromFile(workerData.file, {
  failureThreshold: 1,
  resetTimeout: 60000,
  fleet: { url: 'redis://127.0.0.1:1', key: 'exits' },
})
breaker.on('fleetDegraded', () => {})
let heard = 0
breaker.on('open', () => heard++)
breaker.on('close', () => heard++)
const shared = new CircuitBreaker(new Int32Array(new SharedArrayBuffer(CircuitBreaker.arrayLength() * 4)))
shared.on('open', () => {})
setTimeout(() => {
  parentPort.postMessage(heard)
  if (workerData.i % 2 === 0) process.exit(0)
}, 5 + (workerData.i % 7))
\`
let exited = 0
let heard = 0
async function one(i) {
  const worker = new Worker(code, { eval: true, workerData: { file, i } })
  await new Promise((resolve, reject) => {
    worker.on('message', (n) => { heard += n; if (i % 2 === 1) worker.terminate() })
    worker.on('error', reject)
    worker.on('exit', resolve)
  })
  exited++
}
;(async () => {
  for (let i = 0; i < 200; i += 10) await Promise.all(Array.from({ length: 10 }, (_, k) => one(i + k)))
  clearInterval(flip)
  const deadline = Date.now() + 3000
  while (watchers() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  console.log(JSON.stringify({ exited, heard: heard > 0, watchers: watchers() }))
})()
`
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120000 })
    assert.equal(child.signal, null, child.stderr)
    assert.equal(child.status, 0, child.stderr)
    // The main thread never listened: every watcher belonged to a worker.
    assert.deepEqual(JSON.parse(child.stdout.trim().split('\n').at(-1)), { exited: 200, heard: true, watchers: 0 })
  })
})
