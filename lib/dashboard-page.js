'use strict'

// The dashboard's one page: markup, style and script in one response, so the
// page makes no request but its one EventSource. The script builds every
// element with createElement and textContent (no data ever goes through
// innerHTML), and the Content-Security-Policy runs only this script and this
// style (by hash) and lets the page connect to its own origin only.

const { createHash } = require('node:crypto')

const STYLE = `
:root { color-scheme: light; --ok: #1b7f3b; --bad: #c62828; --warn: #b26a00; --line: #d9dde3; --dim: #5f6b7a; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background: #f4f6f9; color: #1d2733; }
header { display: flex; align-items: baseline; gap: 16px; padding: 14px 20px; background: #1d2733; color: #fff; }
header h1 { margin: 0; font-size: 18px; font-weight: 600; }
header .where, header .status { color: #b8c2cf; font-size: 12px; }
header .status.live::before { content: "\\25CF  "; color: #4caf50; }
header .status.down::before { content: "\\25CF  "; color: #ef5350; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 14px; padding: 16px 20px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; border-top: 4px solid var(--ok); }
.card.OPEN { border-top-color: var(--bad); }
.card.HALF_OPEN { border-top-color: var(--warn); }
.card.gone { opacity: 0.5; }
.top { display: flex; align-items: center; gap: 8px; }
.name { font-weight: 600; font-size: 15px; overflow-wrap: anywhere; flex: 1; }
.state { font: 600 12px/1 ui-monospace, monospace; padding: 4px 8px; border-radius: 4px; color: #fff; background: var(--ok); }
.state.OPEN { background: var(--bad); }
.state.HALF_OPEN { background: var(--warn); }
.tag { font-size: 11px; padding: 2px 6px; border-radius: 4px; background: #e8eaf0; color: var(--dim); }
.tag[hidden] { display: none; }
.since, .where-state { color: var(--dim); font-size: 12px; }
dl { display: grid; grid-template-columns: 92px 1fr; gap: 4px 10px; margin: 10px 0; }
dt { color: var(--dim); }
dd { margin: 0; font-variant-numeric: tabular-nums; }
.bar { height: 4px; background: #e8eaf0; border-radius: 2px; margin-top: 3px; }
.bar span { display: block; height: 100%; border-radius: 2px; background: var(--ok); }
.bar.hot span { background: var(--bad); }
h2 { font-size: 12px; font-weight: 600; color: var(--dim); margin: 10px 0 4px; text-transform: uppercase; letter-spacing: .04em; }
ol { list-style: none; margin: 0; padding: 0; max-height: 180px; overflow-y: auto; font-size: 12px; }
li { display: grid; grid-template-columns: 92px 84px 1fr; gap: 6px; padding: 3px 0; border-top: 1px solid #eef0f3; font-variant-numeric: tabular-nums; }
li .to { font-weight: 600; color: var(--ok); }
li .to.OPEN { color: var(--bad); }
li .to.HALF_OPEN { color: var(--warn); }
li.none { display: block; color: var(--dim); }
`

