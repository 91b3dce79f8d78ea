'use strict'

// The slots of the shared `Int32Array`, as the binding lays them out. The
// layout is defined once, in Rust; this file names the slots the facade
// reads itself.

const native = require('./native.js')
const { CircuitBreakerStates } = require('./constants.js')

/** Slot name -> index in the shared `Int32Array`. Defined once, in Rust. */
const CircuitBreakerKeys = Object.freeze(
  Object.fromEntries(native.layout().map((name, index) => [name, index])),
)

const SLOT_COUNT = Object.keys(CircuitBreakerKeys).length
const STATE = CircuitBreakerKeys.STATE
const FAILURE_COUNT = CircuitBreakerKeys.FAILURE_COUNT
const GENERATION = CircuitBreakerKeys.GENERATION

// What a disposed breaker's `execute` reads: never CLOSED, so every call
// takes the path that reports the disposal.
const DISPOSED = new Int32Array(new SharedArrayBuffer(8 * Int32Array.BYTES_PER_ELEMENT))
Atomics.store(DISPOSED, STATE, CircuitBreakerStates.OPEN)

module.exports = {
  CircuitBreakerKeys,
  SLOT_COUNT,
  STATE,
  FAILURE_COUNT,
  GENERATION,
  DISPOSED,
}
