'use strict'

// The numbers the facade and the native binding must agree on. Defined once
// in JavaScript; `src/lib.rs` has its own copies (ADMIT_RUN, ADMIT_REJECT,
// MARK_*) and the Rust side must match these values.
// TODO(lead): have the binding export them, and read them from there.

/** The values of the `STATE` slot. */
const CircuitBreakerStates = Object.freeze({ CLOSED: 0, OPEN: 1, HALF_OPEN: 2 })

/** `STATE_NAMES[state]` is the name `getState()` and `getStats()` give. */
const STATE_NAMES = Object.freeze(['CLOSED', 'OPEN', 'HALF_OPEN'])

// What `native.admit` answers besides a probe ticket (>= 0).
const ADMIT_RUN = -2
const ADMIT_REJECT = -1

// Isolations one buffer may hold at once (core: MAX_ISOLATIONS).
const MAX_ISOLATIONS = 65535

// Bits of the `marks` argument of the native calls.
const MARK_TIMED_OUT = 1
const MARK_FALLBACK = 2
const MARK_SLOW = 4
const MARK_FILTERED = 8

module.exports = {
  CircuitBreakerStates,
  STATE_NAMES,
  ADMIT_RUN,
  ADMIT_REJECT,
  MAX_ISOLATIONS,
  MARK_TIMED_OUT,
  MARK_FALLBACK,
  MARK_SLOW,
  MARK_FILTERED,
}
