// ES module entry: the same objects as the CommonJS entry, the class as default.
import cjs from './index.js'

export const {
  CircuitBreaker,
  CircuitBreakerKeys,
  CircuitBreakerStates,
  CircuitOpenError,
  isCircuitOpenError,
  createSharedArray,
  openBreakerFile,
} = cjs
export default cjs.CircuitBreaker
