'use strict'

// The memory a bulkhead or a rate limiter lives in: an Int32Array over a
// SharedArrayBuffer, or a region of a breaker file.
//
// A breaker file (files.js) holds a breaker's SLOT_COUNT slots; a bulkhead
// or rate limiter file is a breaker file one region longer, the region
// right after those slots. Its kind is marked in the breaker's FEATURES
// word with a descriptor no breaker writes (window kind 3, and the kind in
// bits 8..16), so a breaker built over such a file is refused ("holds data
// that is not a circuit breaker of this layout"), and a limiter built over
// a breaker's file, or another kind's, is refused too. The file's header
// format is unchanged.

const { describe } = require('./describe.js')
const { fileError, openSlotsFile } = require('./files.js')
const { CircuitBreakerKeys, SLOT_COUNT } = require('./slots.js')

const FEATURES = CircuitBreakerKeys.FEATURES

const CLAIMED = 1n << 63n
const KINDS = { bulkhead: CLAIMED | 3n | (1n << 8n), rateLimiter: CLAIMED | 3n | (2n << 8n) }

// Regions of breaker files handed out by openLimitFile: accepted although
// their buffer is not a SharedArrayBuffer.
const fileRegions = new WeakSet()

/** Throws a TypeError unless `array` is memory a limiter can live in. */
function checkArray(array, className) {
  if (!(array instanceof Int32Array) || !(array.buffer instanceof SharedArrayBuffer || fileRegions.has(array))) {
    const what =
      array instanceof Int32Array ? 'an Int32Array over an ArrayBuffer that is not shared' : describe(array)
    const error = new TypeError(
      `${className}: array must be an Int32Array over a SharedArrayBuffer (or from ${className}.fromFile), got ${what}`,
    )
    error.code = 'ERR_INVALID_ARG_TYPE'
    throw error
  }
}

/** A zeroed Int32Array of `length` slots over a new SharedArrayBuffer. */
function sharedArray(length) {
  return new Int32Array(new SharedArrayBuffer(length * Int32Array.BYTES_PER_ELEMENT))
}

/**
 * The region of `slots` slots of the `kind` file at `path` (see
 * openBreakerFile for the options `create`, `mode`, `followSymlinks`).
 */
function openLimitFile(path, options, kind, slots) {
  const file = openSlotsFile(path, options, SLOT_COUNT + slots)
  if (file.length < SLOT_COUNT + slots) {
    throw fileError(path, `holds ${file.length} slots; this ${kind} needs ${SLOT_COUNT + slots}`)
  }
  const descriptor = new BigInt64Array(file.buffer, file.byteOffset, FEATURES / 2 + 1)
  const found = Atomics.compareExchange(descriptor, FEATURES / 2, 0n, BigInt.asIntN(64, KINDS[kind]))
  if (found !== 0n && BigInt.asUintN(64, found) !== KINDS[kind]) {
    throw fileError(path, `is not a ${kind} file (a breaker's, or another kind's)`)
  }
  const region = file.subarray(SLOT_COUNT, SLOT_COUNT + slots)
  fileRegions.add(region)
  return region
}

/**
 * Slots `start` to `end` of `array`, memory a breaker accepted (a
 * SharedArrayBuffer's, or a breaker file's): for the bulkhead of a breaker
 * with `maxConcurrent`.
 */
function regionOf(array, start, end) {
  const region = array.subarray(start, end)
  if (!(region.buffer instanceof SharedArrayBuffer)) fileRegions.add(region)
  return region
}

module.exports = { checkArray, sharedArray, openLimitFile, regionOf }
