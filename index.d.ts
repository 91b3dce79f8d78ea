// Types of circuit-breaker-js, hand-written for the facade in lib/.

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
    /** This stripe's count of settled or rejected calls (64-bit); see docs/decisions.md. */
    TOTAL_REQUEST_COUNT: number
    /** This stripe's count of successes (64-bit); see docs/decisions.md. */
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

/**
 * The rejection of a call still pending after the breaker's `timeout`. `code`
 * is `'ERR_CIRCUIT_TIMEOUT'`; `timeout` is the limit in ms. The task's
 * `AbortSignal` aborts with this error as its reason.
 */
export declare class CircuitTimeoutError extends Error {
  constructor(timeout: number)
  readonly code: 'ERR_CIRCUIT_TIMEOUT'
  readonly timeout: number
}

/** True for a `CircuitTimeoutError` from any realm (checks `code`). */
export declare function isCircuitTimeoutError(value: unknown): value is CircuitTimeoutError

/**
 * The length, in `Int32Array` elements, of the array a breaker with `options`
 * needs: `Object.keys(CircuitBreakerKeys).length` unless the options ask for a
 * failure-rate window (`failureRateThreshold`), a latency histogram or a
 * bulkhead (`maxConcurrent`).
 *
 * @throws {TypeError} / {RangeError} for options the constructor would refuse.
 */
export declare function arrayLength(options?: CircuitBreakerOptions): number

/**
 * A zeroed `Int32Array` over a new `SharedArrayBuffer`, exactly as long as a
 * breaker with `options` needs (see `arrayLength`).
 */
export declare function createSharedArray(options?: CircuitBreakerOptions): Int32Array

/** The Prometheus text exposition format (0.0.4) of breakers' `getStats()`, one sample per breaker, labelled `name`. */
export declare function prometheusText(stats: ReadonlyArray<CircuitBreakerStats>): string

/** The parts of a prom-client `Registry` that `registerPrometheus` uses. */
export interface PromClientRegistryLike {
  registerMetric(metric: any): void
  getSingleMetric(name: string): any
}

/**
 * Adds `breaker` to a prom-client `Registry`: `await registry.metrics()`
 * includes its metrics, read at every scrape. Returns a function that removes it.
 *
 * @throws {TypeError} the breaker is already registered there, or another with its `name`.
 */
export declare function registerPrometheus(registry: PromClientRegistryLike, breaker: CircuitBreaker): () => void

/** Options of `dashboard()`. */
export interface DashboardOptions {
  /**
   * The URL path the dashboard answers under: the page at `path`, the event
   * stream at `path/events`, a snapshot at `path/stats.json`. Default `'/'`.
   * Under Express's `app.use('/mount', handler)`, leave it `'/'`: Express
   * strips the mount from `req.url`.
   */
  path?: string
  /** The page's title. Default `'Circuit breakers'`. */
  title?: string
  /** State changes kept per breaker for the timeline, 1 to 1000. Default 20. */
  history?: number
  /** Pages connected to the event stream at once, 1 to 10000 (more get a 503). Default 32. */
  maxClients?: number
}

/** What the dashboard reads of a request (a `node:http` `IncomingMessage`). */
export interface DashboardRequest {
  readonly method?: string
  readonly url?: string
  on(event: 'close', listener: () => void): unknown
}

/** What the dashboard calls on a response (a `node:http` `ServerResponse`). */
export interface DashboardResponse {
  writeHead(statusCode: number, headers: { [name: string]: string | number }): unknown
  write(chunk: string): boolean
  end(chunk?: string): unknown
  destroy(): unknown
  on(event: 'close', listener: () => void): unknown
  readonly writableLength: number
}

/** A request handler for `node:http`, Express (`next` passes on what is not the dashboard's) or Fastify (raw req/res). */
export interface DashboardHandler {
  (req: DashboardRequest, res: DashboardResponse, next?: () => void): void
  /** Ends every page's event stream and stops listening to the breakers; afterwards every request is passed on (or a 404). */
  close(): void
  /** Pages connected to the event stream now. */
  readonly clients: number
}

/**
 * A live, read-only dashboard of `breakers`: one page showing each one's
 * state, failure run, window, rates, latency percentiles and the last state
 * changes with the thread that made each, updated through Server-Sent
 * Events. GET only; anything else is a 405. See docs/dashboard.md.
 *
 * @throws {TypeError} / {RangeError} for breakers that are not CircuitBreakers or bad options.
 */
