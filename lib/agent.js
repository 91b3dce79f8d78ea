'use strict'

// The process agent's way into this thread. The native side (src/agent)
// runs off the JavaScript threads: breaker-file watchers and the fleet
// agent. It reaches each thread through one threadsafe function, made on
// first use, unref'd (it never keeps the process alive) and released when
// the thread goes away. Messages are (kind, id, text); each kind has one
// handler here.

const native = require('./native.js')

const KIND_WAKE = 0

// The actor id the fleet's transitions are logged with (src/agent/fleet.rs
// FLEET_ACTOR): their events say `fleet: true`.
const FLEET_ACTOR = 0xfffff

// Fleet listener tokens by array (lib/fleet.js): a transition made through
// an array with any is told to the agent (watch.js).
const fleetTokens = new WeakMap()

const handlers = new Map()
let installed = false

function install() {
  if (installed) return
  native.agentListen(dispatch)
  installed = true
}

// A handler that throws must not stop the others: its error is thrown
// again on its own, as an uncaught exception.
function dispatch(kind, id, text) {
  const handler = handlers.get(kind)
  if (handler === undefined) return
  try {
    handler(id, text)
  } catch (error) {
    process.nextTick(() => {
      throw error
    })
  }
}

function onMessage(kind, handler) {
  install()
  handlers.set(kind, handler)
}

// Breaker-file watches: the watcher calls `onChange` whenever the file's
// GENERATION word leaves `seen` (and after each later change).
const fileWatches = new Map()
handlers.set(KIND_WAKE, (id) => fileWatches.get(id)?.())

/**
 * Starts a futex watch on the breaker file under `array`; returns its id,
 * or -1 where there is none (not Linux, or not a breaker file): poll then.
 */
function watchFile(array, seen, onChange) {
  install()
  const id = native.watchFile(array, seen | 0)
  if (id >= 0) fileWatches.set(id, onChange)
  return id
}

function unwatchFile(id) {
  fileWatches.delete(id)
  native.unwatchFile(id)
}

module.exports = { onMessage, watchFile, unwatchFile, FLEET_ACTOR, fleetTokens }
