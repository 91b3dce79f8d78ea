'use strict'

// The JavaScript face of the breaker. Hand-written; `binding.js` is generated
// by `napi build` and loads the native addon. Every state transition is
// decided in Rust; this file reads the STATE slot to take the CLOSED path
// without a native call before the task runs, converts arguments and shapes
// promises.

const fs = require('node:fs')
const { constants: osConstants } = require('node:os')
const pathModule = require('node:path')
const util = require('node:util')
const { fileURLToPath } = require('node:url')
const { EventEmitter } = require('node:events')
const { performance } = require('node:perf_hooks')
const { threadId } = require('node:worker_threads')
const native = require('./native.js')
const { prometheusText, registerPrometheus } = require('./metrics.js')

/** Slot name -> index in the shared `Int32Array`. Defined once, in Rust. */
const CircuitBreakerKeys = Object.freeze(
  Object.fromEntries(native.layout().map((name, index) => [name, index])),
)

/** The values of the `STATE` slot. */
const CircuitBreakerStates = Object.freeze({ CLOSED: 0, OPEN: 1, HALF_OPEN: 2 })

const STATE_NAMES = Object.freeze(['CLOSED', 'OPEN', 'HALF_OPEN'])
const SLOT_COUNT = Object.keys(CircuitBreakerKeys).length
const STATE = CircuitBreakerKeys.STATE
const FAILURE_COUNT = CircuitBreakerKeys.FAILURE_COUNT
const CLOSED = CircuitBreakerStates.CLOSED
// What `native.admit` answers besides a probe ticket (>= 0).
const ADMIT_RUN = -2
const ADMIT_REJECT = -1

const DEFAULT_FAILURE_THRESHOLD = 5
const DEFAULT_RESET_TIMEOUT = 30000
// A thread publishes its successes to the shared counters at the end of the
// current tick, or as soon as this many are waiting, whichever comes first.
const SUCCESS_BATCH = 256

// The publishers of this thread's breakers that have successes waiting, and
// the one end-of-tick callback that runs them all. Reading counters runs
// them at once, so a thread always reads all of its own calls.
let waiting = []
function publishWaiting() {
  const publishers = waiting
  waiting = []
  for (let i = 0; i < publishers.length; i++) publishers[i]()
}
// A thread that exits (`process.exit()` included) publishes first: that
// matters for breaker files, which outlive the process.
process.on('exit', publishWaiting)

const OPEN_BRAND = Symbol.for('circuit-breaker-js.CircuitOpenError')

/**
 * The rejection of a call refused because the circuit is open. Its `code` is
 * `'ERR_CIRCUIT_OPEN'`. It carries no stack trace: an open circuit is the
 * expected, fast path, and walking the stack would be most of its cost.
 */
class CircuitOpenError extends Error {
  constructor(message = 'Circuit is open') {
    super(message)
  }
}
Object.defineProperties(CircuitOpenError.prototype, {
  name: { value: 'CircuitOpenError', writable: true, configurable: true },
  code: { value: 'ERR_CIRCUIT_OPEN', writable: true, configurable: true },
  [OPEN_BRAND]: { value: true },
})

/**
 * True for a `CircuitOpenError` from any copy of this package, in any realm
 * (where `instanceof` fails), and for one whose `code` survived a trip
 * through `postMessage`.
 */
function isCircuitOpenError(value) {
  if (value === null || typeof value !== 'object') return false
  try {
    return value[OPEN_BRAND] === true || value.code === 'ERR_CIRCUIT_OPEN'
  } catch {
    return false // a proxy or getter that throws is not one of ours
  }
}

// The breaker's own rejections are made without running the Error
// constructor: in V8 even a stack-less `new Error()` costs ~0.7 µs on the
// machine this was measured on, which would be most of an OPEN rejection.
// Such an error is still `instanceof CircuitOpenError` and `Error`, with
// `name`, `message`, `code`, and a one-line `stack` from the prototype.
Object.defineProperty(CircuitOpenError.prototype, 'stack', {
  configurable: true,
  get() {
    return `${this.name}: ${this.message}`
  },
  set(value) {
    Object.defineProperty(this, 'stack', { value, writable: true, configurable: true })
  },
})

function circuitOpenError() {
  const error = Object.create(CircuitOpenError.prototype)
  error.message = 'Circuit is open'
  return error
}

// What an OPEN call without fallback returns is `Promise.resolve()` of this
// thenable: the promise rejects in a later microtask, when the caller's
// handler is attached, so neither a `throw` (~0.8 µs in V8, for the message
// location) nor Node's unhandled-rejection bookkeeping (~1 µs) is paid. A
// caller that never handles it still gets an unhandled rejection.
const OPEN_REJECTION = Object.freeze({
  then(resolve, reject) {
    reject(circuitOpenError())
  },
})

/**
 * An `Int32Array` over the slots of the breaker file at `path`, mapped
 * shared: every process (and thread) that opens the same file and builds a
 * breaker over the array shares one breaker. Creates the file (mode 0o600
 * unless `mode` says otherwise) when it does not exist and `create` is not
 * false; several processes may race to create it, and all end up on the
 * same file. A file that is not exactly a breaker file of this layout is
 * refused and left untouched, and so is a symbolic link unless
 * `followSymlinks` is true.
 */
