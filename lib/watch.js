'use strict'

// State-change events in every thread, and the one way a transition made
// here reaches them (`afterTransition`).

const { performance } = require('node:perf_hooks')
const { LOG_ENTRIES, STATE_NAMES } = require('./constants.js')
const { GENERATION } = require('./slots.js')
const native = require('./native.js')
const { watchFile, unwatchFile, FLEET_ACTOR, fleetTokens } = require('./agent.js')

const EVENT_OF_STATE = ['close', 'open', 'halfOpen']

// ---------------------------------------------------------------------------
// State-change events in every thread. Each thread keeps one watch per
// buffer with listeners: it waits on the GENERATION slot with
// `Atomics.waitAsync` (the thread that makes a transition notifies it). A
// breaker file's mapping cannot be waited on that way, and other processes
// change it: on Linux the agent's watcher sleeps in a shared futex on its
// GENERATION word and calls back (every transition on a file ends with a
// futex wake); elsewhere the watch polls it every POLL_MS. On a change it
// reads the transitions it missed from the shared transition log.
// ---------------------------------------------------------------------------
const POLL_MS = 20
const watches = new Map()

/**
 * Every native call that can make a transition hands its answer here: a
 * `code` other than 0 (it made one) wakes the watches of `array` in every
 * thread, and over a breaker file in every process (a futex wake).
 */
function afterTransition(array, code) {
  if (code === 0) return
  wake(array)
  // A fleet breaker's agent hears of it (a local trip is a vote); any one
  // token of the array names its member.
  const tokens = fleetTokens.get(array)
  if (tokens !== undefined && tokens.size > 0) native.fleetNoticed(tokens.values().next().value)
}

// Watches by buffer, then by the array's byteOffset: two breakers may live
// in one buffer at different offsets, each with its own GENERATION and log.
function entryOf(array) {
  return watches.get(array.buffer)?.get(array.byteOffset)
}

function watch(breaker, array) {
  const existing = entryOf(array)
  if (existing !== undefined) {
    // An entry whose last listener left keeps its one waiter; it starts
    // over from now for its new listeners.
    if (existing.breakers.size === 0) existing.seen = Atomics.load(array, GENERATION) >>> 0
    existing.breakers.add(breaker)
    return
  }
  const entry = {
    array,
    breakers: new Set([breaker]),
    seen: Atomics.load(array, GENERATION) >>> 0,
    shared: array.buffer instanceof SharedArrayBuffer,
    stall: undefined, // the log entry deliver() is waiting for, since when
    fileWatch: -1, // the agent's futex watch of a breaker file, if any
  }
  let byOffset = watches.get(array.buffer)
  if (byOffset === undefined) watches.set(array.buffer, (byOffset = new Map()))
  byOffset.set(array.byteOffset, entry)
  if (!entry.shared) {
    entry.fileWatch = watchFile(array, entry.seen, () => wait(entry))
    // A transition between reading `seen` and the watch's start is heard
    // by this one look, a tick later.
    if (entry.fileWatch >= 0) return void setImmediate(wait, entry)
  }
  // Never delivers from inside on(): a transition made since `seen` is
  // heard a tick later, once the caller has attached all its listeners.
  park(entry, entry.seen)
}

// The entry stays, with its waiter, until that waiter wakes and finds nobody
// listening: adding and removing listeners never piles up waiters.
function unwatch(breaker, array) {
  const entry = entryOf(array)
  if (entry === undefined) return
  entry.breakers.delete(breaker)
  if (entry.breakers.size === 0) {
    if (entry.fileWatch >= 0) setImmediate(wait, entry)
    else wake(entry.array)
  }
}

// Wakes every waiter on the GENERATION slot of `array`: in this process
// for a SharedArrayBuffer, in every process for a breaker file.
function wake(array) {
  if (array.buffer instanceof SharedArrayBuffer) Atomics.notify(array, GENERATION)
  else native.wakeFile(array)
}

function wait(entry) {
  if (entry.breakers.size === 0) {
    if (entry.fileWatch >= 0) unwatchFile(entry.fileWatch)
    entry.fileWatch = -1
    const byOffset = watches.get(entry.array.buffer)
    if (byOffset?.get(entry.array.byteOffset) === entry) byOffset.delete(entry.array.byteOffset)
    if (byOffset?.size === 0) watches.delete(entry.array.buffer)
    return
  }
  const generation = Atomics.load(entry.array, GENERATION)
  if (generation >>> 0 !== entry.seen && !deliver(entry, generation >>> 0)) {
    // A log entry not written yet: its transition is a moment old. Retried
    // at once a few times, then every millisecond (its writer may have been
    // preempted), until deliver() gives up on it.
    if (entry.stall.tries++ < 16) setImmediate(wait, entry)
    else setTimeout(wait, 1, entry).unref()
    return
  }
  park(entry, generation)
}

// Comes back to wait() once GENERATION is no longer `generation`.
function park(entry, generation) {
  if (!entry.shared) {
    // With a futex watch the agent calls wait() on the next change.
    if (entry.fileWatch < 0) setTimeout(wait, POLL_MS, entry).unref()
    return
  }
  const result = Atomics.waitAsync(entry.array, GENERATION, generation | 0)
  if (result.async) result.value.then(() => wait(entry))
  else setImmediate(wait, entry)
}

// The watch reads and emits through what a breaker registers with `watch`:
// an object with `readTransition(generation)` (what the transition log
// answers: `{ status: 'ready', state, time, threadId, pid }`, `'pending'` or
// `'gone'`; undefined once the breaker is disposed) and
// `emitState(event, payload)`: in `watches`, `entry.breakers` holds those.

// How long a transition's log entry may stay unwritten before it is given up.
const LOG_WRITE_GRACE_MS = 1000

// Emits the transitions after `entry.seen` up to `generation`. Returns false
// if it stopped at one whose log entry is not written yet (its generation
// is already in the control word, its entry a moment later): the caller
// comes back for it.
function deliver(entry, generation) {
  const missed = (generation - entry.seen) >>> 0
  const first = missed > LOG_ENTRIES ? (generation - LOG_ENTRIES + 1) >>> 0 : (entry.seen + 1) >>> 0
  for (let g = first; ; g = (g + 1) >>> 0) {
    // Any breaker of the set reads the log; a disposed one answers undefined.
    let logged
    for (const breaker of entry.breakers) {
      logged = breaker.readTransition(g)
      if (logged !== undefined) break
    }
    if (logged?.status === 'pending') {
      if (entry.stall?.generation !== g) entry.stall = { generation: g, since: performance.now(), tries: 0 }
      if (performance.now() - entry.stall.since < LOG_WRITE_GRACE_MS) {
        entry.seen = (g - 1) >>> 0
        return false
      }
      // Its writer never finished (a process killed mid-write, over a
      // breaker file): the transition is lost; later ones are still heard.
    } else if (logged?.status === 'ready') {
      const event = {
        state: STATE_NAMES[logged.state],
        time: logged.time,
        threadId: logged.threadId,
        pid: logged.pid,
        generation: g,
      }
      if (logged.threadId === FLEET_ACTOR) event.fleet = true
      for (const breaker of entry.breakers) breaker.emitState(EVENT_OF_STATE[logged.state], event)
    }
    // Else gone (overwritten: more than LOG_ENTRIES transitions since), or
    // every breaker of the set is disposed.
    if (g === generation) break
  }
  entry.seen = generation
  return true
}

module.exports = { watch, unwatch, afterTransition }
