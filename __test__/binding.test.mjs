// What the native functions answer, called directly (they are not public
// API: the facade in lib/ is their only caller). Every mutator says whether
// it made a transition; the transition log says ready, pending or gone; the
// numbers the facade and the binding share come from `constants()`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { CircuitBreakerKeys, CircuitBreakerStates, createSharedArray } from 'shared-circuit-breaker'

const native = createRequire(import.meta.url)('../binding.js')
const C = native.constants()
const { GENERATION } = CircuitBreakerKeys

// A breaker made through the binding; `owner` ties its life, so keep it.
function make({ threshold = 1, resetTimeout = 0 } = {}) {
  const array = createSharedArray()
  const owner = {}
  const id = native.create(owner, array, threshold, resetTimeout, {}, 0)
  return { owner, id, array, generation: () => Atomics.load(array, GENERATION) >>> 0 }
}

// Runs `call` and checks that it answered a transition exactly when the
// generation moved (a transition bumps it once).
function answers(breaker, call, made = (answer) => (answer?.transition ?? answer) !== 0) {
  const before = breaker.generation()
  const answer = call()
  assert.equal(made(answer), breaker.generation() !== before, `answer ${JSON.stringify(answer)}, generation ${before} -> ${breaker.generation()}`)
  return answer
}

// `native.admit(id, fallback)`, checked the same way.
function admits(breaker, fallback = 0) {
  return answers(breaker, () => native.admit(breaker.id, fallback), (answer) => answer >= C.ADMIT_TRANSITION + C.ADMIT_RUN)
}

test('constants(): the numbers the facade shares with the binding, as the binding uses them', () => {
  assert.deepEqual(C.STATE_NAMES, ['CLOSED', 'OPEN', 'HALF_OPEN'])
  assert.deepEqual(CircuitBreakerStates, { CLOSED: 0, OPEN: 1, HALF_OPEN: 2 })
  assert.ok(C.ADMIT_TRANSITION > 2 ** 32 + 2 && Number.isSafeInteger(C.ADMIT_TRANSITION + 2 ** 32))
  assert.equal(
    C.LOG_ENTRIES,
    native.layout().filter((name) => /^TRANSITION_LOG_\d+$/.test(name)).length,
    'one log entry per TRANSITION_LOG_n slot',
  )

  const b = make({ threshold: 5 })
  assert.equal(native.admit(b.id, 0), C.ADMIT_RUN)
  assert.equal(native.failure(b.id, C.MARK_TIMED_OUT | C.MARK_FALLBACK), 0)
  assert.equal(native.failure(b.id, C.MARK_SLOW), 0)
  assert.equal(native.markedSuccess(b.id, C.MARK_FILTERED), 0)
  const stats = native.stats(b.id)
  assert.deepEqual(
    [stats.failures, stats.timeouts, stats.fallbacks, stats.slowCalls, stats.successes, stats.filtered],
    [2, 1, 1, 1, 1, 1],
  )

  const isolations = []
  for (let i = 0; i < C.MAX_ISOLATIONS; i++) isolations.push(native.isolate(b.id))
  assert.ok(isolations.every((taken) => taken !== null))
  assert.equal(native.isolate(b.id), null, 'one more than MAX_ISOLATIONS is refused')
  assert.equal(native.admit(b.id, 0), C.ADMIT_REJECT)
})

test('admit adds ADMIT_TRANSITION to its decision when it made a transition', () => {
  const b = make({ threshold: 1, resetTimeout: 0 })
  assert.equal(admits(b), C.ADMIT_RUN)
  assert.equal(answers(b, () => native.failure(b.id, 0)), 1, 'opened')
  // Open for 0 ms: this call half-opens the breaker and is its probe.
  const first = admits(b)
  assert.ok(first >= C.ADMIT_TRANSITION, `${first}`)
  const ticket = first - C.ADMIT_TRANSITION
  assert.equal(ticket, b.generation(), 'the ticket is the new episode')
  assert.equal(native.state(b.id), CircuitBreakerStates.HALF_OPEN)
  // The probe's place is taken: rejected, no transition.
  assert.equal(admits(b, 1), C.ADMIT_REJECT)
  assert.equal(answers(b, () => native.probeResult(b.id, ticket, 1, 0)), 3, 'closed')
  assert.equal(admits(b), C.ADMIT_RUN)

  // Isolated: the breaker is held OPEN already, admit makes no transition.
  answers(b, () => native.isolate(b.id))
  assert.equal(admits(b), C.ADMIT_REJECT)

  // Junk in the STATE slot: admit opens the breaker and refuses the call.
  const junk = make({ threshold: 1, resetTimeout: 60_000 })
  Atomics.store(junk.array, CircuitBreakerKeys.STATE, 7)
  assert.equal(admits(junk), C.ADMIT_REJECT + C.ADMIT_TRANSITION)
  assert.equal(native.state(junk.id), CircuitBreakerStates.OPEN)
  assert.equal(admits(junk), C.ADMIT_REJECT)
  // ... and with a reset timeout of 0, it runs the call as the probe of a
  // half-open episode it starts.
  const zero = make({ threshold: 1, resetTimeout: 0 })
  Atomics.store(zero.array, CircuitBreakerKeys.STATE, 7)
  assert.equal(admits(zero) - C.ADMIT_TRANSITION, zero.generation())
})