export declare function dashboard(breakers: ReadonlyArray<CircuitBreaker>, options?: DashboardOptions): DashboardHandler

/** The parts of an OpenTelemetry `Meter` (`@opentelemetry/api`) that `registerOpenTelemetry` uses. */
export interface OpenTelemetryMeterLike {
  createObservableCounter(name: string, options?: any): any
  createObservableGauge(name: string, options?: any): any
  addBatchObservableCallback(callback: (result: any) => void, observables: any[]): void
}

/**
 * Reports `breaker` through an OpenTelemetry `Meter`: observable counters and
 * gauges named as the Prometheus metrics (counters without `_total`), with
 * the same `name` (and `state`) attributes, and the latency percentiles as the
 * gauge `circuit_breaker_call_duration_seconds` with a `quantile` attribute.
 * Read at every collection. Returns a function that stops reporting it.
 *
 * @throws {TypeError} not a Meter or a breaker; the breaker, or another with its `name`, is registered with the meter already.
 */
export declare function registerOpenTelemetry(meter: OpenTelemetryMeterLike, breaker: CircuitBreaker): () => void

/**
 * The global `URL` class where the program's types declare one (`@types/node`,
 * the DOM library), so `file:` URLs are accepted; otherwise nothing.
 */
export type FileURL = typeof globalThis extends { URL: abstract new (...args: any) => infer T } ? T : never

/**
 * The global `AbortSignal` where the program's types declare one
 * (`@types/node`, the DOM library); otherwise the part of it a task may use.
 */
export type TaskSignal = typeof globalThis extends { AbortSignal: { prototype: infer T } }
  ? T
  : {
      readonly aborted: boolean
      readonly reason: unknown
      addEventListener(type: 'abort', listener: () => void): void
      removeEventListener(type: 'abort', listener: () => void): void
    }

export interface BreakerFileOptions {
  /** Create the file when it does not exist. Default true. */
  create?: boolean
  /**
   * Permission bits of a file this call creates, exactly (the umask does not apply):
   * 0 to 0o777, no setuid, setgid or sticky bit. Default 0o600.
   */
  mode?: number
  /** Open the file a symbolic link at `path` points to; otherwise a link is refused. Default false. */
  followSymlinks?: boolean
}