function openBreakerFile(path, options) {
  const where = filePath(path)
  // A new file is as long as breakers with these options need.
  const slots = typeof options === 'object' && options !== null ? arrayLength(options) : SLOT_COUNT
  const create = readOption(options, 'create') ?? true
  const mode = readOption(options, 'mode') ?? 0o600
  const followSymlinks = readOption(options, 'followSymlinks') ?? false
  if (typeof create !== 'boolean') {
    throw new TypeError(`options.create must be a boolean, got ${describe(create)}`)
  }
  // Permission bits only: a setuid, setgid or sticky bit on a breaker file is never wanted.
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    const got = Number.isInteger(mode) && mode > 0o777 ? `0o${mode.toString(8)}` : mode
    throw typeof mode === 'number'
      ? new RangeError(`options.mode must be an integer from 0 to 0o777 (permission bits only), got ${got}`)
      : new TypeError(`options.mode must be a number, got ${describe(mode)}`)
  }
  if (typeof followSymlinks !== 'boolean') {
    throw new TypeError(`options.followSymlinks must be a boolean, got ${describe(followSymlinks)}`)
  }
  const flags = fs.constants.O_RDWR | (followSymlinks ? 0 : fs.constants.O_NOFOLLOW ?? 0)
  let fd
  // Open, or create; a file that another process linked into place and
  // removed again in between sends us round once more.
  for (let attempt = 1; fd === undefined; attempt++) {
    try {
      fd = openFile(where, flags)
    } catch (error) {
      if (error.code !== 'ENOENT' || !create) throw error
      fd = createBreakerFile(where, flags, mode, slots)
      if (fd === undefined && attempt === 3) throw error
    }
  }
  try {
    return native.mapFile(fd)
  } catch (error) {
    if (error?.code !== 'ERR_CIRCUIT_BREAKER_FILE') throw error
    throw fileError(where, error.message)
  } finally {
    fs.closeSync(fd)
  }
}

function filePath(path) {
  if (typeof path === 'string' && path !== '' && !path.includes('\0')) return path
  if (path instanceof URL) return fileURLToPath(path)
  throw new TypeError(`path must be a non-empty string or a file: URL, got ${describe(path)}`)
}

// Opens the existing breaker file at `path` read-write. Without O_NOFOLLOW
// in `flags` a symbolic link is followed; with it, one is refused by name
// (the system's own error, ELOOP, would say "too many symbolic links"; the
// BSDs say EMLINK).
function openFile(path, flags) {
  try {
    return fs.openSync(path, flags)
  } catch (error) {
    if ((error.code === 'ELOOP' || error.code === 'EMLINK') && (flags & fs.constants.O_NOFOLLOW) !== 0 && isSymlink(path)) {
      throw fileError(path, 'is a symbolic link; pass followSymlinks: true to open the file it points to')
    }
    throw error
  }
}

function isSymlink(path) {
  try {
    return fs.lstatSync(path).isSymbolicLink()
  } catch {
    return false
  }
}

// An Error that completes "the file `path` ...", with the code of refused files.
function fileError(path, what) {
  const error = new Error(`circuit-breaker-js: the file ${path} ${what}`)
  error.code = 'ERR_CIRCUIT_BREAKER_FILE'
  error.path = path
  return error
}

// Writes the whole file under a short temporary name in the same folder
// (a name of up to 255 bytes stays legal) and links it into place, so nobody
// ever opens a half-written breaker file: its blocks are reserved first,
// every byte is written and synced before the link, and a file that could
// not be completed is removed, never linked. Whoever links first wins, and
// everyone opens the winner's file; undefined if it was removed again at
// once. Errors name `path`, not the temporary file.
function createBreakerFile(path, flags, mode, slots) {
  const temporary = pathModule.join(
    pathModule.dirname(path),
    `.cbjs-${process.pid}-${threadId}-${Math.random().toString(36).slice(2, 10)}.new`,
  )
  let fd
  try {
    fd = fs.openSync(temporary, 'wx+', mode)
  } catch (error) {
    throw creationError(error, path)
  }
  try {
    fs.fchmodSync(fd, mode) // exactly `mode`, whatever the umask
    const image = native.fileImage(slots)
    const refused = native.reserveFile(fd, image.length)
    if (refused !== 0) throw systemError(-refused, 'fallocate', path)
    // A write may store fewer bytes than asked (a file size limit, a full
    // disk): go on from there; the next write then fails with the reason.
    for (let written = 0; written < image.length; ) {
      const wrote = fs.writeSync(fd, image, written, image.length - written, written)
      if (wrote <= 0) throw systemError(-osConstants.errno.EIO, 'write', path)
      written += wrote
    }
    fs.fsyncSync(fd)
    fs.linkSync(temporary, path)
  } catch (error) {
    if (error.code !== 'EEXIST' || error.syscall !== 'link') throw creationError(error, path)
  } finally {
    fs.closeSync(fd)
    try {
      fs.unlinkSync(temporary)
    } catch {
      // Leaves a stray temporary file, not a leaked descriptor.
    }
  }
  // Opened by its name, which is what the process's list of mappings then
  // shows (not a deleted temporary file).
  try {
    return openFile(path, flags)
  } catch (error) {
    if (error.code === 'ENOENT') return undefined
    throw error
  }
}

// A system error met while creating the breaker file at `path`, restated
// about `path`: the temporary file is ours, not the caller's.
function creationError(error, path) {
  if (typeof error?.errno !== 'number' || typeof error.syscall !== 'string' || error.path === path) return error
  return systemError(error.errno, error.syscall, path)
}

// An error in the words of `fs` ("EFBIG: file too large, write '...'") for
// `errno` (negative, as `fs` errors carry it) met by `syscall` on `path`.
function systemError(errno, syscall, path) {
  const [code, description] = util.getSystemErrorMap().get(errno) ?? ['UNKNOWN', 'unknown error']
  const error = new Error(`${code}: ${description}, ${syscall} '${path}'`)
  return Object.assign(error, { errno, code, syscall, path })
}

// What a disposed breaker's `execute` reads: never CLOSED, so every call
// takes the path that reports the disposal.
const DISPOSED = new Int32Array(new SharedArrayBuffer(8 * Int32Array.BYTES_PER_ELEMENT))
Atomics.store(DISPOSED, STATE, CircuitBreakerStates.OPEN)

function disposedError() {
  return new TypeError('this circuit breaker was disposed')
}

