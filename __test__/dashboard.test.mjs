// The dashboard's request handler, without a browser: its routes, its
// Server-Sent Events, its refusals, its JSON, its one stats timer.
// (__test__/browser/ opens the page in Chromium.)
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { Worker } from 'node:worker_threads'
import { fork } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import CircuitBreaker, { createSharedArray, dashboard } from 'shared-circuit-breaker'

const fail = async () => {
  throw new Error('down')
}

// A server for `handler` on a loopback port; closed when the test ends.
async function serve(t, handler) {
  const server = http.createServer(handler)
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => {
    server.closeAllConnections()
    server.close()
  })
  return `http://127.0.0.1:${server.address().port}`
}

function breakerFor(t, options) {
  const breaker = new CircuitBreaker(createSharedArray(options), options)
  t.after(() => breaker.dispose())
  return breaker
}

function handlerFor(t, breakers, options) {
  const handler = dashboard(breakers, options)
  t.after(() => handler.close())
  return handler
}

// Opens the event stream at `url` and collects its raw text; `next(event)`
// resolves with the next whole frame of that event, parsed.
function stream(url) {
  let text = ''
  let waiters = []
  let response
  const request = http.get(url, (res) => {
    response = res
    res.setEncoding('utf8')
    res.on('data', (chunk) => {
      text += chunk
      waiters = waiters.filter((waiter) => !waiter())
    })
  })
  const frames = () => text.split('\n\n').slice(0, -1)
  let consumed = 0
  return {
    get raw() {
      return text
    },
    get response() {
      return response
    },
    next(event, timeout = 3000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no '${event}' event within ${timeout} ms in:\n${text}`)), timeout)
        const check = () => {
          const all = frames()
          for (; consumed < all.length; consumed++) {
            const lines = all[consumed].split('\n')
            if (lines[0] === `event: ${event}`) {
              consumed++
              clearTimeout(timer)
              resolve({ lines, data: JSON.parse(lines[1].slice('data: '.length)) })
              return true
            }
          }
          return false
        }
        if (!check()) waiters.push(check)
      })
    },
    close() {
      request.destroy()
    },
  }
}

test('the event stream is Server-Sent Events: retry, then a snapshot, one data line per event', async (t) => {
  const breaker = breakerFor(t, { name: 'orders', failureThreshold: 2 })
  const base = await serve(t, handlerFor(t, [breaker]))
  const events = stream(`${base}/events`)
  t.after(() => events.close())
  const snapshot = await events.next('snapshot')
  assert.equal(events.response.headers['content-type'], 'text/event-stream; charset=utf-8')
  assert.equal(events.response.headers['cache-control'], 'no-store')
  assert.ok(events.raw.startsWith('retry: 2000\n\nevent: snapshot\ndata: {'))
  assert.equal(snapshot.lines.length, 2)
  assert.equal(snapshot.data.pid, process.pid)
  const [shown] = snapshot.data.breakers
  assert.equal(shown.name, 'orders')
  assert.equal(shown.failureThreshold, 2)
  assert.equal(shown.file, false)
  assert.equal(shown.stats.state, 'CLOSED')
  assert.deepEqual(shown.timeline, [])
})

test('a transition made in a worker thread is pushed with its thread, pid and fresh stats', async (t) => {
  const options = { name: 'orders', failureThreshold: 3, resetTimeout: 60000 }
  const array = createSharedArray(options)
  const breaker = new CircuitBreaker(array, options)
  t.after(() => breaker.dispose())
  const base = await serve(t, handlerFor(t, [breaker]))
  const events = stream(`${base}/events`)
  t.after(() => events.close())
  await events.next('snapshot')
  const worker = new Worker(new URL('./fixtures/dashboard-worker.mjs', import.meta.url), { workerData: { array, options } })
  t.after(() => worker.terminate())
  worker.postMessage('trip')
  const { data } = await events.next('transition')
  assert.equal(data.index, 0)
  assert.equal(data.change.state, 'OPEN')
  assert.equal(data.change.threadId, worker.threadId)
  assert.equal(data.change.pid, process.pid)
  assert.equal(data.change.fleet, false)
  assert.equal(data.stats.state, 'OPEN')
  assert.equal(data.stats.consecutiveFailures, 3)
  // A page that connects later gets it in its snapshot's timeline.
  const later = stream(`${base}/events`)
  t.after(() => later.close())
  const { data: snapshot } = await later.next('snapshot')
  assert.deepEqual(snapshot.breakers[0].timeline, [data.change])
})

test('a breaker file tripped by another process: the transition names that process', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cb-dashboard-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'inventory.breaker')
  const breaker = CircuitBreaker.fromFile(file, { name: 'inventory', failureThreshold: 2, resetTimeout: 60000 })
  t.after(() => breaker.dispose())
  const base = await serve(t, handlerFor(t, [breaker]))
  const events = stream(`${base}/events`)
  t.after(() => events.close())
  const { data: snapshot } = await events.next('snapshot')
  assert.equal(snapshot.breakers[0].file, true)
  const child = fork(new URL('./fixtures/file-process.mjs', import.meta.url), [file, '2', '60000'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  t.after(() => child.kill())
  await new Promise((resolve) => child.once('message', resolve))
  const reply = new Promise((resolve) => child.once('message', resolve))
  child.send({ id: 1, command: 'fail', args: { times: 2 } })
  assert.deepEqual((await reply).result, { state: 'OPEN' })
  const { data } = await events.next('transition')
  assert.notEqual(child.pid, process.pid)
  assert.deepEqual(
    { state: data.change.state, threadId: data.change.threadId, pid: data.change.pid, fleet: data.change.fleet },
    { state: 'OPEN', threadId: 0, pid: child.pid, fleet: false },
  )
})

test('anything but GET is refused with 405 and Allow: GET, and changes nothing', async (t) => {
  const breaker = breakerFor(t, { name: 'orders', failureThreshold: 1 })
  await breaker.execute(fail).catch(() => {})
  const base = await serve(t, handlerFor(t, [breaker], { path: '/breakers' }))
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']) {
    for (const route of ['/breakers', '/breakers/', '/breakers/events', '/breakers/stats.json']) {
      const response = await fetch(`${base}${route}`, { method })
      assert.equal(response.status, 405, `${method} ${route}`)
      assert.equal(response.headers.get('allow'), 'GET')
    }
  }
  assert.equal(breaker.getState(), 'OPEN')
})

test('names reach the JSON as strings: no markup characters, no raw line breaks', async (t) => {
  const name = '</script><img src=x onerror="alert(1)">\n\u2028\u2029"\'&'
  const breaker = breakerFor(t, { name })
  const handler = handlerFor(t, [breaker])
  const base = await serve(t, handler)
  const body = await (await fetch(`${base}/stats.json`)).text()
  assert.doesNotMatch(body, /[<>&\n\u2028\u2029]/)
  assert.equal(JSON.parse(body).breakers[0].name, name)
  const events = stream(`${base}/events`)
  t.after(() => events.close())
  const { lines, data } = await events.next('snapshot')
  assert.equal(lines.length, 2)
  assert.equal(data.breakers[0].name, name)
})

test('the page is sent with a strict Content-Security-Policy and without any name in it', async (t) => {
  const breaker = breakerFor(t, { name: 'secret<b>name' })
  const base = await serve(t, handlerFor(t, [breaker]))
  const response = await fetch(base)
  const page = await response.text()
  assert.equal(response.headers.get('content-type'), 'text/html; charset=utf-8')
  const policy = response.headers.get('content-security-policy')
  assert.match(policy, /^default-src 'none'; script-src 'sha256-[A-Za-z0-9+/]+='; style-src 'sha256-[A-Za-z0-9+/]+='; connect-src 'self'/)
  assert.doesNotMatch(policy, /unsafe/)
  assert.equal(response.headers.get('x-content-type-options'), 'nosniff')
  assert.ok(!page.includes('secret'))
  assert.doesNotMatch(page, /innerHTML|insertAdjacentHTML|outerHTML|document\.write/)
})

test('the stats tick runs once a second while a page is connected, and stops when none is', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] })
  const breaker = breakerFor(t, { name: 'orders' })
  let reads = 0
  const getStats = breaker.getStats.bind(breaker)
  breaker.getStats = () => {
    reads++
    return getStats()
  }
  const handler = handlerFor(t, [breaker])
  const base = await serve(t, handler)
  t.mock.timers.tick(5000)
  assert.equal(reads, 0, 'no page, no reads')

  const first = stream(`${base}/events`)
  const second = stream(`${base}/events`)
  await first.next('snapshot')
  await second.next('snapshot')
  assert.equal(handler.clients, 2)
  const connected = reads
  t.mock.timers.tick(1000)
  const tick = await first.next('stats')
  await second.next('stats')
  assert.equal(reads, connected + 1, 'one read per tick, for every page')
  assert.equal(tick.data.breakers[0].state, 'CLOSED')

  first.close()
  second.close()
  while (handler.clients > 0) await new Promise((resolve) => setImmediate(resolve))
  const left = reads
  t.mock.timers.tick(10000)
  assert.equal(reads, left, 'no reads once every page has gone')
})

test('rates are the change in the counts over the time between ticks', async (t) => {
  const breaker = breakerFor(t, { name: 'orders', failureThreshold: 100 })
  const base = await serve(t, handlerFor(t, [breaker]))
  const events = stream(`${base}/events`)
  t.after(() => events.close())
  await events.next('snapshot')
  const started = performance.now()
  for (let i = 0; i < 30; i++) await breaker.execute(i % 3 === 0 ? fail : async () => i).catch(() => {})
  const { data } = await events.next('stats')
  const seconds = (performance.now() - started) / 1000
  const rates = data.breakers[0].rates
  // 30 calls within one tick of about a second (up to `seconds` late).
  assert.ok(rates.requests > 30 / (1 + seconds) - 1 && rates.requests <= 31, `requests ${rates.requests}`)
  assert.ok(Math.abs(rates.failures * 2 - rates.successes) < 1e-9, `failures ${rates.failures}, successes ${rates.successes}`)
  assert.equal(rates.rejections, 0)
})

test('mounted under a path: its routes answer, anything else goes to next() or is a 404', async (t) => {
  const breaker = breakerFor(t, { name: 'orders' })
  const handler = handlerFor(t, [breaker], { path: '/ops/breakers/' })
  let passed = []
  const base = await serve(t, (req, res) => handler(req, res, () => {
    passed.push(req.url)
    res.end('next')
  }))
  for (const route of ['/ops/breakers', '/ops/breakers/', '/ops/breakers/?x=1']) {
    assert.equal((await fetch(`${base}${route}`)).headers.get('content-type'), 'text/html; charset=utf-8', route)
  }
  assert.equal((await (await fetch(`${base}/ops/breakers/stats.json?pretty`)).json()).breakers[0].name, 'orders')
  for (const route of ['/', '/ops', '/ops/breakers/x', '/ops/breakersx', '/ops/breakers/events/x']) {
    assert.equal(await (await fetch(`${base}${route}`)).text(), 'next', route)
  }
  assert.deepEqual(passed, ['/', '/ops', '/ops/breakers/x', '/ops/breakersx', '/ops/breakers/events/x'])
  passed = []
  // Without next(), a 404.
  const bare = await serve(t, handler)
  assert.equal((await fetch(`${bare}/elsewhere`)).status, 404)
})

test('as Express mounts it (app.use(path, handler)): req.url is already relative to the mount', async (t) => {
  const breaker = breakerFor(t, { name: 'orders' })
  const handler = handlerFor(t, [breaker])
  const base = await serve(t, (req, res) => {
    // What Express does for app.use('/breakers', handler).
    if (!req.url.startsWith('/breakers')) return res.end('not mounted')
    req.originalUrl = req.url
    req.url = req.url.slice('/breakers'.length) || '/'
    handler(req, res, () => res.end('next'))
  })
  assert.equal((await fetch(`${base}/breakers`)).headers.get('content-type'), 'text/html; charset=utf-8')
  assert.equal((await (await fetch(`${base}/breakers/stats.json`)).json()).breakers[0].name, 'orders')
  assert.equal(await (await fetch(`${base}/breakers/nope`)).text(), 'next')
})

test('a page beyond maxClients is refused with 503; close() ends the streams and stops listening', async (t) => {
  const breaker = breakerFor(t, { name: 'orders' })
  const handler = dashboard([breaker], { maxClients: 1 })
  const base = await serve(t, handler)
  assert.equal(breaker.listenerCount('open'), 1)
  const events = stream(`${base}/events`)
  await events.next('snapshot')
  const refused = await fetch(`${base}/events`)
  assert.equal(refused.status, 503)
  const ended = new Promise((resolve) => events.response.on('end', resolve))
  handler.close()
  await ended
  assert.equal(handler.clients, 0)
  for (const event of ['open', 'halfOpen', 'close']) assert.equal(breaker.listenerCount(event), 0)
  assert.equal((await fetch(`${base}/`)).status, 404)
})

test('bad arguments are TypeErrors and RangeErrors naming the option, its range and what was received', () => {
  const breaker = new CircuitBreaker(createSharedArray())
  try {
    const cases = [
      [undefined, undefined, TypeError, 'dashboard: breakers must be an array of CircuitBreaker, got undefined'],
      [[{}], undefined, TypeError, 'dashboard: breakers[0] must be a CircuitBreaker, got an object'],
      [[breaker, 'b'], undefined, TypeError, 'dashboard: breakers[1] must be a CircuitBreaker, got the string "b"'],
      [[breaker], 'x', TypeError, 'dashboard: options must be an object, got the string "x"'],
      [[breaker], { path: 3 }, TypeError, 'dashboard: options.path must be a string, got the number 3'],
      [[breaker], { path: 'breakers' }, RangeError, "dashboard: options.path must be a URL path starting with '/' (no query, no '//'), got the string \"breakers\""],
      [[breaker], { path: '/a?b' }, RangeError, 'got the string "/a?b"'],
      [[breaker], { path: '//evil' }, RangeError, 'got the string "//evil"'],
      [[breaker], { title: 5 }, TypeError, 'dashboard: options.title must be a string, got the number 5'],
      [[breaker], { history: 0 }, RangeError, 'dashboard: options.history must be an integer from 1 to 1000, got the number 0'],
      [[breaker], { history: '5' }, TypeError, 'dashboard: options.history must be a number, got the string "5"'],
      [[breaker], { get path() { throw new Error('no') } }, TypeError, 'dashboard: options.path could not be read: no'],
      [[breaker], { maxClients: 1.5 }, RangeError, 'dashboard: options.maxClients must be an integer from 1 to 10000, got the number 1.5'],
    ]
    for (const [breakers, options, type, message] of cases) {
      assert.throws(() => dashboard(breakers, options), (error) => error instanceof type && error.message.includes(message), message)
    }
    assert.equal(breaker.listenerCount('open'), 0)
  } finally {
    breaker.dispose()
  }
})

test('npm run demo -- --serve: prints a loopback address whose dashboard shows the workers tripping the breaker', async (t) => {
  const { spawn } = await import('node:child_process')
  const demo = spawn(process.execPath, ['examples/demo.mjs', '--serve'], { cwd: new URL('..', import.meta.url), stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => demo.kill())
  const address = await new Promise((resolve, reject) => {
    let out = ''
    demo.stdout.setEncoding('utf8').on('data', (chunk) => {
      out += chunk
      const found = /^Dashboard: (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(out)
      if (found) resolve(found[1])
    })
    demo.once('exit', (code) => reject(new Error(`the demo exited (${code}) before printing its address: ${out}`)))
  })
  const events = stream(`${address}events`)
  t.after(() => events.close())
  const { data: snapshot } = await events.next('snapshot')
  assert.equal(snapshot.breakers[0].name, 'inventory service')
  // The dependency goes down 4 s after the start; a worker trips the breaker.
  let opened = snapshot.breakers[0].timeline.find((change) => change.state === 'OPEN')
  while (opened === undefined) {
    const { data } = await events.next('transition', 8000)
    if (data.change.state === 'OPEN') opened = data.change
  }
  assert.notEqual(opened.threadId, 0, 'made by a worker, not the main thread')
})

test('a breaker disposed after the dashboard was made shows with null stats; the others go on', async (t) => {
  const gone = new CircuitBreaker(createSharedArray(), { name: 'gone' })
  const kept = breakerFor(t, { name: 'kept' })
  const handler = handlerFor(t, [gone, kept])
  const base = await serve(t, handler)
  gone.dispose()
  const { breakers } = await (await fetch(`${base}/stats.json`)).json()
  assert.deepEqual(breakers.map((b) => [b.name, b.stats?.state ?? null]), [['gone', null], ['kept', 'CLOSED']])
  handler.close()
})
