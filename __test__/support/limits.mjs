// What the bulkhead tests share: a gate to hold tasks open, a temporary
// folder, the limits fixture as a child process, and a mock dependency
// over HTTP that counts the requests in flight.
import { spawn } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { createServer } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { messages } from './messages.mjs'

export const LIMITS_WORKER = new URL('../fixtures/limits-worker.mjs', import.meta.url)

/** `{ open, opened }`: `opened` resolves when `open()` is called. */
export function gate() {
  let open
  const opened = new Promise((resolve) => (open = resolve))
  return { open, opened }
}

/** A new temporary folder, removed after the test `t`. */
export function tempDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'cbjs-limits-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A child process running the limits fixture with `data`; its stdout lines are its messages. */
export function startProcess(data) {
  const child = spawn(process.execPath, [fileURLToPath(LIMITS_WORKER), JSON.stringify(data)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines = new EventEmitter()
  let buffered = ''
  child.stdout.on('data', (chunk) => {
    buffered += chunk
    for (let at = buffered.indexOf('\n'); at >= 0; at = buffered.indexOf('\n')) {
      lines.emit('message', JSON.parse(buffered.slice(0, at)))
      buffered = buffered.slice(at + 1)
    }
  })
  child.on('exit', (code) => lines.emit('exit', code))
  const exited = once(child, 'exit').then(([code, signal]) => code ?? signal)
  return { child, next: messages(lines), exited }
}

/**
 * A mock dependency answering every request after `ms` ms, closed after the
 * test `t`: `{ url, counts }`, where `counts.most` is the most requests it
 * ever had in flight and `counts.served` how many it answered.
 */
export async function countingServer(t, ms = 5) {
  const counts = { now: 0, most: 0, served: 0 }
  const server = createServer((request, response) => {
    counts.now++
    counts.most = Math.max(counts.most, counts.now)
    setTimeout(() => {
      counts.now--
      counts.served++
      response.end('ok')
    }, ms)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => server.close())
  return { url: `http://127.0.0.1:${server.address().port}/`, counts }
}