// Runs in the browser (serialised into the page): nothing from the server
// is ever parsed as markup.
function client() {
  const cards = []
  let serverSkew = 0
  const status = document.querySelector('.status')

  function el(tag, className, text) {
    const node = document.createElement(tag)
    if (className) node.className = className
    if (text !== undefined) node.textContent = text
    return node
  }
  function num(value, digits) {
    return value === null || value === undefined ? '\u2013' : value.toFixed(digits)
  }
  function clock(time) {
    const d = new Date(time)
    const pad = (n, w) => String(n).padStart(w, '0')
    return `${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}.${pad(d.getMilliseconds(), 3)}`
  }
  function duration(ms) {
    if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`
    if (ms < 120000) return `${(ms / 1000).toFixed(1)} s`
    if (ms < 7200000) return `${Math.round(ms / 60000)} min`
    return `${(ms / 3600000).toFixed(1)} h`
  }
  function bar(row, fraction, hot) {
    const outer = el('div', hot ? 'bar hot' : 'bar')
    const inner = el('span')
    inner.style.width = `${Math.min(100, Math.max(0, fraction * 100)).toFixed(1)}%`
    outer.append(inner)
    row.append(outer)
  }
  function who(change) {
    if (change.fleet) return 'fleet'
    const thread = change.threadId === 0 ? 'main thread' : `thread ${change.threadId}`
    return change.pid ? `${thread} \u00b7 process ${change.pid}` : thread
  }

  function build(info, index) {
    const card = el('section', 'card')
    card.dataset.breaker = String(index)
    const top = el('div', 'top')
    const name = el('div', 'name', info.name)
    const state = el('span', 'state')
    const isolated = el('span', 'tag', 'isolated')
    const disabled = el('span', 'tag', 'disabled')
    top.append(name, isolated, disabled, state)
    const since = el('div', 'since')
    const where = el('div', 'where-state', info.file ? 'breaker file (shared by processes)' : 'shared array (this process)')
    const dl = el('dl')
    const field = (label) => {
      dl.append(el('dt', '', label))
      const dd = el('dd')
      dl.append(dd)
      return dd
    }
    const parts = {
      card, state, isolated, disabled, since,
      run: field('Failure run'),
      window: field('Window'),
      rates: field('Per second'),
      latency: field('Latency'),
      totals: field('Totals'),
    }
    const heading = el('h2', '', 'State changes')
    const list = el('ol')
    parts.list = list
    card.append(top, since, where, dl, heading, list)
    return parts
  }

  function render(parts, info, stats, now) {
    const { card } = parts
    if (stats === null) {
      card.className = 'card gone'
      parts.state.textContent = 'DISPOSED'
      return
    }
    card.className = `card ${stats.state}`
    parts.state.className = `state ${stats.state}`
    parts.state.textContent = stats.state
    parts.isolated.hidden = !stats.isolated
    parts.disabled.hidden = !stats.disabled
    parts.since.textContent = stats.stateSince > 0 ? `${stats.state} for ${duration(now - stats.stateSince)}` : `${stats.state} since it was created`

    parts.run.replaceChildren()
    if (info.failureThreshold === null) {
      parts.run.textContent = `${stats.consecutiveFailures} (the rate decides)`
    } else {
      parts.run.textContent = `${stats.consecutiveFailures} / ${info.failureThreshold}`
      bar(parts.run, stats.consecutiveFailures / info.failureThreshold, stats.consecutiveFailures >= info.failureThreshold)
    }

    parts.window.replaceChildren()
    if (info.window === null || stats.window === null) {
      parts.window.textContent = 'no failure-rate window'
    } else {
      const w = stats.window
      const unit = info.window.type === 'time' ? `${info.window.size} ms` : `${info.window.size} calls`
      parts.window.textContent =
        `${num(w.failureRate, 1)}% / ${info.window.threshold}% \u00b7 ${w.calls} calls (min ${info.window.minimumCalls}, last ${unit})`
      bar(parts.window, w.failureRate / info.window.threshold, w.failureRate >= info.window.threshold)
    }

    const r = stats.rates
    parts.rates.textContent = r === null
      ? 'measuring\u2026'
      : `requests ${num(r.requests, 1)} \u00b7 ok ${num(r.successes, 1)} \u00b7 failed ${num(r.failures, 1)} \u00b7 rejected ${num(r.rejections, 1)}`
    parts.latency.textContent = stats.latency === null
      ? 'no histogram'
      : `p50 ${num(stats.latency.p50, 2)} ms \u00b7 p90 ${num(stats.latency.p90, 2)} ms \u00b7 p99 ${num(stats.latency.p99, 2)} ms (${stats.latency.count} calls)`
    parts.totals.textContent =
      `${stats.requests} requests \u00b7 ${stats.successes} ok \u00b7 ${stats.failures} failed \u00b7 ${stats.rejections} rejected`
  }

  function addChange(parts, info, change) {
    const none = parts.list.querySelector('.none')
    if (none) none.remove()
    const row = el('li', 'change')
    row.append(el('span', 'at', clock(change.time)), el('span', `to ${change.state}`, change.state), el('span', 'by', who(change)))
    parts.list.prepend(row)
    while (parts.list.children.length > 50) parts.list.lastElementChild.remove()
  }

  function nowAtServer() {
    return Date.now() + serverSkew
  }

  const events = new EventSource(`${location.pathname.replace(/\/+$/, '')}/events`)
  events.addEventListener('snapshot', (event) => {
    const data = JSON.parse(event.data)
    serverSkew = data.time - Date.now()
    document.title = data.title
    document.querySelector('h1').textContent = data.title
    document.querySelector('.where').textContent = `pid ${data.pid}`
    const main = document.querySelector('main')
    main.replaceChildren()
    cards.length = 0
    data.breakers.forEach((info, index) => {
      const parts = build(info, index)
      cards.push({ parts, info })
      main.append(parts.card)
      parts.list.append(el('li', 'none', 'none since the dashboard started'))
      for (const change of info.timeline) addChange(parts, info, change)
      render(parts, info, info.stats, nowAtServer())
    })
    status.className = 'status live'
    status.textContent = 'live'
  })
  events.addEventListener('stats', (event) => {
    const data = JSON.parse(event.data)
    serverSkew = data.time - Date.now()
    data.breakers.forEach((stats, index) => {
      const card = cards[index]
      if (card) render(card.parts, card.info, stats, data.time)
    })
  })
  events.addEventListener('transition', (event) => {
    const data = JSON.parse(event.data)
    const card = cards[data.index]
    if (!card) return
    addChange(card.parts, card.info, data.change)
    render(card.parts, card.info, data.stats, nowAtServer())
  })
  events.addEventListener('error', () => {
    status.className = 'status down'
    status.textContent = events.readyState === EventSource.CLOSED ? 'disconnected' : 'reconnecting\u2026'
  })
}

const SCRIPT = `(${client.toString()})()\n`

function hash(text) {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Circuit breakers</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header><h1>Circuit breakers</h1><span class="where"></span><span class="status">connecting\u2026</span></header>
<main></main>
<script>${SCRIPT}</script>
</body>
</html>
`

const PAGE_HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Length': Buffer.byteLength(PAGE),
  'Cache-Control': 'no-store',
  'Content-Security-Policy': [
    "default-src 'none'",
    `script-src ${hash(SCRIPT)}`,
    `style-src ${hash(STYLE)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
}

module.exports = { PAGE, PAGE_HEADERS }