function describe(value) {
  if (value === null) return 'null'
  switch (typeof value) {
    case 'undefined':
      return 'undefined'
    case 'string':
      return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`
    case 'function':
      return 'a function'
    case 'object':
      return 'an object'
    case 'symbol':
      return 'a symbol'
    default:
      return `${typeof value} ${String(value)}`
  }
}

function requireNumber(name, value) {
  if (typeof value !== 'number') {
    throw new TypeError(`${name} must be a number, got ${describe(value)}`)
  }
  return value
}

// Reads one key of an options object (undefined when there is none); a
// getter or proxy trap that throws becomes a TypeError naming the option,
// with the original as its cause.
function readOption(options, name) {
  if (options === undefined || options === null) return undefined
  try {
    return options[name]
  } catch (cause) {
    throw new TypeError(`options.${name} could not be read: ${messageOf(cause)}`, { cause })
  }
}

function messageOf(error) {
  try {
    return String(error instanceof Error ? error.message : error)
  } catch {
    return 'its getter threw'
  }
}

function optionalFunction(name, value) {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'function') {
    throw new TypeError(`${name} must be a function, got ${describe(value)}`)
  }
  return value
}

/**
 * The rejection of a call that ran longer than the breaker's `timeout`. Its
 * `code` is `'ERR_CIRCUIT_TIMEOUT'`; the task's `AbortSignal` aborts with it.
 */
class CircuitTimeoutError extends Error {
  constructor(timeout) {
    super(`Timed out after ${timeout} ms`)
    this.timeout = timeout
  }
}
Object.defineProperties(CircuitTimeoutError.prototype, {
  name: { value: 'CircuitTimeoutError', writable: true, configurable: true },
  code: { value: 'ERR_CIRCUIT_TIMEOUT', writable: true, configurable: true },
})

/** True for a `CircuitTimeoutError`, in any realm (it checks `code`). */
function isCircuitTimeoutError(value) {
  if (value === null || typeof value !== 'object') return false
  try {
    return value.code === 'ERR_CIRCUIT_TIMEOUT'
  } catch {
    return false
  }
}

// Bits of the `marks` argument of the native calls.
const MARK_TIMED_OUT = 1
const MARK_FALLBACK = 2
const MARK_SLOW = 4
const MARK_FILTERED = 8

const GENERATION = CircuitBreakerKeys.GENERATION
// Isolations one buffer may hold at once (core: MAX_ISOLATIONS).
const MAX_ISOLATIONS = 65535
// What the fast path of a breaker that needs the general path reads: never
// CLOSED, so every call goes through `#admit`.
const GENERAL = new Int32Array(new SharedArrayBuffer(8 * Int32Array.BYTES_PER_ELEMENT))
Atomics.store(GENERAL, STATE, CircuitBreakerStates.OPEN)

const STATE_EVENTS = ['open', 'halfOpen', 'close']
const CALL_EVENTS = ['success', 'failure', 'reject', 'timeout', 'fallback']
const EVENT_OF_STATE = ['close', 'open', 'halfOpen']

function optionalNumber(name, value) {
  return value === undefined || value === null ? undefined : requireNumber(name, value)
}

function optionalBoolean(name, value) {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'boolean') {
    throw new TypeError(`${name} must be a boolean, got ${describe(value)}`)
  }
  return value
}

function positiveMs(name, value) {
  if (value === undefined) return undefined
  if (!(value > 0 && value <= 2147483647)) {
    throw new RangeError(`${name} must be a number of milliseconds above 0 and at most 2147483647, got ${value}`)
  }
  return value
}

// Reads and type-checks every option; ranges are checked by the native side.
function readOptions(failureThreshold, resetTimeout, openFallback, failureFallback) {
  let options
  if (typeof failureThreshold === 'object' && failureThreshold !== null) {
    options = failureThreshold
    failureThreshold = readOption(options, 'failureThreshold')
    resetTimeout = readOption(options, 'resetTimeout')
    openFallback = readOption(options, 'openFallback')
    failureFallback = readOption(options, 'failureFallback')
  }
  const read = (name) => readOption(options, name)
  const explicitThreshold = failureThreshold !== undefined && failureThreshold !== null
  const config = {
    failureThreshold: requireNumber('failureThreshold', failureThreshold ?? DEFAULT_FAILURE_THRESHOLD),
    resetTimeout: requireNumber('resetTimeout', resetTimeout ?? DEFAULT_RESET_TIMEOUT),
    openFallback: optionalFunction('openFallback', openFallback),
    failureFallback: optionalFunction('failureFallback', failureFallback),
    name: read('name') ?? 'default',
    timeout: positiveMs('timeout', optionalNumber('timeout', read('timeout'))),
    errorFilter: optionalFunction('errorFilter', read('errorFilter')),
    slowCallDuration: positiveMs('slowCallDuration', optionalNumber('slowCallDuration', read('slowCallDuration'))),
    policies: {
      halfOpenMaxCalls: optionalNumber('halfOpenMaxCalls', read('halfOpenMaxCalls')),
      successThreshold: optionalNumber('successThreshold', read('successThreshold')),
      maxResetTimeout: optionalNumber('maxResetTimeout', read('maxResetTimeout')),
      backoffMultiplier: optionalNumber('backoffMultiplier', read('backoffMultiplier')),
      failureRateThreshold: optionalNumber('failureRateThreshold', read('failureRateThreshold')),
      minimumCalls: optionalNumber('minimumCalls', read('minimumCalls')),
      windowSize: optionalNumber('windowSize', read('windowSize')),
      windowIsTime: undefined,
      windowBuckets: optionalNumber('windowBuckets', read('windowBuckets')),
      consecutiveToo: undefined,
      histogram: optionalBoolean('histogram', read('histogram')),
    },
  }
  if (typeof config.name !== 'string') {
    throw new TypeError(`name must be a string, got ${describe(config.name)}`)
  }
  const windowType = read('windowType') ?? 'count'
  if (windowType !== 'count' && windowType !== 'time') {
    throw new TypeError(`windowType must be 'count' or 'time', got ${describe(windowType)}`)
  }
  config.policies.windowIsTime = windowType === 'time'
  config.policies.consecutiveToo = explicitThreshold && config.policies.failureRateThreshold !== undefined
  return config
}

/**
 * The length (in `Int32Array` elements) of the array a breaker with these
 * options needs: `Object.keys(CircuitBreakerKeys).length` unless the options
 * ask for a failure-rate window or a latency histogram. Throws like the
 * constructor for options it would refuse.
 */
function arrayLength(options) {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError(`options must be an object, got ${describe(options)}`)
  }
  const config = readOptions(options ?? {})
  return native.arrayLength(config.failureThreshold, config.resetTimeout, config.policies)
}

