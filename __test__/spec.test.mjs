// One test per behaviour of ../shared/SPEC.md, in its order.
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { spawnSync } from 'node:child_process'
import CircuitBreaker, {
  CircuitBreaker as NamedCircuitBreaker,
  CircuitBreakerKeys,
  CircuitBreakerStates,
  CircuitOpenError,
  isCircuitOpenError,
  createSharedArray,
} from 'shared-circuit-breaker'

const require = createRequire(import.meta.url)
const { OPEN, CLOSED, HALF_OPEN } = CircuitBreakerStates
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const ok = (value) => async () => value
const boom = (message = 'boom') => async () => {
  throw new Error(message)
}
const never = () => new Promise(() => {})

function newArray() {
  return new Int32Array(
    new SharedArrayBuffer(Object.keys(CircuitBreakerKeys).length * Int32Array.BYTES_PER_ELEMENT),
  )
}

async function openBreaker(breaker) {
  for (let i = 0; i < breaker.failureThreshold; i++) {
    await breaker.execute(boom()).catch(() => {})
  }
  assert.equal(breaker.getState(), 'OPEN')
}

describe('import', () => {
  test('the default export is the class, also exported by name', () => {
    assert.equal(typeof CircuitBreaker, 'function')
    assert.equal(CircuitBreaker, NamedCircuitBreaker)
  })

  test('require gives the same objects as import', () => {
    const cjs = require('shared-circuit-breaker')
    assert.equal(cjs.CircuitBreaker, CircuitBreaker)
    assert.equal(cjs.default, CircuitBreaker)
    assert.equal(cjs.CircuitBreakerKeys, CircuitBreakerKeys)
    assert.equal(cjs.CircuitBreakerStates, CircuitBreakerStates)
  })
})