test('the overrides answer the transition they made: 0 none, 1 opened, 2 half-opened, 3 closed', () => {
  const b = make({ threshold: 1, resetTimeout: 60_000 })
  assert.equal(answers(b, () => native.reset(b.id)), 0, 'CLOSED already')
  assert.equal(answers(b, () => native.forceHalfOpen(b.id)), 2)
  assert.equal(answers(b, () => native.forceHalfOpen(b.id)), 2, 'a new episode is a transition too')
  assert.equal(answers(b, () => native.reset(b.id)), 3)

  const first = answers(b, () => native.isolate(b.id))
  assert.equal(first.transition, 1)
  assert.ok(Number.isInteger(first.epoch) && first.epoch >= 0 && first.epoch < 2 ** 48, `epoch ${first.epoch}`)
  const second = answers(b, () => native.isolate(b.id))
  assert.deepEqual(second, { epoch: first.epoch, transition: 0 }, 'OPEN already')
  // Isolation wins: the breaker stays OPEN, and no transition is made.
  const generation = b.generation()
  assert.equal(native.forceHalfOpen(b.id), 0)
  assert.equal(b.generation(), generation)
  for (const epoch of [first.epoch + 1, -1, 0.5, 2 ** 48, NaN, Infinity]) {
    assert.equal(answers(b, () => native.releaseIsolation(b.id, epoch)), 0, `epoch ${epoch} releases nothing`)
  }
  assert.equal(answers(b, () => native.releaseIsolation(b.id, first.epoch)), 0, 'one isolation still held')
  assert.equal(answers(b, () => native.releaseIsolation(b.id, first.epoch)), 3, 'the last one closes it')
  assert.equal(answers(b, () => native.releaseIsolation(b.id, first.epoch)), 0, 'none left')

  // A reset starts a new isolation epoch: older handles release nothing.
  const old = native.isolate(b.id)
  assert.equal(answers(b, () => native.reset(b.id)), 3)
  const next = native.isolate(b.id)
  assert.equal(next.epoch, old.epoch + 1)
  assert.equal(answers(b, () => native.releaseIsolation(b.id, old.epoch)), 0)
  assert.equal(answers(b, () => native.releaseIsolation(b.id, next.epoch)), 3)

  assert.equal(answers(b, () => native.failure(b.id, 0)), 1)
  assert.equal(answers(b, () => native.setDisabled(b.id, true)), 3, 'disabling closes it')
  assert.equal(answers(b, () => native.setDisabled(b.id, true)), 0)
  assert.equal(answers(b, () => native.setDisabled(b.id, false)), 0, 'enabling changes no state')
})

test('transition(id, generation) answers ready, pending (not written yet) or gone (overwritten)', () => {
  const b = make()
  for (let i = 0; i < 12; i++) native.forceHalfOpen(b.id)
  const now = b.generation()
  assert.equal(now, 12)
  for (let g = now - C.LOG_ENTRIES + 1; g <= now; g++) {
    const logged = native.transition(b.id, g)
    assert.equal(logged.status, 'ready', `generation ${g}`)
    assert.equal(logged.state, CircuitBreakerStates.HALF_OPEN)
    assert.equal(logged.threadId, 0)
    assert.equal(logged.pid, process.pid)
    assert.ok(Math.abs(logged.time - Date.now()) < 60_000, `time ${logged.time}`)
  }
  assert.deepEqual({ ...native.transition(b.id, now - C.LOG_ENTRIES) }, { status: 'gone' })
  assert.deepEqual({ ...native.transition(b.id, 1) }, { status: 'gone' })
  // Its place still holds an older generation's entry.
  assert.deepEqual({ ...native.transition(b.id, now + 1) }, { status: 'pending' })

  // A writer between claiming generation 13's place and publishing it (the
  // head marked writing), as core/src/breaker.rs log_transition writes.
  const wide = new BigInt64Array(b.array.buffer, b.array.byteOffset, b.array.length >> 1)
  const entrySlots = CircuitBreakerKeys.TRANSITION_LOG_1 - CircuitBreakerKeys.TRANSITION_LOG_0
  const head = (CircuitBreakerKeys.TRANSITION_LOG_0 + (13 % C.LOG_ENTRIES) * entrySlots) / 2
  Atomics.store(wide, head, (13n << 32n) | (1n << 31n) | 1n)
  assert.deepEqual({ ...native.transition(b.id, 13) }, { status: 'pending' })
  assert.deepEqual({ ...native.transition(b.id, 13 - C.LOG_ENTRIES) }, { status: 'gone' })
})

