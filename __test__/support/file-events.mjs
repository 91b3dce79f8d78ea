// Cross-process event latency over a breaker file: a child makes `count`
// transitions one at a time, this process's listener hears each; the
// latency of one is the time from just before the child's transition to
// the listener's call, on the host's monotonic clock. Shared by
// __test__/file-events.test.mjs and bench/fleet.mjs.
import { fork } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import CircuitBreaker from 'shared-circuit-breaker'

const CHILD = new URL('../fixtures/file-events-child.mjs', import.meta.url)

export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]
}

/** `{ p50, p99, max, heard, count }` in ms. */
export async function crossProcessLatency(count) {
  const folder = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'cb-events-'))
  const file = path.join(folder, 'latency.breaker')
  const breaker = CircuitBreaker.fromFile(file, { failureThreshold: 1, resetTimeout: 60000 })
  const child = fork(CHILD, [file, String(count)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const heard = []
  const ack = () => {
    heard.push(process.hrtime.bigint())
    child.send('next')
  }
  breaker.on('open', ack)
  breaker.on('close', ack)
  const result = new Promise((resolve, reject) => {
    child.on('message', (message) => {
      if (message === 'ready') child.send('go')
      else resolve(message.sent.map(BigInt))
    })
    child.on('exit', (code) => reject(new Error(`the child exited (code ${code}) before it reported`)))
  })
  try {
    const sent = await result
    const latencies = sent.map((t, i) => Number(heard[i] - t) / 1e6).sort((a, b) => a - b)
    return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), max: latencies.at(-1), heard: heard.length, count }
  } finally {
    breaker.dispose()
    fs.rmSync(folder, { recursive: true, force: true })
  }
}