describe('the state buffer', () => {
  test('CircuitBreakerKeys is frozen and maps every slot name to its own index', () => {
    assert.ok(Object.isFrozen(CircuitBreakerKeys))
    const indexes = Object.values(CircuitBreakerKeys).sort((a, b) => a - b)
    assert.deepEqual(indexes, [...indexes.keys()])
    for (const key of ['STATE', 'FAILURE_COUNT', 'LAST_FAILURE_TIME', 'TOTAL_REQUEST_COUNT', 'SUCCESS_COUNT', 'LAST_SUCCESS_TIME']) {
      assert.equal(typeof CircuitBreakerKeys[key], 'number', key)
    }
  })

  test('a buffer of Object.keys(CircuitBreakerKeys).length elements is exactly big enough', () => {
    const length = Object.keys(CircuitBreakerKeys).length
    assert.doesNotThrow(() => new CircuitBreaker(newArray(), 5, 1000))
    const short = new Int32Array(new SharedArrayBuffer((length - 1) * 4))
    assert.throws(() => new CircuitBreaker(short, 5, 1000), RangeError)
    assert.equal(createSharedArray().length, length)
    assert.ok(createSharedArray().buffer instanceof SharedArrayBuffer)
  })

  test('CircuitBreakerStates is { CLOSED: 0, OPEN: 1, HALF_OPEN: 2 }', () => {
    assert.deepEqual({ ...CircuitBreakerStates }, { CLOSED: 0, OPEN: 1, HALF_OPEN: 2 })
    assert.ok(Object.isFrozen(CircuitBreakerStates))
  })

  test('Atomics.load of STATE is always a state and FAILURE_COUNT the run of failures', async () => {
    const array = newArray()
    const breaker = new CircuitBreaker(array, 3, 60000)
    const states = []
    const see = () => states.push(Atomics.load(array, CircuitBreakerKeys.STATE))
    see()
    await breaker.execute(boom()).catch(see)
    assert.equal(Atomics.load(array, CircuitBreakerKeys.FAILURE_COUNT), 1)
    await breaker.execute(boom()).catch(see)
    assert.equal(Atomics.load(array, CircuitBreakerKeys.FAILURE_COUNT), 2)
    await breaker.execute(boom()).catch(see)
    see()
    assert.deepEqual(states, [CLOSED, CLOSED, CLOSED, OPEN, OPEN])
    breaker.transitionToHalfOpen()
    assert.equal(Atomics.load(array, CircuitBreakerKeys.STATE), HALF_OPEN)
  })

  test('a buffer of zeroes is a fresh, CLOSED breaker', () => {
    const breaker = new CircuitBreaker(newArray(), 5, 1000)
    assert.equal(breaker.getState(), 'CLOSED')
    assert.equal(breaker.getTotalRequestCount(), 0)
    assert.equal(breaker.getLastFailureTime(), 0)
  })

  test('constructing over a buffer in use joins it and never resets it', async () => {
    const array = newArray()
    const first = new CircuitBreaker(array, 2, 60000)
    await first.execute(ok(1))
    await openBreaker(first)
    const second = new CircuitBreaker(array, 2, 60000)
    assert.equal(second.getState(), 'OPEN')
    assert.equal(Atomics.load(array, CircuitBreakerKeys.FAILURE_COUNT), 2)
    assert.equal(second.getTotalRequestCount(), 3)
    let ran = false
    await assert.rejects(second.execute(async () => (ran = true)), CircuitOpenError)
    assert.equal(ran, false)
  })

  test('timestamps are real Date.now() milliseconds and counters go past 32 bits', async () => {
    const array = newArray()
    const breaker = new CircuitBreaker(array, 5, 1000)
    const before = Date.now()
    await breaker.execute(ok(1))
    await breaker.execute(boom()).catch(() => {})
    const after = Date.now()
    for (const time of [breaker.getLastSuccessTime(), breaker.getLastFailureTime()]) {
      assert.ok(time >= before - 1 && time <= after + 1, `${time} in [${before}, ${after}]`)
    }
    // SUCCESS_COUNT is a 64-bit value (this thread's stripe of it): push
    // its low half to the brink, then count one more.
    const wide = new BigInt64Array(array.buffer)
    const slot = CircuitBreakerKeys.SUCCESS_COUNT / 2
    const total = breaker.getSuccessCount()
    Atomics.add(wide, slot, 2n ** 32n - 1n)
    await breaker.execute(ok(1))
    assert.equal(breaker.getSuccessCount(), total + 2 ** 32)
  })
})

