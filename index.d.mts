// Types of the ES module entry: the same declarations as index.d.ts.
export * from './index.js'
export { default } from './index.js'