/**
 * A zeroed `Int32Array` over a new `SharedArrayBuffer`, exactly as long as a
 * breaker with `options` needs (see `arrayLength`).
 */
function createSharedArray(options) {
  const length = options === undefined ? SLOT_COUNT : arrayLength(options)
  return new Int32Array(new SharedArrayBuffer(length * Int32Array.BYTES_PER_ELEMENT))
}

// ---------------------------------------------------------------------------
// State-change events in every thread. Each thread keeps one watch per
// buffer with listeners: it waits on the GENERATION slot with
// `Atomics.waitAsync` (the thread that makes a transition notifies it), or
// polls it every POLL_MS when the buffer is a breaker file's mapping, which
// cannot be waited on and which other processes change. On a change it reads
// the transitions it missed from the shared transition log.
// ---------------------------------------------------------------------------
const POLL_MS = 20
const LOG_ENTRIES = 8
const watches = new Map()

function notifyTransition(array) {
  if (array.buffer instanceof SharedArrayBuffer) Atomics.notify(array, GENERATION)
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
  }
  let byOffset = watches.get(array.buffer)
  if (byOffset === undefined) watches.set(array.buffer, (byOffset = new Map()))
  byOffset.set(array.byteOffset, entry)
  // Never delivers from inside on(): a transition made since `seen` is
  // heard a tick later, once the caller has attached all its listeners.
  park(entry, entry.seen)
}

// The entry stays, with its waiter, until that waiter wakes and finds nobody
// listening: adding and removing listeners never piles up waiters. The last
// listener leaving wakes it at once: a pending `Atomics.waitAsync` holds its
// buffer (and the entry) until it resolves, and on a healthy dependency no
// transition ever would. Every other waiter on that GENERATION slot, in any
// thread, wakes too: wait() finds the generation unchanged and parks again.
function unwatch(breaker, array) {
  const entry = entryOf(array)
  if (entry === undefined) return
  entry.breakers.delete(breaker)
  if (entry.breakers.size === 0) notifyTransition(entry.array)
}

function wait(entry) {
  if (entry.breakers.size === 0) {
    const byOffset = watches.get(entry.array.buffer)
    byOffset?.delete(entry.array.byteOffset)
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
    setTimeout(wait, POLL_MS, entry).unref()
    return
  }
  const result = Atomics.waitAsync(entry.array, GENERATION, generation | 0)
  if (result.async) result.value.then(() => wait(entry))
  else setImmediate(wait, entry)
}

// Set by a static block of CircuitBreaker, which alone sees its private fields.
let readTransition
let emitStateEvent

const LOG_GENERATION = CircuitBreakerKeys.TRANSITION_LOG_0_HI
const LOG_ENTRY_SLOTS = CircuitBreakerKeys.TRANSITION_LOG_1 - CircuitBreakerKeys.TRANSITION_LOG_0
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
      logged = readTransition(breaker, g)
      if (logged !== undefined) break
    }
    if (logged === null) {
      const slot = LOG_GENERATION + (g % LOG_ENTRIES) * LOG_ENTRY_SLOTS
      const behind = ((Atomics.load(entry.array, slot) >>> 0) - g) | 0
      if (behind <= 0) {
        // Not written yet (older generation there) or being written (ours,
        // not yet published).
        if (entry.stall?.generation !== g) entry.stall = { generation: g, since: performance.now(), tries: 0 }
        if (performance.now() - entry.stall.since < LOG_WRITE_GRACE_MS) {
          entry.seen = (g - 1) >>> 0
          return false
        }
        // Its writer never finished (a process killed mid-write, over a
        // breaker file): the transition is lost; later ones are still heard.
      }
      // Else overwritten already: more than LOG_ENTRIES transitions since.
    }
    if (logged !== undefined && logged !== null) {
      const event = {
        state: STATE_NAMES[logged.state],
        time: logged.time,
        threadId: logged.threadId,
        generation: g,
      }
      for (const breaker of entry.breakers) emitStateEvent(breaker, EVENT_OF_STATE[logged.state], event)
    }
    if (g === generation) break
  }
  entry.seen = generation
  return true
}

// ---------------------------------------------------------------------------
// Per-call timeouts: one timer per breaker, not per call. Calls that start
// within GRAIN_MS of each other share a bucket with one deadline, GRAIN_MS
// after the first of them plus the timeout (so a call times out at most
// GRAIN_MS late, never early). With one timeout for all, buckets are in
// deadline order, so the timer only ever waits for the first one. A task
// that declares a parameter gets an AbortSignal of its own, aborted when it
// times out; one that declares none gets none (making a signal costs ~4 µs
// on Node 20, far more than the rest of a call).
// ---------------------------------------------------------------------------
const GRAIN_MS = 1

class Deadlines {
  constructor(timeout, expire) {
    this.timeout = timeout
    this.expire = expire
    this.buckets = []
    this.head = 0
    this.timer = undefined
  }

  add(call) {
    let bucket = this.buckets[this.buckets.length - 1]
    if (bucket === undefined || call.start >= bucket.closes) {
      const closes = call.start + Math.min(GRAIN_MS, this.timeout)
      bucket = { closes, deadline: closes + this.timeout, calls: new Set() }
      this.buckets.push(bucket)
      if (this.timer === undefined) this.arm(bucket.deadline - call.start)
    }
    bucket.calls.add(call)
    call.bucket = bucket
  }

