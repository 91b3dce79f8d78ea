// Types of 'shared-circuit-breaker/cockatiel' (lib/cockatiel.mjs).
import type { CircuitState, Event, IDefaultPolicyContext, IDisposable, IFailureEvent, IPolicy, ISuccessEvent } from 'cockatiel'
import type { CircuitBreaker } from '../index.js'

/**
 * A shared breaker as a cockatiel policy. An open circuit rejects with
 * cockatiel's `BrokenCircuitError` (`IsolatedCircuitError` while isolated),
 * whose `cause` is the breaker's `CircuitOpenError`.
 */
export declare class SharedCircuitBreakerPolicy implements IPolicy<IDefaultPolicyContext> {
  constructor(breaker: CircuitBreaker)
  readonly _altReturn: never
  readonly breaker: CircuitBreaker
  /** Calls this policy ran that succeeded, in this thread. */
  readonly onSuccess: Event<ISuccessEvent>
  /** Calls this policy ran that failed, in this thread (not the ones the open circuit refused). */
  readonly onFailure: Event<IFailureEvent>
  /** The circuit opened, in any thread or process sharing it. */
  readonly onBreak: Event<{ isolated: boolean }>
  /** The circuit closed, in any thread or process sharing it. */
  readonly onReset: Event<void>
  /** The circuit became half-open, in any thread or process sharing it. */
  readonly onHalfOpen: Event<void>
  readonly onStateChange: Event<CircuitState>
  readonly state: CircuitState
  /** Holds the circuit open for every thread sharing it until `dispose()`. */
  isolate(): IDisposable
  execute<T>(fn: (context: IDefaultPolicyContext) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T>
}

/** `breaker` as a cockatiel policy. @throws {TypeError} `breaker` is not a `CircuitBreaker`. */
export declare function cockatielPolicy(breaker: CircuitBreaker): SharedCircuitBreakerPolicy
export default cockatielPolicy