/**
 * An `Int32Array` over the slots of the breaker file at `path`, memory-mapped
 * shared: every process and thread that builds a breaker over the same file
 * shares one breaker. Creates the file when it does not exist (race-free:
 * processes starting at once all end on one file; a file that cannot be
 * written whole is never linked into place). A process maps each file once,
 * however often it opens it; the mapping is released when nothing refers to
 * an array or a breaker over it any more; the file is never deleted. Linux
 * and macOS.
 *
 * @throws {TypeError} `path` is not a non-empty string or `file:` URL; a bad option type.
 * @throws {RangeError} `mode` out of range (0 to 0o777).
 * @throws {Error} with `code` `'ERR_CIRCUIT_BREAKER_FILE'` and `path`: the file is not
 *   a breaker file of this layout (wrong magic, version, layout or length), or `path`
 *   is a symbolic link and `followSymlinks` is not true; it is left untouched. Errors
 *   of `fs` (`ENOENT`, `EACCES`, `EISDIR`, `ENOSPC`, `EFBIG`, ...) as they are, naming
 *   `path`.
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
  /**
   * Result to use while the circuit is open. Default: reject with
   * `CircuitOpenError`. A call it answers still counts as a rejection and
   * still fires `reject` (then `fallback`).
   */
  openFallback?: OpenFallback<any> | null
  /**
   * Result to use when the task fails, timed-out calls included (given the
   * `CircuitTimeoutError`); not for an error `errorFilter` accepts. Default:
   * reject with the task's error.
   */
  failureFallback?: FailureFallback<any> | null
  /** Label of this breaker in `getStats()` and `metrics()`. Default `'default'`. */
  name?: string
  /**
   * Milliseconds after which a call still pending is rejected with a
   * `CircuitTimeoutError` and counted as a failure; the task is given an
   * `AbortSignal` that aborts then. From 1 to 2147483647. Default: none (and no timer).
   */
  timeout?: number
  /**
   * Decides which errors do not count: when it returns `true` for an error the
   * call counts as a success for the breaker (a probe that gets one closes
   * it), and the caller still gets the error, without `failureFallback`.
   */
  errorFilter?: ((error: unknown) => boolean) | null
  /**
   * Opens the circuit when at least this percentage (above 0, at most 100) of
   * the calls in the window failed (or were slow), once the window holds
   * `minimumCalls` calls, across every thread. Without an explicit
   * `failureThreshold`, consecutive failures alone then never open it.
   */
  failureRateThreshold?: number
  /**
   * Calls the window must hold before the rate can open the circuit: an
   * integer from 1 to `windowSize` (count window) or to 2147483647 (time
   * window). Default 10, or `windowSize` if smaller. Like the other window
   * options it matters only with `failureRateThreshold`: alone it changes
   * nothing, but is checked as it would be with it.
   */
  minimumCalls?: number
  /**
   * `'count'`: the last `windowSize` calls (default). `'time'`: the last
   * `windowSize` ms. Anything else is a `TypeError`.
   */
  windowType?: 'count' | 'time'
  /** Calls (1 to 100000, default 100) or ms (1 to 2147483647, required for a time window). */
  windowSize?: number
  /** Buckets of a time window, 1 to 255 and at most `windowSize`. Default 10. Unused by a count window. */
  windowBuckets?: number
  /**
   * Calls slower than this many ms (above 0, at most 2147483647) count as bad
   * for the failure rate (they still succeed) and as `slowCalls`; so do slow
   * failures and calls that time out after it.
   */
  slowCallDuration?: number
  /** Probes admitted at once, across every thread, while half-open. 1 to 65535. Default 1. */
  halfOpenMaxCalls?: number
  /** Probe successes that close the circuit; any probe failure reopens it. 1 to 65535. Default 1. */
  successThreshold?: number
  /**
   * Longest open period: after each failed probe the open period is
   * multiplied by `backoffMultiplier`, up to this; it starts over at
   * `resetTimeout` when the circuit closes. Default `resetTimeout` (no
   * backoff); below `resetTimeout` it is a `RangeError`.
   */
  maxResetTimeout?: number
  /**
   * Growth of the open period per failed probe, 1 to 1000. Default 2. Matters
   * only with a `maxResetTimeout` above `resetTimeout`; alone it changes nothing.
   */
  backoffMultiplier?: number
  /** Keep a latency histogram in the shared array (p50/p90/p99/max in `getStats()`). Default false. */
  histogram?: boolean
  /**
   * A bulkhead in the breaker's own memory (docs/bulkhead.md): at most this
   * many calls in flight, an integer from 1 to 65535, among every breaker
   * over the array (they must all give the same `maxConcurrent` and
   * `maxQueue`). A call the breaker admits then takes a permit, held until
   * its task settles (a timed-out call keeps it until its task ends); a
   * refused call rejects with a `BulkheadFullError`, counted by the
   * bulkhead, never as a failure, and goes to no fallback.
   */
  maxConcurrent?: number
  /** With `maxConcurrent`: calls that may wait for a permit, in all, 0 (the default) to 65535. */
  maxQueue?: number
  /** With `maxConcurrent`: how long a call waits in the queue, ms (1 to 2^31 - 1; default 10000). */
  queueTimeout?: number
  /** With `maxConcurrent`: the permits' lease, ms (1 to 2^31 - 1; default 60000), as `BulkheadOptions.lease`. */
  lease?: number
  /** Fleet mode: one breaker across hosts through Redis or Valkey (docs/fleet.md). */
  fleet?: FleetOptions | null
}

/** The `fleet` option (docs/fleet.md). */
export interface FleetOptions {
  /** `redis://`, `rediss://` (TLS), `valkey://` or `valkeys://`, with `user:password@` if needed. */
  url: string
  /** This host's id: the same for every process of a host. Default `os.hostname()`. */
  host?: string
  /** The fleet breaker's name in the store. Default the breaker's `name`. */
  key?: string
  /** Distinct hosts whose trip votes open the fleet, 1 to 1000. Default 2. */
  quorum?: number
  /** How long a trip vote counts, ms. Default 60000. */
  voteWindow?: number
  /** How long the fleet's probe lease lasts, ms; longer than a call can take. Default 10000. */
  lease?: number
  /** Deadline of every store command, ms. Default 250. */
  commandTimeout?: number
  /** Period of the full re-read, ms. Default 1000. */
  refresh?: number
  /** The URL names one node of a Redis Cluster. Default false. */
  cluster?: boolean
}

/** `getStats().fleet` of a fleet breaker. */
export interface FleetStats {
  host: string
  /** Whether the store answers (false between `fleetDegraded` and `fleetRecovered`). */
  connected: boolean
  /** The fleet's state as last read; 'unknown' before the store first answered. */
  state: 'open' | 'closed' | 'unknown'
  /** The fleet record's version; '' before the first. */
  version: string
  quorum: number
  /** Whether the fleet holds this host OPEN now. */
  held: boolean
}

