'use strict'

// Fleet mode's facade (docs/fleet.md): reads and checks the `fleet` option,
// joins the process agent (src/agent/fleet.rs), and routes what the agent
// tells this thread to the breakers it concerns. Nothing here runs per
// call: the agent hears of transitions only (watch.js `afterTransition`).

const os = require('node:os')
const native = require('./native.js')
const { describe } = require('./describe.js')
const { onMessage, fleetTokens } = require('./agent.js')
const { afterTransition } = require('./watch.js')
const { DISPOSED } = require('./slots.js')

// Message kinds the agent sends (src/agent/fleet.rs).
const KIND_CHANGED = 1
const KIND_DEGRADED = 2
const KIND_RECOVERED = 3

// Operator actions (src/agent/fleet.rs `fleet_op`).
const OP_ISOLATE = 0
const OP_RELEASE = 1
const OP_RESET = 2
const OP_DISABLE = 3
const OP_ENABLE = 4

const DAY_MS = 86400000

// Listener tokens of this thread: the breaker's context, held weakly (a
// breaker collected without dispose() leaves through its finalizer).
const joined = new Map()
const forgotten = new FinalizationRegistry((token) => joined.delete(token))

function contextOf(token) {
  const context = joined.get(token)?.deref()
  return context === undefined || context.array === DISPOSED ? undefined : context
}

let routed = false
function route() {
  if (routed) return
  routed = true
  // The fleet made a transition here: wake this process's watches.
  onMessage(KIND_CHANGED, (token) => {
    const context = contextOf(token)
    if (context !== undefined) afterTransition(context.array, 1)
  })
  onMessage(KIND_DEGRADED, (token, reason) => contextOf(token)?.emit('fleetDegraded', { reason }))
  onMessage(KIND_RECOVERED, (token) => contextOf(token)?.emit('fleetRecovered'))
}

function read(fleet, name) {
  try {
    return fleet[name]
  } catch (cause) {
    throw new TypeError(`fleet.${name} could not be read: ${cause?.message ?? cause}`, { cause })
  }
}

function integer(name, value, low, high, fallback) {
  if (value === undefined || value === null) return fallback
  if (typeof value !== 'number') throw new TypeError(`fleet.${name} must be a number, got ${describe(value)}`)
  if (!Number.isInteger(value) || value < low || value > high) {
    throw new RangeError(`fleet.${name} must be an integer from ${low} to ${high}, got ${value}`)
  }
  return value
}

// A name in the store: 1 to 200 bytes, no whitespace (and for a key, no
// braces: it is the hash tag).
function word(name, value, fallback, braces) {
  if (value === undefined || value === null) value = fallback
  if (typeof value !== 'string') throw new TypeError(`fleet.${name} must be a string, got ${describe(value)}`)
  const bytes = Buffer.byteLength(value)
  if (bytes < 1 || bytes > 200 || /\s/.test(value) || (!braces && /[{}]/.test(value))) {
    throw new RangeError(
      `fleet.${name} must be 1 to 200 bytes without whitespace${braces ? '' : ' or braces'}, got ${JSON.stringify(value)}`,
    )
  }
  return value
}

/**
 * Checks the `fleet` option of a breaker whose other options are `config`;
 * undefined when there is none. Throws a TypeError or RangeError naming the
 * option (`fleet.url`, `fleet.quorum`, ...).
 */
function readFleetOptions(fleet, config) {
  if (fleet === undefined || fleet === null) return undefined
  if (typeof fleet !== 'object') throw new TypeError(`fleet must be an object with a url, got ${describe(fleet)}`)
  const url = read(fleet, 'url')
  if (typeof url !== 'string' || !/^(redis|rediss|valkey|valkeys):\/\//.test(url)) {
    throw new TypeError(
      `fleet.url must be a redis://, rediss://, valkey:// or valkeys:// URL string, got ${typeof url === 'string' ? JSON.stringify(url.replace(/\/\/[^@/]*@/, '//***@')) : describe(url)}`,
    )
  }
  const cluster = read(fleet, 'cluster') ?? false
  if (typeof cluster !== 'boolean') throw new TypeError(`fleet.cluster must be a boolean, got ${describe(cluster)}`)
  const openMs = Math.min(Math.ceil(config.resetTimeout), DAY_MS)
  const maxReset = config.policies.maxResetTimeout
  return {
    url,
    cluster,
    host: word('host', read(fleet, 'host'), os.hostname(), true),
    key: word('key', read(fleet, 'key'), config.name, false),
    quorum: integer('quorum', read(fleet, 'quorum'), 1, 1000, 2),
    voteWindow: integer('voteWindow', read(fleet, 'voteWindow'), 1, DAY_MS, 60000),
    lease: integer('lease', read(fleet, 'lease'), 1, DAY_MS, 10000),
    commandTimeout: integer('commandTimeout', read(fleet, 'commandTimeout'), 1, 60000, 250),
    refresh: integer('refresh', read(fleet, 'refresh'), 10, 3600000, 1000),
    openMs: Math.max(openMs, 1),
    maxOpenMs: Math.max(openMs, 1, Math.min(DAY_MS, Math.ceil(maxReset ?? Math.max(openMs, 60000)))),
  }
}

/**
 * Joins the breaker of `context` to the fleet: `{ op, stats, leave }`. The
 * connection is made in the background; a store that cannot be reached
 * arrives as a 'fleetDegraded' event.
 */
function joinFleet(context, options) {
  route()
  const token = native.fleetJoin(context.id, options)
  joined.set(token, new WeakRef(context))
  forgotten.register(context, token)
  let tokens = fleetTokens.get(context.array)
  if (tokens === undefined) fleetTokens.set(context.array, (tokens = new Set()))
  tokens.add(token)
  const array = context.array
  let left = false
  return {
    op(code) {
      if (!left) native.fleetOp(token, code)
    },
    stats() {
      const s = left ? null : native.fleetStats(token)
      if (s === null || s === undefined) return null
      return { host: s.host, connected: s.connected, state: s.state, version: s.version, quorum: s.quorum, held: s.held }
    },
    leave() {
      if (left) return
      left = true
      joined.delete(token)
      fleetTokens.get(array)?.delete(token)
      native.fleetLeave(token)
    },
  }
}

module.exports = { readFleetOptions, joinFleet, OP_ISOLATE, OP_RELEASE, OP_RESET, OP_DISABLE, OP_ENABLE }
