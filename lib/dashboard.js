'use strict'

// `dashboard(breakers, options)`: a request handler for `node:http` (and
// Express or Fastify) serving a live page of the breakers. Read-only: GET
// only, nothing in it changes a breaker.
//
//   <path>             the page (dashboard-page.js)
//   <path>/events      Server-Sent Events: `snapshot` on connect, then
//                      `transition` (from the breakers' state events) and
//                      `stats` (once a second)
//   <path>/stats.json  the snapshot, once
//
// Nothing is added to the call path: the state events come from the watch
// every thread runs over the shared memory (watch.js), and the stats are
// read once a second by one timer, which runs only while a page is
// connected.

const { threadId } = require('node:worker_threads')
const { configOf } = require('./breaker.js')
const { describe } = require('./describe.js')
const { readOption } = require('./options.js')
const { PAGE, PAGE_HEADERS } = require('./dashboard-page.js')

const STATE_EVENTS = ['open', 'halfOpen', 'close']
const TICK_MS = 1000
// A client whose connection holds this much unsent data is too slow to
// follow: it is dropped rather than buffered without bound.
const MAX_BUFFERED_BYTES = 1 << 20

function typeError(name, expected, received) {
  return new TypeError(`${name} must be ${expected}, got ${describe(received)}`)
}

function rangeError(name, expected, received) {
  return new RangeError(`${name} must be ${expected}, got ${describe(received)}`)
}

function readOptions(options) {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw typeError('dashboard: options', 'an object', options)
  }
  const read = (name) => {
    try {
      return readOption(options, name)
    } catch (error) {
      throw new TypeError(`dashboard: ${error.message}`, { cause: error.cause })
    }
  }
  const path = read('path') ?? '/'
  if (typeof path !== 'string') throw typeError('dashboard: options.path', 'a string', path)
  if (!/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/.test(path) || /\/\/|%(?![0-9A-Fa-f]{2})/.test(path)) {
    throw rangeError('dashboard: options.path', "a URL path starting with '/' (no query, no '//')", path)
  }
  const title = read('title') ?? 'Circuit breakers'
  if (typeof title !== 'string') throw typeError('dashboard: options.title', 'a string', title)
  const history = integer('history', read('history') ?? 20, 1, 1000)
  const maxClients = integer('maxClients', read('maxClients') ?? 32, 1, 10000)
  return { prefix: path.replace(/\/+$/, ''), title, history, maxClients }
}

function integer(name, value, min, max) {
  if (typeof value !== 'number') throw typeError(`dashboard: options.${name}`, 'a number', value)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw rangeError(`dashboard: options.${name}`, `an integer from ${min} to ${max}`, value)
  }
  return value
}

// What the page shows of one breaker that does not change: its name and
// thresholds, and where its state lives.
function describeBreaker(breaker, index) {
  let config
  try {
    config = configOf(breaker)
  } catch {
    throw typeError(`dashboard: breakers[${index}]`, 'a CircuitBreaker', breaker)
  }
  const policies = config.policies
  const rate = policies.failureRateThreshold
  let window = null
  if (rate !== undefined) {
    const size = policies.windowSize ?? 100
    window = {
      threshold: rate,
      minimumCalls: policies.minimumCalls ?? Math.min(10, size),
      type: policies.windowIsTime ? 'time' : 'count',
      size,
    }
  }
  return {
    name: config.name,
    // With a rate threshold and no explicit failureThreshold, a run of
    // failures alone never opens the breaker.
    failureThreshold: rate === undefined || policies.consecutiveToo ? config.failureThreshold : null,
    resetTimeout: config.resetTimeout,
    window,
    histogram: policies.histogram === true,
    // A SharedArrayBuffer is shared by the threads of this process only; a
    // breaker file's mapping by every process that opens the file.
    file: !(breaker.getSharedBuffer() instanceof SharedArrayBuffer),
  }
}

const COUNTS = ['requests', 'successes', 'failures', 'rejections']

/**
 * A request handler serving a live page of `breakers`. See docs/dashboard.md.
 */