/** Payload of the `open`, `halfOpen` and `close` events. */
export interface StateChange {
  /** The state entered. */
  state: CircuitBreakerState
  /** `Date.now()`-scale time of the transition; 0 if unknown. */
  time: number
  /** `threadId` (worker_threads) of the thread that made it. */
  threadId: number
  /** The transition's number (the GENERATION slot after it). */
  generation: number
  /** True when fleet mode made the transition on this host (absent otherwise). */
  fleet?: true
}

export interface CircuitBreakerEvents {
  open: [change: StateChange]
  halfOpen: [change: StateChange]
  close: [change: StateChange]
  success: [value: unknown, durationMs: number]
  failure: [error: unknown, durationMs: number]
  reject: [error: CircuitOpenError]
  timeout: [error: CircuitTimeoutError, durationMs: number]
  fallback: [result: unknown, error: unknown]
  /** `maxConcurrent`: a call the breaker admitted and its bulkhead refused. */
  bulkheadRejected: [error: BulkheadFullError]
  /** Fleet mode: the store cannot be used; the breaker runs host-local. */
  fleetDegraded: [info: { reason: string }]
  /** Fleet mode: the store answers again; the fleet's state is adopted. */
  fleetRecovered: []
}

/** What `getStats()` returns. Counts are over every thread sharing the array. */
export interface CircuitBreakerStats {
  name: string
  state: CircuitBreakerState
  /** `Date.now()`-scale time the current state began; 0 if unknown. */
  stateSince: number
  isolated: boolean
  disabled: boolean
  consecutiveFailures: number
  /** successes + failures + rejections. */
  requests: number
  /** Including errors the `errorFilter` accepted. */
  successes: number
  /** Including timeouts. */
  failures: number
  rejections: number
  timeouts: number
  /** Calls answered by a fallback. */
  fallbacks: number
  probes: number
  slowCalls: number
  /** Errors the `errorFilter` accepted. */
  filtered: number
  lastSuccessTime: number
  lastFailureTime: number
  /** How long the circuit stays open when it opens now (backoff included), ms. */
  openDuration: number
  window: null | { calls: number; failures: number; failureRate: number }
  /** Seconds. Percentiles are upper bounds of log-scaled buckets (4 per power of two). */
  latency: null | {
    count: number
    sum: number
    max: number
    p50: number
    p90: number
    p99: number
    buckets: Array<{ le: number; count: number }>
  }
  /** Fleet mode's view; null without the `fleet` option. */
  fleet?: FleetStats | null
  /** The bulkhead's counts (as `Bulkhead#getStats()`, without `name`); null without `maxConcurrent`. */
  bulkhead?: Omit<BulkheadStats, 'name'> | null
}

/** Returned by `isolate()`. */
export interface Isolation {
  /** Ends this isolation (idempotent); the last one closes the circuit. */
  release(): void
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
   * With a `timeout`, a task that declares a parameter is given an `AbortSignal` of its own
   * that aborts when the call times out.
   */
  execute<T>(task: (signal?: TaskSignal) => T | PromiseLike<T>): Promise<T>

  /**
   * `fn` behind this breaker: an async function that calls `fn` with the
   * arguments and `this` it is called with, through `execute` (what
   * opossum's `fire` does). It keeps `fn`'s parameter types and resolves
   * with what `fn` resolves with.
   *
   * @throws {TypeError} `fn` is not a function.
   */
  wrap<A extends unknown[], R, This = unknown>(fn: (this: This, ...args: A) => R): (this: This, ...args: A) => Promise<Awaited<R>>

  /** The array length a breaker with `options` needs (see `arrayLength`). */
  static arrayLength(options?: CircuitBreakerOptions): number

  /**
   * Holds the circuit OPEN for every thread sharing it until the handle is
   * released (every isolation taken) or `reset()` is called. A handle from
   * before a `reset()` releases nothing.
   *
   * @throws {RangeError} 65535 isolations are already held over the buffer.
   */
  isolate(): Isolation
  /** Closes the circuit for every thread: clears the failure run, the window, the backoff and every isolation. Lifetime counts are kept. */
  reset(): void
  /** Same as `reset()`. */
  close(): void
  /** Every call runs, in every thread, still counted; nothing opens the circuit until `enable()`. */
  disable(): void
  /** Undoes `disable()`. */
  enable(): void
  /** Statistics over every thread sharing the array, as a plain object. */
  getStats(): CircuitBreakerStats
  /** `getStats()`. */
  toJSON(): CircuitBreakerStats
  /** `getStats()` in the Prometheus text exposition format, labelled with `name`. */
  metrics(): string
  readonly name: string

