// ES module entry: the same objects as the CommonJS entry, the class as default.
import cjs from './index.js'

export const {
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
  Bulkhead,
  RateLimiter,
  BulkheadFullError,
  RateLimitedError,
  isBulkheadFullError,
  isRateLimitedError,
  bulkheadMetrics,
  dashboard,
  registerOpenTelemetry,
} = cjs
export default cjs.CircuitBreaker