describe('constructor', () => {
  test('the options object means the same as the positional arguments', async () => {
    const openFallback = () => 'open'
    const failureFallback = () => 'failed'
    const breaker = new CircuitBreaker(newArray(), { failureThreshold: 2, resetTimeout: 1234, openFallback, failureFallback })
    assert.equal(breaker.failureThreshold, 2)
    assert.equal(breaker.resetTimeout, 1234)
    assert.equal(await breaker.execute(boom()), 'failed')
    assert.equal(await breaker.execute(boom()), 'failed')
    assert.equal(await breaker.execute(ok(1)), 'open')
  })

  test('thresholds and timeouts default to 5 and 30000 when left out', () => {
    const breaker = new CircuitBreaker(newArray())
    assert.equal(breaker.failureThreshold, 5)
    assert.equal(breaker.resetTimeout, 30000)
    assert.equal(new CircuitBreaker(newArray(), {}).resetTimeout, 30000)
  })

  const bad = [
    ['an array that is not an Int32Array', [new Float64Array(400), 5, 1000], TypeError, /sharedArray must be an Int32Array over a SharedArrayBuffer, got a Float64Array/],
    ['a plain value for the array', ['x', 5, 1000], TypeError, /sharedArray .* got a string/],
    ['an Int32Array not backed by a SharedArrayBuffer', [new Int32Array(400), 5, 1000], TypeError, /not shared/],
    ['an array too short', [new Int32Array(new SharedArrayBuffer(16)), 5, 1000], RangeError, /at least \d+ elements .* got 4/],
    ['an array at an odd byteOffset', [new Int32Array(new SharedArrayBuffer(4096), 4), 5, 1000], RangeError, /multiple of 8/],
    ['a threshold that is not a number', [null, '5', 1000], TypeError, /failureThreshold must be a number, got the string "5"/],
    ['a threshold of 0', [null, 0, 1000], RangeError, /failureThreshold must be an integer from 1 .* got 0/],
    ['a fractional threshold', [null, 2.5, 1000], RangeError, /failureThreshold .* got 2.5/],
    ['a NaN threshold', [null, NaN, 1000], RangeError, /failureThreshold .* got NaN/],
    ['a timeout that is not a number', [null, 5, {}], TypeError, /resetTimeout must be a number, got an object/],
    ['a negative timeout', [null, 5, -1], RangeError, /resetTimeout must be a finite number .* got -1/],
    ['an infinite timeout', [null, 5, Infinity], RangeError, /resetTimeout .* got inf/],
    ['an openFallback that is not a function', [null, 5, 1000, 'fallback'], TypeError, /openFallback must be a function, got the string/],
    ['a failureFallback that is not a function', [null, 5, 1000, undefined, 42], TypeError, /failureFallback must be a function, got the number 42/],
  ]
  for (const [what, args, ErrorClass, message] of bad) {
    test(`throws ${ErrorClass.name} for ${what}`, () => {
      const [array, ...rest] = args
      assert.throws(() => new CircuitBreaker(array ?? newArray(), ...rest), (error) => {
        assert.ok(error instanceof ErrorClass, `${error.constructor.name}: ${error.message}`)
        assert.match(error.message, message)
        return true
      })
    })
  }

  test('an options object whose getter throws gives a TypeError naming the option', () => {
    const cause = new Error('getter says no')
    const options = {
      failureThreshold: 3,
      get resetTimeout() {
        throw cause
      },
    }
    assert.throws(() => new CircuitBreaker(newArray(), options), (error) => {
      assert.ok(error instanceof TypeError)
      assert.match(error.message, /^options\.resetTimeout could not be read: getter says no$/)
      assert.equal(error.cause, cause)
      return true
    })
    const proxy = new Proxy({}, { get: () => { throw Symbol('odd') } })
    assert.throws(() => new CircuitBreaker(newArray(), proxy), /^TypeError: options\.failureThreshold could not be read: Symbol\(odd\)$/)
  })

  // The CLOSED fast path and the general path (options or listeners that
  // need a call record) each read the shared STATE slot once before the task.
  test('a call reads STATE once before its task, on the fast and the general path', async () => {
    const load = Atomics.load
    let reads = 0
    Atomics.load = (array, index) => {
      if (index === CircuitBreakerKeys.STATE) reads++
      return load(array, index)
    }
    try {
      const cases = [{}, { timeout: 1000 }, { errorFilter: () => false }, { failureRateThreshold: 50 }, { listen: true }]
      for (const { listen, ...options } of cases) {
        const breaker = new CircuitBreaker(createSharedArray(options), { failureThreshold: 5, ...options })
        if (listen) breaker.on('success', () => {})
        reads = 0
        let readsBeforeTask
        const call = breaker.execute(async () => {
          readsBeforeTask = reads
        })
        await call
        assert.equal(readsBeforeTask, 1, `STATE reads before the task with ${JSON.stringify({ listen, ...options })}`)
        breaker.dispose()
      }
    } finally {
      Atomics.load = load
    }
  })

  test('a message says what it got without being thrown off by it: proxies and getters that throw', async () => {
    const trap = () => {
      throw new Error('trap')
    }
    const hostile = new Proxy({}, { getPrototypeOf: trap, get: trap })
    const unnamed = Object.defineProperty(() => {}, 'name', { get: trap })
    const revoked = Proxy.revocable([], {})
    revoked.revoke()
    const breaker = new CircuitBreaker(newArray(), 5, 1000)
    for (const [value, said] of [[hostile, 'an object'], [revoked.proxy, 'an object'], [new Map(), 'an instance of Map'], [42, 'the number 42']]) {
      await assert.rejects(breaker.execute(value), (error) => {
        assert.ok(error instanceof TypeError)
        assert.equal(error.message, `task must be a function, got ${said}`)
        return true
      })
    }
    assert.throws(() => new CircuitBreaker(newArray(), { name: hostile }), /^TypeError: name must be a string, got an object$/)
    assert.throws(() => new CircuitBreaker(newArray(), { name: unnamed }), /^TypeError: name must be a string, got a function$/)
  })

  test('a buffer that holds something else is refused and left untouched', () => {
    const array = newArray()
    array.fill(7)
    assert.throws(() => new CircuitBreaker(array, 5, 1000), /not a circuit breaker/)
    assert.ok(array.every((value) => value === 7))
  })

  test('a bad setting leaves a fresh buffer untouched', () => {
    const array = newArray()
    assert.throws(() => new CircuitBreaker(array, 0, 1000), RangeError)
    assert.ok(array.every((value) => value === 0))
  })
})