  delete(call) {
    call.bucket.calls.delete(call)
  }

  arm(ms) {
    this.timer = setTimeout(() => this.fire(), Math.max(1, Math.ceil(ms)))
    this.timer.unref()
  }

  fire() {
    this.timer = undefined
    const now = performance.now()
    while (this.head < this.buckets.length) {
      const bucket = this.buckets[this.head]
      if (bucket.deadline > now) {
        this.arm(bucket.deadline - now)
        break
      }
      this.buckets[this.head++] = undefined
      for (const call of bucket.calls) this.expire(call)
      bucket.calls.clear()
    }
    if (this.head === this.buckets.length) {
      this.buckets = []
      this.head = 0
    } else if (this.head >= 1024) {
      this.buckets = this.buckets.slice(this.head)
      this.head = 0
    }
  }
}

// A throwing 'abort' listener of a task's is the task's problem, not the
// timer's: it is reported as an uncaught exception, after the rest is done.
function abortQuietly(controller, reason) {
  try {
    controller.abort(reason)
  } catch (error) {
    process.nextTick(() => {
      throw error
    })
  }
}

/**
 * A circuit breaker whose whole state lives in a shared `Int32Array`: every
 * breaker built over the same buffer, in any worker thread, shares one
 * failure count, one state and one half-open probe.
 */
class CircuitBreaker extends EventEmitter {
  // The array; DISPOSED once disposed.
  #array
  // What `execute` reads first: the array while the CLOSED path may run the
  // task directly, GENERAL while options or listeners need the general path,
  // DISPOSED once disposed.
  #gate
  #id
  #failureThreshold
  #resetTimeout
  #openFallback
  #failureFallback
  #onSuccess
  #onFailure
  #publish
  #recordSuccess
  #config
  // The general path's needs, derived from the options and the listeners.
  #general = false
  #timed = false
  #callListeners = false
  #stateListeners = false
  #deadlines

  constructor(sharedArray, failureThreshold, resetTimeout, openFallback, failureFallback) {
    super()
    const config = readOptions(failureThreshold, resetTimeout, openFallback, failureFallback)
    this.#config = config
    this.#failureThreshold = config.failureThreshold
    this.#resetTimeout = config.resetTimeout
    this.#openFallback = config.openFallback
    this.#failureFallback = config.failureFallback
    // Validates the array (TypeError / RangeError) and the numbers (RangeError).
    this.#id = native.create(
      this,
      sharedArray,
      config.failureThreshold,
      config.resetTimeout,
      config.policies,
      threadId,
    )
    this.#array = sharedArray
    if (config.timeout !== undefined) {
      this.#deadlines = new Deadlines(config.timeout, (call) => this.#timeOut(call))
    }

    // Successes of this thread not yet added to the shared counters. A
    // success that changes no state (the run of failures is already 0) only
    // bumps `pending`; the count reaches shared memory, with the time of the
    // last success, at the end of the tick or every SUCCESS_BATCH successes.
    // Every handler below names `this`: while a call is pending or a count is
    // waiting, the breaker (and so its native handle) cannot be collected.
    let pending = 0
    let queued = false
    // Publishes the waiting successes. `endsRun` 1: the newest of them found
    // a run of failures to end; 0: they only add to the counts (each found
    // the run at 0 when it happened, so failures counted since still count).
    const publish = (endsRun) => {
      if (pending !== 0 && this.#array !== DISPOSED) {
        const count = pending
        pending = 0
        native.success(this.#id, count, endsRun)
      }
    }
    const publishAtTickEnd = () => {
      queued = false
      publish(0)
    }
    const recordSuccess = () => {
      pending++
      if (Atomics.load(this.#array, FAILURE_COUNT) !== 0) {
        publish(1)
      } else if (pending >= SUCCESS_BATCH) {
        publish(0)
      } else if (!queued) {
        queued = true
        if (waiting.push(publishAtTickEnd) === 1) process.nextTick(publishWaiting)
      }
    }
    this.#publish = publish
    this.#recordSuccess = recordSuccess
    const failureMarks = this.#failureFallback === undefined ? 0 : MARK_FALLBACK
    const failed = () => {
      if (this.#array !== DISPOSED && native.failure(this.#id, failureMarks) !== 0) {
        notifyTransition(this.#array)
      }
    }
    if (this.#failureFallback === undefined) {
      // The caller gets the task's own promise; these only observe it.
      this.#onSuccess = recordSuccess
      this.#onFailure = failed
    } else {
      this.#onSuccess = (value) => {
        recordSuccess()
        return value
      }
      this.#onFailure = (error) => {
        failed()
        return this.#failureFallback(error)
      }
    }
    this.#general =
      config.timeout !== undefined ||
      config.errorFilter !== undefined ||
      config.slowCallDuration !== undefined ||
      config.policies.failureRateThreshold !== undefined ||
      config.policies.histogram === true
    this.#timed = config.slowCallDuration !== undefined || config.policies.histogram === true
    this.#gate = this.#general ? GENERAL : sharedArray
  }

  /**
   * A breaker over the breaker file at `path` (see `openBreakerFile`, whose
   * `create` and `mode` options it takes besides the breaker's own).
   */
  static fromFile(path, options) {
    // The breaker's own options are checked before any file is created.
    const breakerOptions = typeof options === 'object' && options !== null ? options : undefined
    new CircuitBreaker(createSharedArray(breakerOptions), options ?? {}).dispose()
    return new CircuitBreaker(openBreakerFile(path, options), options ?? {})
  }

  /** See the exported `arrayLength`. */
  static arrayLength(options) {
    return arrayLength(options)
  }