  /**
   * Adds a listener (the breaker is a Node `EventEmitter`). State events
   * (`open`, `halfOpen`, `close`) report transitions made by any thread or
   * process sharing the array, asynchronously, once each; per-call events
   * fire in the calling thread.
   */
  on<E extends keyof CircuitBreakerEvents>(event: E, listener: (...args: CircuitBreakerEvents[E]) => void): this
  once<E extends keyof CircuitBreakerEvents>(event: E, listener: (...args: CircuitBreakerEvents[E]) => void): this
  off<E extends keyof CircuitBreakerEvents>(event: E, listener: (...args: CircuitBreakerEvents[E]) => void): this
  addListener<E extends keyof CircuitBreakerEvents>(event: E, listener: (...args: CircuitBreakerEvents[E]) => void): this
  removeListener<E extends keyof CircuitBreakerEvents>(event: E, listener: (...args: CircuitBreakerEvents[E]) => void): this
  removeAllListeners(event?: keyof CircuitBreakerEvents): this
  listenerCount(event: keyof CircuitBreakerEvents): number

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

/**
 * The rejection of a call refused by a bulkhead: every permit held and the
 * queue full (or `maxQueue` 0), or it waited `queueTimeout` ms in the queue
 * (then `queueTimeout` is set). No stack trace is captured.
 */
export declare class BulkheadFullError extends Error {
  readonly name: 'BulkheadFullError'
  readonly code: 'ERR_BULKHEAD_FULL'
  /** Set when the call waited in the queue this many ms first. */
  readonly queueTimeout?: number
}

/** True for a `BulkheadFullError` from any copy of this package, in any realm. */
export declare function isBulkheadFullError(value: unknown): value is BulkheadFullError

/**
 * The rejection of a call refused by a rate limiter: it would have had to
 * wait `retryAfter` ms, more than `maxWait`. No stack trace is captured.
 */
export declare class RateLimitedError extends Error {
  readonly name: 'RateLimitedError'
  readonly code: 'ERR_RATE_LIMITED'
  /** How long the call would have had to wait, ms. */
  readonly retryAfter: number
}

/** True for a `RateLimitedError` from any copy of this package, in any realm. */
export declare function isRateLimitedError(value: unknown): value is RateLimitedError

export interface BulkheadOptions {
  /** Calls in flight at once among every bulkhead over the array, in every thread and process: an integer from 1 to 65535. */
  maxConcurrent: number
  /** Calls that may wait for a permit, in all: an integer from 0 (no queue, the default) to 65535. */
  maxQueue?: number
  /** How long a call waits in the queue before it is refused, ms (1 to 2^31 - 1; default 10000). */
  queueTimeout?: number
  /**
   * How long a permit (or queue place) may be held before another caller
   * that needs one may take it back, ms (1 to 2^31 - 1; default 60000):
   * counted from the first time a caller finds it held, so never sooner
   * than this after it was taken. Set it above your longest call.
   */
  lease?: number
  /** Label of the `metrics()` series (default `'default'`). */
  name?: string
}

export interface BulkheadStats {
  name: string
  maxConcurrent: number
  maxQueue: number
  /** Permits held now (including by holders that died, until reclaimed). */
  inUse: number
  /** Calls waiting for a permit now. */
  queued: number
  /** Calls refused: full, or waited `queueTimeout`. */
  rejected: number
  /** Of `rejected`, calls that waited `queueTimeout` first. */
  queueTimeouts: number
  /** Permits taken back from holders past their lease. */
  reclaimed: number
  /** Releases that found their permit reclaimed (their call outlived the lease). */
  lostReleases: number
}

/** A permit taken by `tryAcquire()`. */
export interface BulkheadPermit {
  /**
   * Gives the permit back (once; later calls do nothing). Also
   * `[Symbol.dispose]` where the runtime has it (not typed here, so the
   * types compile without the esnext lib).
   */
  release(): void
}

export interface BulkheadEvents {
  /** An `execute` refused: full, or waited `queueTimeout` (then `error.queueTimeout` is set). Not emitted by `tryAcquire()`. */
  rejected: [error: BulkheadFullError]
}

/**
 * At most `maxConcurrent` calls in flight among every bulkhead over the same
 * array, in every thread (and, over a file, every process).
 */
export declare class Bulkhead {
  /**
   * @param array an `Int32Array` over a `SharedArrayBuffer` of at least
   *   `Bulkhead.arrayLength(options)` elements, zeroed or already a bulkhead
   *   of the same `maxConcurrent` and `maxQueue`.
   * @throws TypeError for an array or option of the wrong kind; RangeError
   *   for an option out of range or an array too short or holding something else.
   */
  constructor(array: Int32Array, options: BulkheadOptions)
  /** Length (in `Int32Array` elements) of the array a bulkhead with these options needs. */
  static arrayLength(options: BulkheadOptions): number
  /** A zeroed `Int32Array` over a new `SharedArrayBuffer`, as long as `arrayLength(options)`. */
  static createSharedArray(options: BulkheadOptions): Int32Array
  /** A bulkhead over the bulkhead file at `path`, shared by every process that opens it. */
  static fromFile(path: string | FileURL, options: BulkheadOptions & BreakerFileOptions): Bulkhead
  /**
   * Runs `task` once it holds a permit and releases the permit when the task
   * settles. Rejects with a `BulkheadFullError` when full, without calling the task.
   */
  execute<T>(task: () => T | PromiseLike<T>): Promise<T>
  /** A permit if one is free now (or reclaimable), else null (counted as a rejection). */
  tryAcquire(): BulkheadPermit | null
  getStats(): BulkheadStats
  /** The stats in the Prometheus text format. */
  metrics(): string
  readonly name: string
  /** Listeners of the bulkhead's events: `'rejected'` in the thread that was refused. */
  on<E extends keyof BulkheadEvents>(event: E, listener: (...args: BulkheadEvents[E]) => void): this
  once<E extends keyof BulkheadEvents>(event: E, listener: (...args: BulkheadEvents[E]) => void): this
  off<E extends keyof BulkheadEvents>(event: E, listener: (...args: BulkheadEvents[E]) => void): this
  addListener<E extends keyof BulkheadEvents>(event: E, listener: (...args: BulkheadEvents[E]) => void): this
  removeListener<E extends keyof BulkheadEvents>(event: E, listener: (...args: BulkheadEvents[E]) => void): this
  removeAllListeners(event?: keyof BulkheadEvents): this
  listenerCount(event: keyof BulkheadEvents): number
}

/** Prometheus text for several bulkheads, one series each, labelled with its name. */
export declare function bulkheadMetrics(bulkheads: ReadonlyArray<Bulkhead>): string

export interface RateLimiterOptions {
  /** Calls per `interval`: an integer from 1 to 2^32 - 1. */
  limit: number
  /** ms: an integer from 1 to 2^31 - 1. */
  interval: number
  /**
   * Calls that may go at once (default 1: calls evenly spaced, at most
   * `limit` in any span of `interval`); any span of `interval` then holds
   * at most `limit + burst - 1`.
   */
  burst?: number
  /** How long `execute` may wait for its turn, ms (0, the default, to 2^31 - 1). */
  maxWait?: number
  name?: string
}

export interface RateLimiterStats {
  name: string
  limit: number
  interval: number
  burst: number
  /** Calls admitted, in every thread and process. */
  admitted: number
  /** Of `admitted`, calls that waited first. */
  delayed: number
  /** Calls refused. */
  rejected: number
}

/**
 * At most `limit` calls per `interval` ms among every rate limiter over the
 * same array, in every thread (and, over a file, every process): the generic
 * cell rate algorithm on the host's monotonic clock.
 */
export declare class RateLimiter {
  /**
   * @param array an `Int32Array` over a `SharedArrayBuffer` of at least
   *   `RateLimiter.arrayLength()` elements, zeroed or already a rate limiter
   *   of the same `limit`, `interval` and `burst`.
   */
  constructor(array: Int32Array, options: RateLimiterOptions)
  static arrayLength(): number
  static createSharedArray(): Int32Array
  static fromFile(path: string | FileURL, options: RateLimiterOptions & BreakerFileOptions): RateLimiter
  /** True (counted against the limit) if a call may go now; false (counted as a rejection) otherwise. */
  tryAcquire(): boolean
  /**
   * Runs `task` when its turn comes, at once or after up to `maxWait` ms;
   * rejects with a `RateLimitedError` without calling it if it would wait longer.
   */
  execute<T>(task: () => T | PromiseLike<T>): Promise<T>
  getStats(): RateLimiterStats
  readonly name: string
}

export default CircuitBreaker