describe('execute while CLOSED', () => {
  test('resolves with the value, counts the success and resets the failure run', async () => {
    const array = newArray()
    const breaker = new CircuitBreaker(array, 3, 60000)
    await breaker.execute(boom()).catch(() => {})
    assert.equal(Atomics.load(array, CircuitBreakerKeys.FAILURE_COUNT), 1)
    assert.equal(await breaker.execute(ok('value')), 'value')
    assert.equal(Atomics.load(array, CircuitBreakerKeys.FAILURE_COUNT), 0)
    assert.equal(breaker.getSuccessCount(), 1)
    assert.equal(breaker.getTotalRequestCount(), 2)
  })

  test('a task that returns a plain value or a thenable works too', async () => {
    const breaker = new CircuitBreaker(newArray(), 3, 60000)
    assert.equal(await breaker.execute(() => 7), 7)
    assert.equal(await breaker.execute(() => ({ then: (resolve) => resolve(8) })), 8)
  })

  test('rejects with the task own error object and counts the failure', async () => {
    const breaker = new CircuitBreaker(newArray(), 3, 60000)
    const error = new Error('mine')
    const rejection = await breaker.execute(() => Promise.reject(error)).catch((e) => e)
    assert.equal(rejection, error)
    assert.equal(breaker.getTotalRequestCount(), 1)
    assert.equal(breaker.getSuccessCount(), 0)
  })

  test('a task that throws synchronously counts as a failure and rejects', async () => {
    const array = newArray()
    const breaker = new CircuitBreaker(array, 3, 60000)
    const error = new Error('sync')
    const rejection = breaker.execute(() => {
      throw error
    })
    assert.ok(rejection instanceof Promise)
    assert.equal(await rejection.catch((e) => e), error)
    assert.equal(Atomics.load(array, CircuitBreakerKeys.FAILURE_COUNT), 1)
  })

  test('opens after failureThreshold consecutive failures', async () => {
    const breaker = new CircuitBreaker(newArray(), 3, 60000)
    for (let i = 0; i < 2; i++) await breaker.execute(boom()).catch(() => {})
    assert.equal(breaker.getState(), 'CLOSED')
    await breaker.execute(boom()).catch(() => {})
    assert.equal(breaker.getState(), 'OPEN')
  })

  test('a failureFallback gets the error and its awaited result resolves the call', async () => {
    const error = new Error('down')
    let given
    const breaker = new CircuitBreaker(newArray(), 3, 60000, undefined, async (e) => {
      given = e
      await sleep(1)
      return 'fallback value'
    })
    assert.equal(await breaker.execute(() => Promise.reject(error)), 'fallback value')
    assert.equal(given, error)
    assert.equal(await breaker.execute(() => { throw error }), 'fallback value')
  })

  test('a failureFallback that throws or rejects rejects the call with its error', async () => {
    const thrown = new Error('fallback threw')
    const throwing = new CircuitBreaker(newArray(), 3, 60000, undefined, () => { throw thrown })
    assert.equal(await throwing.execute(boom()).catch((e) => e), thrown)
    assert.equal(await throwing.execute(() => { throw new Error('sync') }).catch((e) => e), thrown)
    const rejecting = new CircuitBreaker(newArray(), 3, 60000, undefined, () => Promise.reject(thrown))
    assert.equal(await rejecting.execute(boom()).catch((e) => e), thrown)
  })
})

