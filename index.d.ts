// Types of circuit-breaker-js, hand-written for the facade in index.js.

/**
 * Slot name -> index in the shared `Int32Array`. Frozen.
 * `Object.keys(CircuitBreakerKeys).length` is the number of elements a
 * breaker's array needs. 64-bit values take two slots (low half first, at an
 * even index; the high half is named `<NAME>_HI`) and read as one with
 * `Atomics.load(new BigInt64Array(array.buffer), index / 2)`.
 */
export declare const CircuitBreakerKeys: Readonly<
  Record<string, number> & {
    /** The state: one of `CircuitBreakerStates`. Read it with `Atomics.load`. */
    STATE: number
    /** High half of the 64-bit control word whose low half is `STATE`. */
    GENERATION: number
    /** The current run of consecutive failures. Read it with `Atomics.load`. */
    FAILURE_COUNT: number
    /** Time of the last failure, ms since the epoch (64-bit), 0 if never. */
    LAST_FAILURE_TIME: number
    /** This stripe's count of settled or rejected calls (64-bit); see the README. */
    TOTAL_REQUEST_COUNT: number
    /** This stripe's count of successes (64-bit); see the README. */
    SUCCESS_COUNT: number
    /** This stripe's time of its last success, ms since the epoch (64-bit). */
    LAST_SUCCESS_TIME: number
  }
>

/** The values of the `STATE` slot. Frozen; a real object, not a `const enum`. */
export declare const CircuitBreakerStates: Readonly<{ CLOSED: 0; OPEN: 1; HALF_OPEN: 2 }>

export type CircuitBreakerState = 'CLOSED' | 'OPEN' | 'HALF_OPEN'

/**
 * The rejection of a call refused because the circuit is open (or another
 * caller is probing it). `message` is `'Circuit is open'`, `code` is
 * `'ERR_CIRCUIT_OPEN'`. Errors made by the breaker carry a one-line `stack`.
 */
export declare class CircuitOpenError extends Error {
  constructor(message?: string)
  readonly code: 'ERR_CIRCUIT_OPEN'
}

/**
 * True for a `CircuitOpenError` from any copy of this package and any realm,
 * and for an object whose `code` is `'ERR_CIRCUIT_OPEN'` (what is left of one
 * after `postMessage`).
 */
export declare function isCircuitOpenError(value: unknown): value is CircuitOpenError

/** A zeroed `Int32Array` over a new `SharedArrayBuffer`, exactly big enough for a breaker. */
export declare function createSharedArray(): Int32Array

/**
 * The global `URL` class where the program's types declare one (`@types/node`,
 * the DOM library), so `file:` URLs are accepted; otherwise nothing.
 */
export type FileURL = typeof globalThis extends { URL: abstract new (...args: any) => infer T } ? T : never

export interface BreakerFileOptions {
  /** Create the file when it does not exist. Default true. */
  create?: boolean
  /** Permission bits of a file this call creates, exactly (the umask does not apply). Default 0o600. */
  mode?: number
}

/**
 * An `Int32Array` over the slots of the breaker file at `path`, memory-mapped
 * shared: every process and thread that builds a breaker over the same file
 * shares one breaker. Creates the file when it does not exist (race-free:
 * processes starting at once all end on one file). The mapping is released
 * when nothing refers to the array or a breaker over it any more; the file is
 * never deleted. Linux and macOS.
 *
 * @throws {TypeError} `path` is not a non-empty string or `file:` URL; a bad option type.
 * @throws {RangeError} `mode` out of range.
 * @throws {Error} with `code` `'ERR_CIRCUIT_BREAKER_FILE'` and `path`: the file is not
 *   a breaker file of this layout (wrong magic, version, layout or length); it is left
 *   untouched. Errors of `fs` (`ENOENT`, `EACCES`, `EISDIR`, ...) as they are.
 */
export declare function openBreakerFile(path: string | FileURL, options?: BreakerFileOptions): Int32Array