  /**
   * Runs `task` if the circuit lets it through. Resolves with its value, or
   * with a fallback's; rejects with its error or a `CircuitOpenError`.
   */
  execute(task) {
    if (typeof task !== 'function') {
      return Promise.reject(new TypeError(`task must be a function, got ${describe(task)}`))
    }
    if (Atomics.load(this.#gate, STATE) !== CLOSED) {
      // The general path is entered from here, not through #admit: one stack
      // frame fewer for the errors its tasks make.
      if (this.#general && this.#array !== DISPOSED) return this.#executeGeneral(task)
      return this.#admit(task)
    }
    // CLOSED. The task is called from this frame rather than from a helper:
    // an Error the task makes captures one stack frame fewer, which in V8 is
    // worth ~0.5 µs a failure.
    // Promise.resolve() inside the try: a returned promise whose
    // `constructor` getter throws is a failure of the task, not of execute.
    let promise
    try {
      promise = Promise.resolve(task())
    } catch (error) {
      return this.#settleThrown(error, this.#onFailure)
    }
    if (this.#failureFallback !== undefined) return promise.then(this.#onSuccess, this.#onFailure)
    promise.then(this.#onSuccess, this.#onFailure)
    return promise
  }

  #admit(task) {
    if (this.#array === DISPOSED) return Promise.reject(disposedError())
    if (this.#general) return this.#executeGeneral(task)
    const decision = this.#decide()
    if (decision === ADMIT_RUN) return this.#run(task, this.#onSuccess, this.#onFailure)
    if (decision === ADMIT_REJECT) return this.#reject()
    // The handlers name `this`, so a pending probe keeps its breaker (and so
    // its native handle) alive until it reports.
    return this.#run(
      task,
      (value) => {
        this.#probeResult(decision, 1, 0)
        return value
      },
      (error) => {
        this.#probeResult(decision, 0, this.#failureFallback === undefined ? 0 : MARK_FALLBACK)
        return this.#failureFallback === undefined ? undefined : this.#failureFallback(error)
      },
    )
  }

  // Asks the core whether a call may run; tells other threads' listeners
  // when that made a transition.
  #decide() {
    const before = Atomics.load(this.#array, GENERATION)
    const decision = native.admit(this.#id, this.#openFallback === undefined ? 0 : 1)
    if (Atomics.load(this.#array, GENERATION) !== before) notifyTransition(this.#array)
    return decision
  }

  #probeResult(ticket, ok, marks) {
    if (this.#array !== DISPOSED && native.probeResult(this.#id, ticket, ok, marks) !== 0) {
      notifyTransition(this.#array)
    }
  }

  // Calls the task and hands its outcome to the handlers. Without a
  // failureFallback the handlers only record, and the caller gets the task's
  // own promise: no second promise to wait through, and a failure reaches
  // the caller without being thrown again. With one, the caller gets the
  // handlers' promise, which resolves with the fallback's result.
  #run(task, onSuccess, onFailure) {
    let promise
    try {
      promise = Promise.resolve(task())
    } catch (error) {
      return this.#settleThrown(error, onFailure)
    }
    if (this.#failureFallback !== undefined) return promise.then(onSuccess, onFailure)
    promise.then(onSuccess, onFailure)
    return promise
  }

  // A task that threw instead of returning a promise.
  #settleThrown(error, onFailure) {
    try {
      const fallen = onFailure(error)
      return this.#failureFallback === undefined ? Promise.reject(error) : Promise.resolve(fallen)
    } catch (fallbackError) {
      return Promise.reject(fallbackError)
    }
  }

  // Rejects a microtask later, when the caller's handler is attached: see
  // OPEN_REJECTION.
  #reject() {
    if (this.#openFallback === undefined) return Promise.resolve(OPEN_REJECTION)
    try {
      return Promise.resolve(this.#openFallback(circuitOpenError()))
    } catch (fallbackError) {
      return Promise.reject(fallbackError)
    }
  }

  // The general path: timeouts, the error filter, slow calls, the window,
  // the histogram and per-call events. One call record per call.
  #executeGeneral(task) {
    let ticket = ADMIT_RUN
    if (Atomics.load(this.#array, STATE) !== CLOSED) {
      ticket = this.#decide()
      if (ticket === ADMIT_REJECT) return this.#rejectGeneral()
    }
    const config = this.#config
    const call = {
      ticket,
      start: this.#timed || this.#callListeners || config.timeout !== undefined ? performance.now() : 0,
      bucket: undefined,
      controller: undefined,
      settled: false,
      resolve: undefined,
      reject: undefined,
    }
    const promise = new Promise((resolve, reject) => {
      call.resolve = resolve
      call.reject = reject
    })
    let result
    try {
      if (config.timeout === undefined) {
        result = Promise.resolve(task())
      } else {
        this.#deadlines.add(call)
        if (task.length === 0) {
          result = Promise.resolve(task())
        } else {
          call.controller = new AbortController()
          result = Promise.resolve(task(call.controller.signal))
        }
      }
    } catch (error) {
      this.#settle(call, false, error)
      return promise
    }
    result.then(
      (value) => this.#settle(call, true, value),
      (error) => this.#settle(call, false, error),
    )
    return promise
  }

  #rejectGeneral() {
    const error = circuitOpenError()
    if (this.#callListeners) this.#emitCall('reject', error)
    if (this.#openFallback === undefined) return Promise.reject(error)
    try {
      const result = this.#openFallback(error)
      if (this.#callListeners) this.#emitCall('fallback', result, error)
      return Promise.resolve(result)
    } catch (fallbackError) {
      return Promise.reject(fallbackError)
    }
  }

  #settle(call, ok, outcome) {
    if (call.settled) return // timed out first
    call.settled = true
    this.#deadlines?.delete(call)
    const config = this.#config
    const duration = call.start === 0 ? 0 : performance.now() - call.start
    const live = this.#array !== DISPOSED
    if (live && config.policies.histogram === true) {
      native.latency(this.#id, Math.min(Math.round(duration * 1000), 0xffffffff))
    }
    let marks = config.slowCallDuration !== undefined && duration > config.slowCallDuration ? MARK_SLOW : 0
    if (!ok && config.errorFilter !== undefined) {
      let accepted
      try {
        accepted = Boolean(config.errorFilter(outcome))
      } catch (filterError) {
        this.#report(call, false, marks)
        if (this.#callListeners) this.#emitCall('failure', filterError, duration)
        call.reject(filterError)
        return
      }
      if (accepted) {
        // Not a failure of the dependency: counted as a success, and the
        // caller still gets the error (no fallback).
        this.#report(call, true, marks | MARK_FILTERED)
        if (this.#callListeners) this.#emitCall('success', outcome, duration)
        call.reject(outcome)
        return
      }
    }
    if (ok) {
      this.#report(call, true, marks)
      if (this.#callListeners) this.#emitCall('success', outcome, duration)
      call.resolve(outcome)
      return
    }
    if (this.#failureFallback !== undefined) marks |= MARK_FALLBACK
    this.#report(call, false, marks)
    if (this.#callListeners) this.#emitCall('failure', outcome, duration)
    this.#fallBack(call, outcome)
  }

  #timeOut(call) {
    if (call.settled) return
    call.settled = true
    const error = new CircuitTimeoutError(this.#config.timeout)
    let marks = MARK_TIMED_OUT | (this.#failureFallback === undefined ? 0 : MARK_FALLBACK)
    // A timed-out call lasted at least the timeout: a slow failure like any other.
    const slowAfter = this.#config.slowCallDuration
    const duration = Math.max(this.#config.timeout, performance.now() - call.start)
    if (slowAfter !== undefined && duration > slowAfter) marks |= MARK_SLOW
    if (this.#array !== DISPOSED && this.#config.policies.histogram === true) {
      native.latency(this.#id, Math.min(Math.round(this.#config.timeout * 1000), 0xffffffff))
    }
    this.#report(call, false, marks)
    if (this.#callListeners) {
      this.#emitCall('timeout', error, this.#config.timeout)
      this.#emitCall('failure', error, this.#config.timeout)
    }
    if (call.controller !== undefined) abortQuietly(call.controller, error)
    this.#fallBack(call, error)
  }

  #fallBack(call, error) {
    if (this.#failureFallback === undefined) {
      call.reject(error)
      return
    }
    try {
      const result = this.#failureFallback(error)
      if (this.#callListeners) this.#emitCall('fallback', result, error)
      call.resolve(result)
    } catch (fallbackError) {
      call.reject(fallbackError)
    }
  }

  // Tells the core how a call of the general path ended.
  #report(call, ok, marks) {
    if (this.#array === DISPOSED) return
    if (call.ticket !== ADMIT_RUN) {
      this.#probeResult(call.ticket, ok ? 1 : 0, marks)
      return
    }
    if (ok && marks === 0) {
      this.#recordSuccess()
      return
    }
    // Successes held back go first, so the window sees calls in order.
    this.#publish(0)
    const code = ok ? native.markedSuccess(this.#id, marks) : native.failure(this.#id, marks)
    if (code !== 0) notifyTransition(this.#array)
  }

  #emitCall(event, ...args) {
    try {
      this.emit(event, ...args)
    } catch (error) {
      // A listener that throws must not turn the call's outcome around.
      process.nextTick(() => {
        throw error
      })
    }
  }

  /** `'CLOSED' | 'OPEN' | 'HALF_OPEN'`: `'HALF_OPEN'` as soon as a call would probe. */
  getState() {
    return STATE_NAMES[native.state(this.#live())]
  }

  /** The `SharedArrayBuffer` under the array. */
  getSharedBuffer() {
    this.#live()
    return this.#array.buffer
  }

  /** Forces HALF_OPEN in every thread: the next caller, anywhere, probes. */
  transitionToHalfOpen() {
    native.forceHalfOpen(this.#live())
    notifyTransition(this.#array)
  }

  /**
   * Holds the breaker OPEN for every thread sharing it until the returned
   * handle is released (by every isolation taken) or `reset()` is called.
   * Throws a RangeError when MAX_ISOLATIONS are held already.
   */
  isolate() {
    const epoch = native.isolate(this.#live())
    if (epoch < 0) {
      throw new RangeError(
        `isolations held at once must be at most ${MAX_ISOLATIONS}, and ${MAX_ISOLATIONS} are held: release one or reset() first`,
      )
    }
    notifyTransition(this.#array)
    let released = false
    const release = () => {
      if (released) return
      // Released through a disposed breaker, the isolation would hold every
      // thread forever: say so. (`reset()` through any breaker ends it.)
      native.releaseIsolation(this.#live(), epoch)
      released = true
      notifyTransition(this.#array)
    }
    const handle = { release }
    if (typeof Symbol.dispose === 'symbol') handle[Symbol.dispose] = release
    return handle
  }

  /**
   * Closes the breaker for every thread and starts over: the run of
   * failures, the window, the backoff and every isolation are cleared.
   * Lifetime counts (`getStats()`) are kept.
   */
  reset() {
    this.#reset()
  }

  /** Same as `reset()`. */
  close() {
    this.#reset()
  }

  #reset() {
    native.reset(this.#live())
    notifyTransition(this.#array)
  }

  /** Lets every call through in every thread, counting as usual but never opening. */
  disable() {
    native.setDisabled(this.#live(), true)
    notifyTransition(this.#array)
  }

  /** Undoes `disable()` for every thread. */
  enable() {
    native.setDisabled(this.#live(), false)
  }

  /** Calls that settled or were rejected, in every thread sharing the buffer. */
  getTotalRequestCount() {
    return this.#totals().requests
  }

  /** Calls that succeeded, in every thread sharing the buffer. */
  getSuccessCount() {
    return this.#totals().successes
  }

  /** `Date.now()`-scale time of the last failure anywhere, or 0. */
  getLastFailureTime() {
    return this.#totals().lastFailureTime
  }

  /** `Date.now()`-scale time of the last success anywhere, or 0. */
  getLastSuccessTime() {
    return this.#totals().lastSuccessTime
  }

  // This thread's own successes are published first, so a thread always
  // reads its own calls; other threads' arrive by the end of their tick.
  #totals() {
    publishWaiting()
    return native.totals(this.#live())
  }

  /**
   * Everything the breaker knows, summed over every thread sharing it, as a
   * plain object. Another thread's successes reach it by the end of that
   * thread's tick.
   */
  getStats() {
    return this.#stats()
  }

  #stats() {
    publishWaiting()
    const s = native.stats(this.#live())
    const seconds = (micros) => micros / 1e6
    return {
      name: this.#config.name,
      state: STATE_NAMES[s.state],
      stateSince: s.stateSince,
      isolated: s.isolations > 0,
      disabled: s.disabled,
      consecutiveFailures: s.consecutiveFailures,
      requests: s.requests,
      successes: s.successes,
      failures: s.failures,
      rejections: s.rejections,
      timeouts: s.timeouts,
      fallbacks: s.fallbacks,
      probes: s.probes,
      slowCalls: s.slowCalls,
      filtered: s.filtered,
      lastSuccessTime: s.lastSuccessTime,
      lastFailureTime: s.lastFailureTime,
      openDuration: s.openMs,
      window:
        s.windowCalls === undefined || s.windowCalls === null
          ? null
          : {
              calls: s.windowCalls,
              failures: s.windowFailures,
              failureRate: s.windowCalls === 0 ? 0 : (100 * s.windowFailures) / s.windowCalls,
            },
      latency:
        s.latencyCount === undefined || s.latencyCount === null
          ? null
          : {
              count: s.latencyCount,
              sum: seconds(s.latencySumMicros),
              max: seconds(s.latencyMaxMicros),
              p50: seconds(s.latencyP50Micros),
              p90: seconds(s.latencyP90Micros),
              p99: seconds(s.latencyP99Micros),
              buckets: s.latencyBoundsMicros.map((bound, i) => ({
                le: seconds(bound),
                count: s.latencyBuckets[i],
              })),
            },
    }
  }

  /** `getStats()`, for `JSON.stringify`. */
  toJSON() {
    return this.#stats()
  }

  /** This breaker's statistics in the Prometheus text format, labelled with its `name`. */
  metrics() {
    return prometheusText([this.#stats()])
  }

  get name() {
    return this.#config.name
  }

  // What the state-event watch of this thread may do with a breaker.
  static {
    readTransition = (breaker, generation) =>
      breaker.#array === DISPOSED ? undefined : native.transition(breaker.#id, generation)
    emitStateEvent = (breaker, event, payload) => {
      if (breaker.#array === DISPOSED) return
      try {
        breaker.emit(event, payload)
      } catch (error) {
        process.nextTick(() => {
          throw error
        })
      }
    }
  }

  #live() {
    if (this.#array === DISPOSED) throw disposedError()
    return this.#id
  }

  // Throws a TypeError unless `this` is a CircuitBreaker (before EventEmitter
  // code touches whatever `this` is).
  #brand() {
    return this.#config
  }

  // Keeps the general path and the state watch in step with the listeners.
  #listenersChanged() {
    if (this.#array === DISPOSED) return
    const calls = CALL_EVENTS.some((event) => this.listenerCount(event) > 0)
    const states = STATE_EVENTS.some((event) => this.listenerCount(event) > 0)
    this.#callListeners = calls
    const c = this.#config
    this.#general =
      calls ||
      c.timeout !== undefined ||
      c.errorFilter !== undefined ||
      c.slowCallDuration !== undefined ||
      c.policies.failureRateThreshold !== undefined ||
      c.policies.histogram === true
    this.#gate = this.#general ? GENERAL : this.#array
    if (states !== this.#stateListeners) {
      this.#stateListeners = states
      if (states) watch(this, this.#array)
      else unwatch(this, this.#array)
    }
  }

  on(event, listener) {
    this.#brand()
    super.on(event, listener)
    this.#listenersChanged()
    return this
  }

  addListener(event, listener) {
    return this.on(event, listener)
  }

  prependListener(event, listener) {
    this.#brand()
    super.prependListener(event, listener)
    this.#listenersChanged()
    return this
  }

  off(event, listener) {
    this.#brand()
    super.off(event, listener)
    this.#listenersChanged()
    return this
  }

  removeListener(event, listener) {
    return this.off(event, listener)
  }

  removeAllListeners(event) {
    this.#brand()
    // EventEmitter tells "all events" from the event `undefined` by the
    // number of arguments.
    if (arguments.length === 0) super.removeAllListeners()
    else super.removeAllListeners(event)
    this.#listenersChanged()
    return this
  }

  /**
   * Frees this breaker's native side now rather than when it is collected:
   * its handle, its hold on the array and, over a breaker file, its share of
   * the mapping. The shared state is left as it is (other breakers over the
   * buffer go on). Afterwards `execute` rejects and the other methods throw a
   * `TypeError`; calls still running are not counted. Idempotent.
   */
  dispose() {
    if (this.#array === DISPOSED) return
    publishWaiting()
    if (this.#stateListeners) unwatch(this, this.#array)
    this.#stateListeners = false
    this.#array = DISPOSED
    this.#gate = DISPOSED
    native.dispose(this)
  }

  get failureThreshold() {
    return this.#failureThreshold
  }

  get resetTimeout() {
    return this.#resetTimeout
  }
}

if (typeof Symbol.dispose === 'symbol') {
  CircuitBreaker.prototype[Symbol.dispose] = CircuitBreaker.prototype.dispose
}

module.exports = {
  CircuitBreaker,
  CircuitBreakerKeys,
  CircuitBreakerStates,
  CircuitOpenError,
  CircuitTimeoutError,
  isCircuitOpenError,
  isCircuitTimeoutError,
  arrayLength,
  createSharedArray,
  openBreakerFile,
  prometheusText,
  registerPrometheus,
  default: CircuitBreaker,
}
