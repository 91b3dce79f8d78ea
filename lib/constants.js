'use strict'

// The numbers the facade and the native binding must agree on, defined once,
// in Rust (src/constants.rs), and read from the binding when this loads.

const native = require('./native.js')

const {
  STATE_NAMES: stateNames,
  ADMIT_RUN,
  ADMIT_REJECT,
  ADMIT_TRANSITION,
  MARK_TIMED_OUT,
  MARK_FALLBACK,
  MARK_SLOW,
  MARK_FILTERED,
  MAX_ISOLATIONS,
  LOG_ENTRIES,
} = native.constants()

/** `STATE_NAMES[state]` is the name `getState()` and `getStats()` give. */
const STATE_NAMES = Object.freeze(stateNames)

/** The values of the `STATE` slot. */
const CircuitBreakerStates = Object.freeze(Object.fromEntries(STATE_NAMES.map((name, state) => [name, state])))

module.exports = {
  CircuitBreakerStates,
  STATE_NAMES,
  // What `native.admit` answers: a probe ticket (>= 0), ADMIT_RUN or
  // ADMIT_REJECT, plus ADMIT_TRANSITION if the call made a transition.
  ADMIT_RUN,
  ADMIT_REJECT,
  ADMIT_TRANSITION,
  // Isolations one buffer may hold at once.
  MAX_ISOLATIONS,
  // Bits of the `marks` argument of the native calls.
  MARK_TIMED_OUT,
  MARK_FALLBACK,
  MARK_SLOW,
  MARK_FILTERED,
  // Transitions the shared log keeps: the last LOG_ENTRIES.
  LOG_ENTRIES,
}