describe('execute while OPEN', () => {
  test('rejects without calling the task, with a branded CircuitOpenError', async () => {
    const breaker = new CircuitBreaker(newArray(), 1, 60000)
    await openBreaker(breaker)
    let calls = 0
    const error = await breaker.execute(async () => calls++).catch((e) => e)
    assert.equal(calls, 0)
    assert.ok(error instanceof CircuitOpenError)
    assert.ok(error instanceof Error)
    assert.equal(error.message, 'Circuit is open')
    assert.equal(error.code, 'ERR_CIRCUIT_OPEN')
    assert.equal(error.name, 'CircuitOpenError')
    assert.ok(isCircuitOpenError(error))
    assert.ok(!isCircuitOpenError(new Error('Circuit is open')))
    assert.ok(!isCircuitOpenError(null))
    assert.ok(isCircuitOpenError(structuredClone({ code: 'ERR_CIRCUIT_OPEN' })))
    assert.equal(breaker.getTotalRequestCount(), 2, 'the rejection is counted')
  })

  test('with an openFallback resolves with its result instead', async () => {
    let given
    const breaker = new CircuitBreaker(newArray(), 1, 60000, (error) => {
      given = error
      return Promise.resolve('cached')
    })
    await openBreaker(breaker)
    let calls = 0
    assert.equal(await breaker.execute(async () => calls++), 'cached')
    assert.equal(calls, 0)
    assert.ok(isCircuitOpenError(given))
  })

  test('an openFallback that throws or rejects rejects the call with its error', async () => {
    const thrown = new Error('no cache')
    const throwing = new CircuitBreaker(newArray(), 1, 60000, () => { throw thrown })
    await openBreaker(throwing)
    assert.equal(await throwing.execute(ok(1)).catch((e) => e), thrown)
    const rejecting = new CircuitBreaker(newArray(), 1, 60000, async () => { throw thrown })
    await openBreaker(rejecting)
    assert.equal(await rejecting.execute(ok(1)).catch((e) => e), thrown)
  })
})

