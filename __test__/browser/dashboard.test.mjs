// The dashboard in a real browser: headless Chromium opens the page, and
// breakers are tripped from a worker thread and from another process.
//
// Skipped with a message when no Chromium is installed, unless
// BROWSER_TESTS_REQUIRED=1 (CI), when that is a failure. CHROMIUM_PATH
// names another binary. UPDATE_SCREENSHOT=1 writes the screenshot to
// docs/dashboard.png (else to a temporary directory).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { fork } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { fileURLToPath } from 'node:url'
import CircuitBreaker, { createSharedArray, dashboard } from 'shared-circuit-breaker'

const root = fileURLToPath(new URL('../..', import.meta.url))
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const installed = fs.existsSync(CHROMIUM)
const required = process.env.BROWSER_TESTS_REQUIRED === '1'
const skip = installed || required ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH): browser tests skipped`
const MOUNT = '/ops/breakers'
const MARKUP = '<img src=x onerror="window.__ran = true">'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
let server, handler, browser, page, dir, base, traffic
const requests = []
const problems = []
const breakers = {}

before(async () => {
  if (skip) return
  assert.ok(installed, `BROWSER_TESTS_REQUIRED=1 but there is no Chromium at ${CHROMIUM}`)
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbjs-dashboard-'))
  const ordersOptions = { name: 'orders', failureThreshold: 3, resetTimeout: 60000 }
  breakers.orders = { array: createSharedArray(ordersOptions), options: ordersOptions }
  breakers.orders.breaker = new CircuitBreaker(breakers.orders.array, ordersOptions)
  const searchOptions = { name: 'search', failureThreshold: 20, failureRateThreshold: 50, minimumCalls: 10, windowSize: 50, histogram: true }
  breakers.search = { breaker: new CircuitBreaker(createSharedArray(searchOptions), searchOptions) }
  breakers.markup = { breaker: new CircuitBreaker(createSharedArray(), { name: MARKUP }) }
  breakers.file = {
    path: path.join(dir, 'inventory.breaker'),
    breaker: null,
  }
  breakers.file.breaker = CircuitBreaker.fromFile(breakers.file.path, { name: 'inventory (breaker file)', failureThreshold: 2, resetTimeout: 60000 })

  // Some traffic, for the rates, the window and the latency percentiles.
  let n = 0
  traffic = setInterval(() => {
    n++
    breakers.search.breaker.execute(() => sleep(1 + (n % 7))
      .then(() => { if (n % 4 === 0) throw new Error('slow backend') })).catch(() => {})
  }, 20)

  handler = dashboard(
    [breakers.orders.breaker, breakers.search.breaker, breakers.markup.breaker, breakers.file.breaker],
    { path: MOUNT, title: 'Shop breakers' },
  )
  server = http.createServer(handler)
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${server.address().port}`

  const { chromium } = await import('playwright-core')
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  page = await browser.newPage({ viewport: { width: 1200, height: 800 } })
  page.on('request', (request) => requests.push(request.url()))
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()}`)
  })
  await page.goto(`${base}${MOUNT}`)
  await page.waitForFunction(() => document.querySelectorAll('.card').length === 4, null, { timeout: 5000 })
})

after(async () => {
  clearInterval(traffic)
  await browser?.close()
  handler?.close()
  server?.close()
  for (const { breaker } of Object.values(breakers)) breaker?.dispose()
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

// Waits until the card of breaker `index` shows `state` and a state change
// to it made by a thread described as `by`; returns the milliseconds it took.
async function waitForChange(index, state, by, timeout) {
  const started = performance.now()
  await page.waitForFunction(
    ([index, state, by]) => {
      const card = document.querySelector(`[data-breaker="${index}"]`)
      const rows = [...card.querySelectorAll('li.change')]
      return card.querySelector('.state').textContent === state &&
        rows.some((row) => row.querySelector('.to').textContent === state && row.querySelector('.by').textContent.includes(by))
    },
    [index, state, by],
    { timeout, polling: 'raf' },
  ).catch(async (error) => {
    const text = await page.locator(`[data-breaker="${index}"]`).innerText()
    throw new Error(`card ${index} never showed ${state} by '${by}': it shows\n${text}`, { cause: error })
  })
  return performance.now() - started
}

function ask(worker, command) {
  return new Promise((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
    worker.postMessage(command)
  })
}

test('shows OPEN, and the worker thread that tripped it, within a second; then the close', { skip }, async (t) => {
  const worker = new Worker(new URL('../fixtures/dashboard-worker.mjs', import.meta.url), {
    workerData: { array: breakers.orders.array, options: breakers.orders.options },
  })
  try {
    const tripped = await ask(worker, 'trip')
    assert.equal(tripped.state, 'OPEN')
    const openedIn = await waitForChange(0, 'OPEN', `thread ${worker.threadId} · process ${process.pid}`, 1000)
    const run = await page.locator('[data-breaker="0"] dd').first().innerText()
    assert.match(run, /^3 \/ 3/)
    const closed = await ask(worker, 'reset')
    assert.equal(closed.state, 'CLOSED')
    const closedIn = await waitForChange(0, 'CLOSED', `thread ${worker.threadId}`, 1000)
    t.diagnostic(`shown ${openedIn.toFixed(0)} ms after the trip, ${closedIn.toFixed(0)} ms after the close`)
  } finally {
    await worker.terminate()
  }
})

test('a breaker name holding markup is shown as text, and nothing in it runs', { skip }, async () => {
  const shown = await page.evaluate(() => ({
    name: document.querySelector('[data-breaker="2"] .name').textContent,
    images: document.querySelectorAll('img').length,
    ran: window.__ran === true,
  }))
  assert.deepEqual(shown, { name: MARKUP, images: 0, ran: false })
})

test('a breaker file tripped by another process shows up, with that process', { skip }, async () => {
  const child = fork(path.join(root, '__test__/fixtures/file-process.mjs'), [breakers.file.path, '2', '60000'], { cwd: root })
  try {
    await new Promise((resolve) => child.once('message', resolve))
    const reply = new Promise((resolve) => child.once('message', resolve))
    child.send({ id: 1, command: 'fail', args: { times: 2 } })
    assert.deepEqual((await reply).result, { state: 'OPEN' })
    // The page names the forked process, not this one.
    assert.notEqual(child.pid, process.pid)
    await waitForChange(3, 'OPEN', `main thread · process ${child.pid}`, 1000)
  } finally {
    child.kill()
  }
})

test('the page shows rates, the window and latency percentiles from the once-a-second tick', { skip }, async () => {
  await page.waitForFunction(() => /requests [1-9]/.test(document.querySelector('[data-breaker="1"]').innerText), null, { timeout: 3000 })
  const text = await page.locator('[data-breaker="1"]').innerText()
  assert.match(text, /% \/ 50% · \d+ calls \(min 10, last 50 calls\)/)
  assert.match(text, /p50 [\d.]+ ms · p90 [\d.]+ ms · p99 [\d.]+ ms/)
  const screenshot = process.env.UPDATE_SCREENSHOT === '1' ? path.join(root, 'docs/dashboard.png') : path.join(dir, 'dashboard.png')
  await page.screenshot({ path: screenshot })
  assert.ok(fs.statSync(screenshot).size > 10000)
})

test('the page made no request but itself and one EventSource, and broke no rule', { skip }, async () => {
  await sleep(100)
  const own = requests.filter((url) => !url.startsWith('data:'))
  assert.deepEqual(own, [`${base}${MOUNT}`, `${base}${MOUNT}/events`])
  assert.equal(handler.clients, 1)
  assert.deepEqual(problems, [])
})

test('a transition the fleet agent made reads "fleet", not a thread', { skip }, async () => {
  // The event as the watch delivers it for the fleet agent's log entry
  // (actor 0xFFFFF, see lib/watch.js); a real fleet needs a store, and
  // __test__/fleet tests that the watch says `fleet: true`.
  breakers.markup.breaker.emit('open', { state: 'OPEN', time: Date.now(), threadId: 0xfffff, pid: 4711, generation: 1, fleet: true })
  await page.waitForFunction(
    () => [...document.querySelectorAll('[data-breaker="2"] li.change .by')].some((by) => by.textContent === 'fleet'),
    null,
    { timeout: 1000 },
  )
})
