// Types of the ES module entry: the same names as the CommonJS entry, and the
// class as the default export.
import { CircuitBreaker } from './index.js'
export * from './index.js'
export default CircuitBreaker