describe('half-open', () => {
  test('after resetTimeout exactly one caller probes; the others are treated as OPEN', async () => {
    const breaker = new CircuitBreaker(newArray(), 1, 30)
    await openBreaker(breaker)
    await sleep(60)
    assert.equal(breaker.getState(), 'HALF_OPEN', 'HALF_OPEN as soon as a call would probe')
    let calls = 0
    let finish
    const probe = breaker.execute(() => {
      calls++
      return new Promise((resolve) => (finish = resolve))
    })
    const others = await Promise.all(
      Array.from({ length: 5 }, () => breaker.execute(async () => calls++).catch((e) => e)),
    )
    assert.equal(calls, 1)
    assert.ok(others.every(isCircuitOpenError))
    assert.equal(breaker.getState(), 'HALF_OPEN')
    finish('probed')
    assert.equal(await probe, 'probed')
  })

  test('closes with a zero failure count when the probe succeeds', async () => {
    const array = newArray()
    const breaker = new CircuitBreaker(array, 2, 30)
    await openBreaker(breaker)
    await sleep(60)
    assert.equal(await breaker.execute(ok('up')), 'up')
    assert.equal(breaker.getState(), 'CLOSED')
    assert.equal(Atomics.load(array, CircuitBreakerKeys.FAILURE_COUNT), 0)
    assert.equal(await breaker.execute(ok('again')), 'again')
  })

  test('opens again when the probe fails, and the timeout starts over', async () => {
    const breaker = new CircuitBreaker(newArray(), 1, 150)
    await openBreaker(breaker)
    await sleep(200)
    await breaker.execute(boom('still down')).catch(() => {})
    assert.equal(breaker.getState(), 'OPEN')
    await sleep(50)
    // 250 ms after the first opening but only 50 after the probe failed.
    let calls = 0
    await assert.rejects(breaker.execute(async () => calls++), CircuitOpenError)
    assert.equal(calls, 0)
    await sleep(150)
    assert.equal(breaker.getState(), 'HALF_OPEN')
  })

  test('a probe that never settles frees the breaker after resetTimeout more', async () => {
    const breaker = new CircuitBreaker(newArray(), 1, 40)
    await openBreaker(breaker)
    await sleep(60)
    breaker.execute(never)
    await assert.rejects(breaker.execute(ok(1)), CircuitOpenError)
    await sleep(80)
    assert.equal(await breaker.execute(ok('second probe')), 'second probe')
    assert.equal(breaker.getState(), 'CLOSED')
  })

  test('a STATE set to OPEN with Atomics.store counts as opened when first seen', async () => {
    const array = newArray()
    const breaker = new CircuitBreaker(array, 5, 100)
    await sleep(150) // the breaker has been alive longer than resetTimeout
    Atomics.store(array, CircuitBreakerKeys.STATE, OPEN)
    let calls = 0
    await assert.rejects(breaker.execute(async () => calls++), CircuitOpenError)
    assert.equal(breaker.getState(), 'OPEN')
    await sleep(150)
    assert.equal(await breaker.execute(async () => ++calls), 1)
    assert.equal(breaker.getState(), 'CLOSED')
  })

  test('transitionToHalfOpen lets the next caller probe', async () => {
    const breaker = new CircuitBreaker(newArray(), 1, 60000)
    await openBreaker(breaker)
    breaker.transitionToHalfOpen()
    assert.equal(breaker.getState(), 'HALF_OPEN')
    assert.equal(await breaker.execute(ok('probe')), 'probe')
    assert.equal(breaker.getState(), 'CLOSED')
  })
})

describe('bad calls', () => {
  for (const task of [undefined, null, 42, 'task', {}, Promise.resolve(1)]) {
    test(`execute(${typeof task === 'string' ? `'${task}'` : String(task)}) rejects with a TypeError`, async () => {
      const breaker = new CircuitBreaker(newArray(), 1, 1000)
      const rejection = breaker.execute(task)
      assert.ok(rejection instanceof Promise)
      await assert.rejects(rejection, (error) => {
        assert.ok(error instanceof TypeError)
        assert.match(error.message, /^task must be a function, got /)
        return true
      })
      assert.equal(breaker.getTotalRequestCount(), 0)
    })
  }
})

describe('other members', () => {
  test('getSharedBuffer returns the SharedArrayBuffer under the array', () => {
    const array = newArray()
    assert.equal(new CircuitBreaker(array, 1, 1000).getSharedBuffer(), array.buffer)
  })

  test('failureThreshold and resetTimeout are read-only', () => {
    const breaker = new CircuitBreaker(newArray(), 3, 1000)
    assert.throws(() => {
      breaker.failureThreshold = 10
    }, TypeError)
    assert.throws(() => {
      breaker.resetTimeout = 10
    }, TypeError)
    assert.equal(breaker.failureThreshold, 3)
  })

  test('counters: requests are successes, failures and rejections', async () => {
    const breaker = new CircuitBreaker(newArray(), 2, 60000)
    await breaker.execute(ok(1))
    await breaker.execute(ok(1))
    await openBreaker(breaker)
    await breaker.execute(ok(1)).catch(() => {})
    assert.equal(breaker.getSuccessCount(), 2)
    assert.equal(breaker.getTotalRequestCount(), 5)
  })
})