test('latencies(id, micros, count) records the first count durations of a Uint32Array; bad arguments throw a TypeError', () => {
  const array = createSharedArray({ histogram: true })
  const owner = {}
  const id = native.create(owner, array, 5, 0, { histogram: true }, 0)
  const micros = new Uint32Array([1000, 2000, 3000, 4000])
  assert.equal(native.latencies(id, micros, 3), undefined)
  let stats = native.stats(id)
  assert.equal(stats.latencyCount, 3)
  assert.equal(stats.latencySumMicros, 6000)
  assert.equal(stats.latencyMaxMicros, 3000)
  // A count past the array's end records the array, no more.
  native.latencies(id, new Uint32Array([5000]), 1000)
  stats = native.stats(id)
  assert.equal(stats.latencyCount, 4)
  assert.equal(stats.latencyMaxMicros, 5000)
  for (const args of [
    [id, new Float64Array(2), 2],
    [id, [1, 2], 2],
    [id, micros],
    [id, micros, 'all'],
    [2 ** 31, micros, 1],
  ]) {
    assert.throws(() => native.latencies(...args), TypeError, JSON.stringify(args.map(String)))
  }
  assert.equal(native.stats(id).latencyCount, 4)
  assert.ok(owner)
})

test('the bulkhead functions over an array too short even for a bulkhead header throw a RangeError, at every length', () => {
  // bulkheadStats over a 2-element array once read past its end (a panic
  // that aborted the process, found by the fuzz).
  for (let length = 0; length < 64; length++) {
    const array = new Int32Array(new SharedArrayBuffer(length * 4 || 8), 0, length)
    for (const call of [() => native.bulkheadStats(array), () => native.bulkheadCountLost(array), () => native.bulkheadRelease(array, 1)]) {
      assert.throws(call, RangeError, `length ${length}`)
    }
  }
})

test('every entry point of the binding catches panics: no Rust panic can unwind into N-API and abort the process', async () => {
  // A panic unwinding out of an `extern "C"` callback aborts the process
  // (a test cannot provoke one without a bug to trigger, so the sources are
  // checked): every `#[napi]` function is `catch_unwind`, and every raw
  // callback's body runs under `catch_unwind` (directly, or through
  // `hot_call`/`guarded`, which use it).
  const { readFile, readdir } = await import('node:fs/promises')
  const root = new URL('../src/', import.meta.url)
  const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.rs'))
  const hot = await readFile(new URL('hot.rs', root), 'utf8')
  assert.match(hot, /fn hot_call[\s\S]*?catch_unwind/)
  assert.match(hot, /fn guarded[\s\S]*?catch_unwind/)
  // The body of the function whose signature `match` ends at its `{`.
  const bodyOf = (source, match) => {
    let depth = 1
    let i = match.index + match[0].length
    for (; depth > 0 && i < source.length; i++) depth += source[i] === '{' ? 1 : source[i] === '}' ? -1 : 0
    return source.slice(match.index + match[0].length, i)
  }
  let napiFunctions = 0
  let rawCallbacks = 0
  for (const file of files) {
    const source = await readFile(new URL(file, root), 'utf8')
    for (const match of source.matchAll(/#\[(?:napi_derive::)?napi(\([^\]]*\))?\]\s*pub fn (\w+)[^{]*\{/g)) {
      napiFunctions++
      // napi-rs ignores `catch_unwind` on `module_exports`: its body must.
      const guarded = /module_exports/.test(match[1] ?? '') ? /catch_unwind/.test(bodyOf(source, match)) : /catch_unwind/.test(match[1] ?? '')
      assert.ok(guarded, `#[napi] function ${match[2]} in src/${file} without catch_unwind`)
    }
    for (const match of source.matchAll(/extern "C" fn (\w+)\([^)]*\)[^{]*\{/g)) {
      rawCallbacks++
      assert.match(bodyOf(source, match), /catch_unwind|hot_call|guarded/, `raw callback ${match[1]} in src/${file} runs outside catch_unwind`)
    }
  }
  assert.ok(napiFunctions > 30 && rawCallbacks > 8, `${napiFunctions} #[napi] functions, ${rawCallbacks} raw callbacks found`)
})