/** Called instead of the task while the circuit is open; its (awaited) result resolves the call. */
export type OpenFallback<T> = (error: CircuitOpenError) => T | PromiseLike<T>
/** Called with the task's error when a call fails; its (awaited) result resolves the call. */
export type FailureFallback<T> = (error: unknown) => T | PromiseLike<T>

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Integer from 1 to 2147483647. Default 5. */
  failureThreshold?: number
  /**
   * Milliseconds the circuit stays open before one caller may probe; also how
   * long a probe may run before another caller may take over. Finite, >= 0
   * (fractions round up). Default 30000.
   */
  resetTimeout?: number
  /** Result to use while the circuit is open. Default: reject with `CircuitOpenError`. */
  openFallback?: OpenFallback<any> | null
  /** Result to use when the task fails. Default: reject with the task's error. */
  failureFallback?: FailureFallback<any> | null
}

/**
 * A circuit breaker whose whole state lives in a shared `Int32Array`. Every
 * breaker built over the same array, in any worker thread, shares one failure
 * count, one state and one half-open probe. Building one over an array in use
 * joins it; it never resets it.
 *
 * @throws {TypeError} `sharedArray` is not an `Int32Array` over a
 *   `SharedArrayBuffer`; a setting is not a number; a fallback is not a function.
 * @throws {RangeError} the array is shorter than
 *   `Object.keys(CircuitBreakerKeys).length` or not 8-byte aligned
 *   (`byteOffset % 8 !== 0`), or holds something other than a breaker; a
 *   setting is out of range.
 */
export declare class CircuitBreaker {
  constructor(
    sharedArray: Int32Array,
    failureThreshold?: number,
    resetTimeout?: number,
    openFallback?: OpenFallback<any> | null,
    failureFallback?: FailureFallback<any> | null,
  )
  constructor(sharedArray: Int32Array, options: CircuitBreakerOptions)

  /** A breaker over the breaker file at `path`: `new CircuitBreaker(openBreakerFile(path, options), options)`. */
  static fromFile(path: string | FileURL, options?: CircuitBreakerOptions & BreakerFileOptions): CircuitBreaker

  /**
   * Runs `task` if the circuit lets it through. CLOSED: runs it; a rejection
   * or synchronous throw counts as a failure. OPEN: does not run it; rejects
   * with `CircuitOpenError` or resolves with `openFallback`'s result. Once
   * `resetTimeout` has passed exactly one caller, in any thread, probes.
   * A `task` that is not a function makes the promise reject with a `TypeError`.
   */
  execute<T>(task: () => T | PromiseLike<T>): Promise<T>

  /** `'HALF_OPEN'` as soon as a call would be admitted as the probe. */
  getState(): CircuitBreakerState
  /**
   * The `SharedArrayBuffer` under the array. (For a breaker over a breaker
   * file, the `ArrayBuffer` over the file's mapping.)
   */
  getSharedBuffer(): SharedArrayBuffer
  /** Forces HALF_OPEN for every thread: the next caller, anywhere, probes. */
  transitionToHalfOpen(): void
  /** Calls that settled or were rejected, in every thread sharing the array. */
  getTotalRequestCount(): number
  /** Calls that succeeded, in every thread sharing the array. */
  getSuccessCount(): number
  /** `Date.now()`-scale time of the last failure anywhere, or 0. */
  getLastFailureTime(): number
  /** `Date.now()`-scale time of the last success anywhere, or 0. */
  getLastSuccessTime(): number
  /**
   * Frees this breaker's native side now rather than when it is collected:
   * its handle, its hold on the array and, over a breaker file, its share of
   * the mapping. The shared state is left as it is. Afterwards `execute`
   * rejects and the other methods throw a `TypeError`; calls still running
   * are not counted. Idempotent. Also `[Symbol.dispose]` where it exists.
   */
  dispose(): void
  readonly failureThreshold: number
  readonly resetTimeout: number
}

export default CircuitBreaker