describe('how successes reach shared memory', () => {
  // Raw sums of the per-thread stripes, read the way another thread would.
  function rawTotals(array) {
    const wide = new BigInt64Array(array.buffer, array.byteOffset)
    const sum = (name) =>
      Object.entries(CircuitBreakerKeys)
        .filter(([key]) => key === name || new RegExp(`^${name}_\\d$`).test(key))
        .reduce((total, [, index]) => total + Number(Atomics.load(wide, index / 2)), 0)
    return { requests: sum('TOTAL_REQUEST_COUNT'), successes: sum('SUCCESS_COUNT') }
  }

  test('by the end of the tick, or every 256 successes within one tick', async () => {
    const array = newArray()
    const breaker = new CircuitBreaker(array, 5, 60000)
    for (let i = 0; i < 300; i++) await breaker.execute(ok(i))
    // Still inside one tick (only microtasks ran): one batch of 256 is out.
    assert.deepEqual(rawTotals(array), { requests: 256, successes: 256 })
    await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(rawTotals(array), { requests: 300, successes: 300 })
    assert.ok(breaker.getLastSuccessTime() > 0)
  })

  test('a success that ends a run of failures reaches shared memory at once', async () => {
    const array = newArray()
    const breaker = new CircuitBreaker(array, 5, 60000)
    await breaker.execute(boom()).catch(() => {})
    assert.equal(Atomics.load(array, CircuitBreakerKeys.FAILURE_COUNT), 1)
    await breaker.execute(ok(1))
    assert.equal(Atomics.load(array, CircuitBreakerKeys.FAILURE_COUNT), 0)
    assert.deepEqual(rawTotals(array), { requests: 2, successes: 1 })
  })

  test('publishing a held-back success later does not wipe failures counted after it', async () => {
    const array = newArray()
    const breaker = new CircuitBreaker(array, 3, 60000)
    // One tick: a success (the run is 0, so it is held back), then two failures.
    await breaker.execute(ok(1))
    await breaker.execute(boom()).catch(() => {})
    await breaker.execute(boom()).catch(() => {})
    assert.equal(Atomics.load(array, CircuitBreakerKeys.FAILURE_COUNT), 2)
    await new Promise((resolve) => setImmediate(resolve)) // the success is published
    assert.equal(Atomics.load(array, CircuitBreakerKeys.FAILURE_COUNT), 2)
    assert.equal(rawTotals(array).successes, 1)
    await breaker.execute(boom()).catch(() => {})
    assert.equal(breaker.getState(), 'OPEN')
  })

  test('a thread reads all its own calls, through any breaker over the buffer', async () => {
    const array = newArray()
    const first = new CircuitBreaker(array, 5, 60000)
    const second = new CircuitBreaker(array, 5, 60000)
    await first.execute(ok(1))
    await second.execute(ok(2))
    assert.equal(second.getSuccessCount(), 2)
    assert.equal(first.getTotalRequestCount(), 2)
  })
})

describe('open rejections', () => {
  test('an ignored open rejection is still an unhandled rejection', () => {
    // In a child: the test runner treats unhandled rejections as its own failures.
    const script = `
      import CircuitBreaker, { createSharedArray } from 'shared-circuit-breaker'
      const breaker = new CircuitBreaker(createSharedArray(), 1, 60000)
      await breaker.execute(async () => { throw new Error('down') }).catch(() => {})
      process.on('unhandledRejection', (reason) => {
        console.log(reason.constructor.name, reason.code)
        process.exitCode = 7
      })
      breaker.execute(async () => 1) // ignored on purpose
    `
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url),
      encoding: 'utf8',
    })
    assert.equal(child.stderr, '')
    assert.equal(child.stdout.trim(), 'CircuitOpenError ERR_CIRCUIT_OPEN')
    assert.equal(child.status, 7)
  })
})

describe('costs', () => {
  test('the CLOSED path starts no timer and no other resource', async () => {
    const breaker = new CircuitBreaker(newArray(), 2, 60000)
    await breaker.execute(ok(0))
    const before = process.getActiveResourcesInfo().sort()
    const pending = Array.from({ length: 100 }, (_, i) => breaker.execute(ok(i)))
    assert.deepEqual(process.getActiveResourcesInfo().sort(), before)
    await Promise.all(pending)
    await openBreaker(breaker)
    await breaker.execute(ok(0)).catch(() => {})
    assert.deepEqual(process.getActiveResourcesInfo().sort(), before)
  })
})
