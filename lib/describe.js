'use strict'

// How an error message says what it received: `got ${describe(value)}`.
// One wording for the whole package (options, arguments, metrics input).
// It never throws: a proxy whose traps throw, or a getter that does, is
// described by its type alone.

function describe(value) {
  try {
    return describeValue(value)
  } catch {
    return typeof value === 'function' ? 'a function' : 'an object'
  }
}

function describeValue(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return `an array of length ${value.length}`
  switch (typeof value) {
    case 'undefined': return 'undefined'
    case 'string': {
      const text = JSON.stringify(value)
      return `the string ${text.length > 60 ? `${text.slice(0, 57)}..."` : text}`
    }
    case 'number': return `the number ${Object.is(value, -0) ? '-0' : String(value)}`
    case 'bigint': return `the bigint ${value}n`
    case 'boolean': return `${value}`
    case 'symbol': return `the symbol ${String(value)}`
    case 'function': {
      const name = value.name
      return typeof name === 'string' && name !== '' ? `a function ${name}` : 'a function'
    }
    default: {
      const ctor = Object.getPrototypeOf(value)?.constructor?.name
      return typeof ctor === 'string' && ctor !== '' && ctor !== 'Object' ? `an instance of ${ctor}` : 'an object'
    }
  }
}

module.exports = { describe }