function dashboard(breakers, options) {
  if (!Array.isArray(breakers)) throw typeError('dashboard: breakers', 'an array of CircuitBreaker', breakers)
  const { prefix, title, history, maxClients } = readOptions(options)
  const entries = breakers.map((breaker, index) => ({
    breaker,
    info: describeBreaker(breaker, index),
    timeline: [],
    listeners: [],
    previous: null, // { at, counts } of the last tick, for the rates
    rates: null,
  }))
  const clients = new Set()
  let timer
  let closed = false

  entries.forEach((entry, index) => {
    for (const event of STATE_EVENTS) {
      const listener = (change) => transition(entry, index, change)
      entry.breaker.on(event, listener)
      entry.listeners.push([event, listener])
    }
  })

  function transition(entry, index, change) {
    const record = {
      state: change.state,
      time: change.time,
      threadId: change.threadId,
      generation: change.generation,
      // The process the transition log names (0 if unknown).
      pid: change.pid,
      fleet: change.fleet === true,
    }
    entry.timeline.push(record)
    if (entry.timeline.length > history) entry.timeline.shift()
    if (clients.size > 0) send('transition', { index, change: record, stats: statsOf(entry) })
  }

  // The breaker's stats as the page shows them (times in ms); null once it
  // is disposed.
  function statsOf(entry) {
    let stats
    try {
      stats = entry.breaker.getStats()
    } catch {
      return null
    }
    return {
      state: stats.state,
      stateSince: stats.stateSince,
      isolated: stats.isolated,
      disabled: stats.disabled,
      consecutiveFailures: stats.consecutiveFailures,
      requests: stats.requests,
      successes: stats.successes,
      failures: stats.failures,
      rejections: stats.rejections,
      window: stats.window,
      latency:
        stats.latency === null
          ? null
          : {
              count: stats.latency.count,
              p50: stats.latency.p50 * 1000,
              p90: stats.latency.p90 * 1000,
              p99: stats.latency.p99 * 1000,
            },
      rates: entry.rates,
    }
  }

  // Reads every breaker's counters and turns the change since the last
  // tick into rates per second.
  function measure() {
    const at = performance.now()
    return entries.map((entry) => {
      const stats = statsOf(entry)
      if (stats !== null) {
        const counts = COUNTS.map((field) => stats[field])
        if (entry.previous !== null && at > entry.previous.at) {
          const seconds = (at - entry.previous.at) / 1000
          entry.rates = {}
          COUNTS.forEach((field, i) => {
            entry.rates[field] = Math.max(0, counts[i] - entry.previous.counts[i]) / seconds
          })
          stats.rates = entry.rates
        }
        entry.previous = { at, counts }
      }
      return stats
    })
  }

  function snapshot(stats = entries.map(statsOf)) {
    return {
      title,
      time: Date.now(),
      pid: process.pid,
      threadId,
      breakers: entries.map((entry, i) => ({ ...entry.info, stats: stats[i], timeline: entry.timeline })),
    }
  }

  function tick() {
    send('stats', { time: Date.now(), breakers: measure() })
  }

  function send(event, data) {
    const frame = sseFrame(event, data)
    for (const res of clients) {
      if (res.writableLength > MAX_BUFFERED_BYTES) res.destroy()
      else res.write(frame)
    }
  }

  function connect(req, res) {
    if (clients.size >= maxClients) {
      refuse(res, 503, `at most ${maxClients} pages may be connected at once`, { 'Retry-After': '5' })
      return
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      // Tells proxies such as nginx not to buffer the stream.
      'X-Accel-Buffering': 'no',
    })
    res.write('retry: 2000\n\n')
    res.write(sseFrame('snapshot', snapshot()))
    clients.add(res)
    if (timer === undefined) {
      for (const entry of entries) entry.previous = null
      measure()
      timer = setInterval(tick, TICK_MS)
      timer.unref()
    }
    const leave = () => {
      clients.delete(res)
      if (clients.size === 0 && timer !== undefined) {
        clearInterval(timer)
        timer = undefined
      }
    }
    res.on('close', leave)
    // A connection that fails is one page gone, never an uncaught error.
    res.on('error', leave)
    req.on('close', leave)
  }

  function handler(req, res, next) {
    const route = routeOf(req.url, prefix)
    if (route === undefined || closed) {
      if (typeof next === 'function') next()
      else refuse(res, 404, 'not found')
      return
    }
    if (req.method !== 'GET') {
      refuse(res, 405, 'the dashboard is read-only: GET only', { Allow: 'GET' })
      return
    }
    if (route === 'page') {
      res.writeHead(200, PAGE_HEADERS)
      res.end(PAGE)
    } else if (route === 'events') {
      connect(req, res)
    } else {
      const body = safeJson(snapshot())
      res.writeHead(200, {
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Length': Buffer.byteLength(body),
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
      })
      res.end(body)
    }
  }

  /** Ends every page's stream and stops listening to the breakers; the handler then passes every request on. */
  handler.close = () => {
    if (closed) return
    closed = true
    for (const entry of entries) {
      for (const [event, listener] of entry.listeners) {
        try {
          entry.breaker.off(event, listener)
        } catch {
          // A disposed breaker has no listeners left to remove.
        }
      }
    }
    for (const res of clients) res.end()
    clients.clear()
    if (timer !== undefined) clearInterval(timer)
    timer = undefined
  }

  /** Pages connected to the event stream now. */
  Object.defineProperty(handler, 'clients', { get: () => clients.size })
  return handler
}

// 'page', 'events' or 'stats' for a URL under the mount path, else undefined.
function routeOf(url, prefix) {
  if (typeof url !== 'string') return undefined
  const pathname = url.split('?', 1)[0]
  if (pathname === prefix || pathname === `${prefix}/`) return 'page'
  if (pathname === `${prefix}/events`) return 'events'
  if (pathname === `${prefix}/stats.json`) return 'stats'
  return undefined
}

function refuse(res, status, message, headers) {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  })
  res.end(`${message}\n`)
}

// JSON that is also safe inside HTML and JavaScript source: `<`, `>`, `&`
// and the line separators U+2028 and U+2029 are escaped. A name holding
// markup reaches the page as a string, never as markup.
function safeJson(value) {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

// One Server-Sent Event. JSON holds no raw line break, so the data is one
// `data:` line.
function sseFrame(event, data) {
  return `event: ${event}\ndata: ${safeJson(data)}\n\n`
}

module.exports = { dashboard }
