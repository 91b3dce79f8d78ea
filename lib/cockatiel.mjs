// A shared breaker as a cockatiel policy: `cockatielPolicy(breaker)` can
// stand in any `wrap(...)` pipeline where cockatiel's own
// `circuitBreaker(...)` stands, and every thread or process whose breaker is
// built over the same array or breaker file shares its circuit.
//
// Imported as 'shared-circuit-breaker/cockatiel'. It imports cockatiel (ES
// module only), which the main entry never does: the package keeps no
// dependency on it.
//
// What maps to cockatiel's circuit breaker policy:
// - an open (or isolated) circuit rejects with cockatiel's
//   `BrokenCircuitError` (`IsolatedCircuitError` while `isolate()`d), its
//   `cause` the breaker's `CircuitOpenError`; a retry policy meets it as it
//   meets cockatiel's own;
// - `execute(fn, signal)` calls `fn({ signal })` with the pipeline's signal
//   (combined with the breaker's own when the breaker has a `timeout`);
// - `onSuccess` / `onFailure` fire for calls this policy ran, in this thread,
//   with `duration` in ms, as cockatiel's do; a call refused by the open
//   circuit fires neither;
// - `onBreak`, `onReset`, `onHalfOpen`, `onStateChange`: the breaker's
//   `open`, `close` and `halfOpen` events, which report transitions made by
//   any thread or process sharing it;
// - `state` (a `CircuitState`), `isolate()` (returns `{ dispose() }`).
import { BrokenCircuitError, CircuitState, EventEmitter, IsolatedCircuitError } from 'cockatiel'
import breakerModule from '../index.js'
import describeModule from './describe.js'

const { CircuitBreaker, isCircuitOpenError } = breakerModule
const { describe } = describeModule

const NEVER_ABORTED = new AbortController().signal
const STATES = { CLOSED: CircuitState.Closed, OPEN: CircuitState.Open, HALF_OPEN: CircuitState.HalfOpen }

export class SharedCircuitBreakerPolicy {
  #breaker
  #success = new EventEmitter()
  #failure = new EventEmitter()

  constructor(breaker) {
    if (!(breaker instanceof CircuitBreaker)) {
      throw new TypeError(`breaker must be a CircuitBreaker, got ${describe(breaker)}`)
    }
    this.#breaker = breaker
    this.onSuccess = this.#success.addListener
    this.onFailure = this.#failure.addListener
    // cockatiel's events, each a breaker listener added while subscribed.
    this.onBreak = this.#stateEvent('open', () => ({ isolated: this.#breaker.getStats().isolated }))
    this.onReset = this.#stateEvent('close', () => undefined)
    this.onHalfOpen = this.#stateEvent('halfOpen', () => undefined)
    this.onStateChange = (listener) => {
      const subscriptions = [
        this.onBreak(() => listener(this.state === CircuitState.Isolated ? CircuitState.Isolated : CircuitState.Open)),
        this.onReset(() => listener(CircuitState.Closed)),
        this.onHalfOpen(() => listener(CircuitState.HalfOpen)),
      ]
      return { dispose: () => subscriptions.forEach((s) => s.dispose()) }
    }
  }

  /** The breaker this policy runs calls through. */
  get breaker() {
    return this.#breaker
  }

  /** The circuit's state as cockatiel names it. */
  get state() {
    const stats = this.#breaker.getStats()
    return stats.isolated ? CircuitState.Isolated : STATES[stats.state]
  }

  /** Holds the circuit open, for every thread sharing it, until `dispose()`. */
  isolate() {
    const isolation = this.#breaker.isolate()
    return { dispose: () => isolation.release() }
  }

  async execute(fn, signal = NEVER_ABORTED) {
    const started = performance.now()
    let called = false
    try {
      const value = await this.#breaker.execute((own) => {
        called = true
        return fn({ signal: own === undefined ? signal : either(signal, own) })
      })
      if (called) this.#success.emit({ duration: performance.now() - started })
      return value
    } catch (error) {
      if (!called && isCircuitOpenError(error)) {
        const broken = this.state === CircuitState.Isolated ? new IsolatedCircuitError() : new BrokenCircuitError()
        broken.cause = error
        throw broken
      }
      if (called) {
        this.#failure.emit({ duration: performance.now() - started, handled: true, reason: { error } })
      }
      throw error
    }
  }

  #stateEvent(event, payload) {
    return (listener) => {
      const handler = () => listener(payload())
      this.#breaker.on(event, handler)
      return { dispose: () => this.#breaker.off(event, handler) }
    }
  }
}

/** `breaker` as a cockatiel policy. */
export function cockatielPolicy(breaker) {
  return new SharedCircuitBreakerPolicy(breaker)
}

export default cockatielPolicy

// A signal that aborts when either does, with that one's reason.
function either(a, b) {
  if (a === NEVER_ABORTED) return b
  if (typeof AbortSignal.any === 'function') return AbortSignal.any([a, b])
  const controller = new AbortController()
  for (const s of [a, b]) {
    if (s.aborted) controller.abort(s.reason)
    else s.addEventListener('abort', () => controller.abort(s.reason), { once: true })
  }
  return controller.signal
}
