// One breaker across processes, over a memory-mapped breaker file.
import { test, describe, after } from 'node:test'
import assert from 'node:assert/strict'
import { fork, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import CircuitBreaker, { CircuitBreakerKeys, CircuitOpenError, openBreakerFile } from 'shared-circuit-breaker'

const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir()
const folder = fs.mkdtempSync(path.join(base, 'cbjs-test-'))
after(() => fs.rmSync(folder, { recursive: true, force: true }))
let files = 0
const newPath = () => path.join(folder, `breaker-${files++}`)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const fixture = new URL('./fixtures/file-process.mjs', import.meta.url)
const FILE_BYTES = 64 + Object.keys(CircuitBreakerKeys).length * 4
// Temporary files a creation left behind in `dir`.
const temporaries = (dir) => fs.readdirSync(dir).filter((name) => name.startsWith('.cbjs-'))
const root = new URL('..', import.meta.url)
// Runs CommonJS `script` in a child process (through bash when `shell`
// prefixes it, e.g. with a ulimit); its stdout parsed as JSON.
function runChild(script, { shell } = {}) {
  const run = shell === undefined
    ? spawnSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' })
    : spawnSync('bash', ['-c', `${shell}; exec "$0" -e "$1"`, process.execPath, script], { cwd: root, encoding: 'utf8' })
  assert.equal(run.status, 0, `exit ${run.status} ${run.signal ?? ''}: ${run.stderr}`)
  return JSON.parse(run.stdout)
}

// A child process over the breaker file, driven by commands over IPC.
function child(file, failureThreshold, resetTimeout) {
  const process = fork(fixture, [file, String(failureThreshold), String(resetTimeout)], {
    cwd: new URL('..', import.meta.url),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const pending = new Map()
  let next = 0
  const exited = new Promise((resolve) => process.once('exit', (code, signal) => resolve({ code, signal })))
  const ready = new Promise((resolve, reject) => {
    process.once('exit', (code) => reject(new Error(`child exited early with ${code}`)))
    process.on('message', (message) => {
      if (message.ready) return resolve()
      const { resolve: done, reject: fail } = pending.get(message.id)
      pending.delete(message.id)
      if (message.error) fail(new Error(message.error))
      else done(message.result)
    })
  })
  return {
    process,
    exited,
    ready,
    run(command, args) {
      const id = next++
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject })
        process.send({ id, command, args })
      })
    },
    end() {
      process.disconnect()
      return exited
    },
  }
}

async function children(count, ...settings) {
  const all = Array.from({ length: count }, () => child(...settings))
  await Promise.all(all.map((c) => c.ready))
  return all
}

describe('a breaker file shared by processes', () => {
  test('a failure burst in one process opens it for all; then exactly one probe runs across all', async () => {
    const file = newPath()
    const resetTimeout = 2000
    const all = await children(4, file, 3, resetTimeout)
    try {
      assert.deepEqual(await all[0].run('fail', { times: 3 }), { state: 'OPEN' })
      const openedAt = Date.now()
      for (const c of all) {
        assert.deepEqual(await c.run('tryOnce'), { ran: false, outcome: 'open', state: 'OPEN' })
      }
      // Every process calls in a tight loop from the moment the reset timeout
      // has passed; the one task that runs fails after 300 ms, so the breaker
      // opens again for 2 s, well past the 800 ms of calling.
      await sleep(Math.max(0, openedAt + resetTimeout + 50 - Date.now()))
      const results = await Promise.all(all.map((c) => c.run('hammer', { ms: 800, taskMs: 300 })))
      const ran = results.reduce((sum, r) => sum + r.ran, 0)
      assert.equal(ran, 1, JSON.stringify(results))
      assert.ok(results.every((r) => r.refused > 0), JSON.stringify(results))
      assert.equal(CircuitBreaker.fromFile(file).getState(), 'OPEN')
    } finally {
      await Promise.all(all.map((c) => c.end()))
    }
  })

  test('counts add up exactly after 4 x 100,000 calls in 4 processes', async () => {
    const file = newPath()
    const all = await children(4, file, 1e9, 60000)
    let results
    try {
      results = await Promise.all(all.map((c) => c.run('count', { calls: 100_000, failEvery: 50 })))
    } finally {
      await Promise.all(all.map((c) => c.end()))
    }
    for (const r of results) assert.deepEqual(r, { succeeded: 98_000, failed: 2_000 })
    const breaker = CircuitBreaker.fromFile(file, { failureThreshold: 1e9 })
    assert.equal(breaker.getTotalRequestCount(), 400_000)
    assert.equal(breaker.getSuccessCount(), 392_000)
    assert.equal(breaker.getState(), 'CLOSED')
  })

  test('a process killed with SIGKILL while holding the probe: the breaker recovers after the lease', async () => {
    const file = newPath()
    const resetTimeout = 1500
    const breaker = CircuitBreaker.fromFile(file, { failureThreshold: 1, resetTimeout })
    const [holder] = await children(1, file, 1, resetTimeout)
    breaker.transitionToHalfOpen()
    assert.deepEqual(await holder.run('holdProbe'), { probing: true })
    const probingSince = Date.now()
    holder.process.kill('SIGKILL')
    assert.deepEqual(await holder.exited, { code: null, signal: 'SIGKILL' })
    // The dead process's lease holds for resetTimeout: meanwhile calls are refused.
    let ran = false
    await assert.rejects(breaker.execute(async () => (ran = true)), CircuitOpenError)
    assert.equal(ran, false)
    // Then the next caller probes, and its success closes the breaker.
    let value
    while (value === undefined) {
      value = await breaker.execute(async () => 'probed').catch(() => undefined)
      if (value === undefined) await sleep(20)
      assert.ok(Date.now() - probingSince < resetTimeout + 5000, 'never recovered')
    }
    assert.equal(value, 'probed')
    assert.ok(Date.now() - probingSince >= resetTimeout - 50)
    assert.equal(breaker.getState(), 'CLOSED')
  })

  test('processes that create the same new file at once all join one breaker', async () => {
    const file = newPath()
    const script = `
      import CircuitBreaker from 'shared-circuit-breaker'
      const breaker = CircuitBreaker.fromFile(${JSON.stringify(file)})
      for (let i = 0; i < 1000; i++) await breaker.execute(async () => i)
    `
    const starts = Array.from({ length: 6 }, () =>
      new Promise((resolve) => {
        const c = fork('--input-type=module', [], { execArgv: ['-e', script], cwd: new URL('..', import.meta.url) })
        c.on('exit', resolve)
      }),
    )
    assert.deepEqual(await Promise.all(starts), [0, 0, 0, 0, 0, 0])
    assert.equal(CircuitBreaker.fromFile(file).getTotalRequestCount(), 6000)
    assert.deepEqual(fs.readdirSync(folder).filter((name) => name.startsWith(path.basename(file))), [path.basename(file)])
    assert.deepEqual(temporaries(folder), [])
  })
})

describe('policies and events over a breaker file', () => {
  const run = (file, options, code) =>
    spawnSync(
      process.execPath,
      ['-e', `const { CircuitBreaker } = require('./index.js')
const breaker = CircuitBreaker.fromFile(${JSON.stringify(file)}, ${JSON.stringify(options)});
${code}`],
      { cwd: new URL('..', import.meta.url), encoding: 'utf8' },
    )

  test("another process's transition reaches this process's listeners", async () => {
    const file = newPath()
    const options = { failureThreshold: 1, resetTimeout: 60000 }
    const breaker = CircuitBreaker.fromFile(file, options)
    const seen = []
    breaker.on('open', (change) => seen.push(change.state))
    const child = run(file, options, 'breaker.execute(() => Promise.reject(new Error("down"))).catch(() => {})')
    assert.equal(child.status, 0, child.stderr)
    const deadline = Date.now() + 5000
    while (seen.length === 0 && Date.now() < deadline) await sleep(10)
    await sleep(100)
    assert.deepEqual(seen, ['OPEN'], 'once, by polling the file')
    breaker.dispose()
  })

  test("a state event heard here names the process that made the transition, and its thread", async () => {
    const file = newPath()
    const breaker = CircuitBreaker.fromFile(file, { failureThreshold: 2, resetTimeout: 60000 })
    const heard = new Promise((resolve) => breaker.once('open', resolve))
    const other = child(file, 2, 60000)
    try {
      await other.ready
      assert.deepEqual(await other.run('fail', { times: 2 }), { state: 'OPEN' })
      const change = await heard
      assert.notEqual(other.process.pid, process.pid)
      assert.deepEqual(
        { state: change.state, threadId: change.threadId, pid: change.pid },
        { state: 'OPEN', threadId: 0, pid: other.process.pid },
      )
      // And a transition made here names this process.
      const closed = new Promise((resolve) => breaker.once('close', resolve))
      breaker.reset()
      assert.equal((await closed).pid, process.pid)
    } finally {
      other.process.kill()
      breaker.dispose()
    }
  })

  test('a failure-rate window and a histogram live in the file, shared by processes', () => {
    const file = newPath()
    const options = { failureRateThreshold: 50, minimumCalls: 4, histogram: true, resetTimeout: 60000 }
    const breaker = CircuitBreaker.fromFile(file, options)
    assert.equal(fs.statSync(file).size, 64 + CircuitBreaker.arrayLength(options) * 4)
    for (let i = 0; i < 2; i++) {
      const child = run(file, options, `(async () => {
        await breaker.execute(async () => 'ok')
        await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})
      })()`)
      assert.equal(child.status, 0, child.stderr)
    }
    const stats = breaker.getStats()
    assert.deepEqual(stats.window, { calls: 4, failures: 2, failureRate: 50 })
    assert.equal(stats.state, 'OPEN')
    assert.equal(stats.latency.count, 4)
    assert.throws(() => CircuitBreaker.fromFile(file, { histogram: true }), /already used by breakers with a window/)
    breaker.dispose()
  })
})

describe('breaker files', () => {
  test('are created with mode 0600, or exactly the mode asked for', () => {
    const first = newPath()
    openBreakerFile(first)
    assert.equal(fs.statSync(first).mode & 0o7777, 0o600)
    assert.equal(fs.statSync(first).size, FILE_BYTES)
    const second = newPath()
    openBreakerFile(second, { mode: 0o664 })
    assert.equal(fs.statSync(second).mode & 0o7777, 0o664)
  })

  test('a second open of the same path in one thread shares the same slots', async () => {
    const file = newPath()
    const one = CircuitBreaker.fromFile(file, { failureThreshold: 1 })
    const two = CircuitBreaker.fromFile(new URL(`file://${file}`), { failureThreshold: 1 })
    await one.execute(async () => Promise.reject(new Error('down'))).catch(() => {})
    assert.equal(two.getState(), 'OPEN')
    assert.ok(two.getSharedBuffer() instanceof ArrayBuffer)
  })

  test('the mapping is released when the last breaker and array are collected, or at dispose()', () => {
    // In a child with --expose-gc; /proc/self/maps lists what is mapped.
    if (!fs.existsSync('/proc/self/maps')) return
    const file = newPath()
    const script = `
      const fs = require('node:fs')
      const { CircuitBreaker, openBreakerFile } = require('shared-circuit-breaker')
      const mapped = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes(${JSON.stringify(file)})).length
      const settle = async () => { for (let i = 0; i < 4; i++) { gc(); await new Promise((r) => setImmediate(r)) } }
      ;(async () => {
        const seen = []
        let breakers = [CircuitBreaker.fromFile(${JSON.stringify(file)}), CircuitBreaker.fromFile(${JSON.stringify(file)})]
        seen.push(mapped())                 // one mapping, shared by both
        breakers = null
        await settle()
        seen.push(mapped())                 // collected: both released
        globalThis.keep = await (async () => {
          const array = openBreakerFile(${JSON.stringify(file)})
          const breaker = new CircuitBreaker(array, 1, 1000)
          await breaker.execute(async () => 1)
          seen.push(mapped())               // mapped again
          breaker.dispose()
          seen.push(mapped())               // the array still holds it
          return breaker                    // the disposed breaker lives on; the array does not
        })()
        await settle()
        seen.push(mapped())                 // array collected, breaker disposed: released
        console.log(JSON.stringify(seen))
      })()
    `
    const run = spawnSync(process.execPath, ['--expose-gc', '-e', script], { cwd: new URL('..', import.meta.url), encoding: 'utf8' })
    assert.equal(run.stderr, '')
    assert.deepEqual(JSON.parse(run.stdout), [1, 0, 1, 1, 0])
    assert.equal(fs.statSync(file).size, FILE_BYTES) // the file itself stays
  })

  test('a disposed breaker refuses calls with a TypeError and leaves the shared state alone', async () => {
    const file = newPath()
    const one = CircuitBreaker.fromFile(file, { failureThreshold: 1 })
    const two = CircuitBreaker.fromFile(file, { failureThreshold: 1 })
    await one.execute(async () => 1)
    one.dispose()
    one.dispose() // idempotent
    await assert.rejects(one.execute(async () => 1), { name: 'TypeError', message: 'this circuit breaker was disposed' })
    assert.throws(() => one.getState(), { name: 'TypeError', message: 'this circuit breaker was disposed' })
    assert.throws(() => one.getTotalRequestCount(), TypeError)
    assert.equal(two.getTotalRequestCount(), 1)
    await two.execute(async () => Promise.reject(new Error('down'))).catch(() => {})
    assert.equal(two.getState(), 'OPEN')
  })

  test('fromFile checks the breaker options before it creates a file', () => {
    const file = newPath()
    assert.throws(() => CircuitBreaker.fromFile(file, { failureThreshold: -1 }), RangeError)
    assert.throws(() => CircuitBreaker.fromFile(file, { openFallback: 'no' }), TypeError)
    assert.equal(fs.existsSync(file), false)
  })

  test('create: false does not create a file', () => {
    const file = newPath()
    assert.throws(() => openBreakerFile(file, { create: false }), { code: 'ENOENT' })
    assert.equal(fs.existsSync(file), false)
  })

  const image = () => {
    const file = newPath()
    openBreakerFile(file)
    return fs.readFileSync(file)
  }
  const badFiles = [
    ['wrong magic', () => Buffer.concat([Buffer.from('NOTABRKR'), image().subarray(8)]), /is not a circuit-breaker-js file/],
    ['wrong version', () => { const b = image(); b.writeUInt32LE(99, 8); return b }, /format version 99; this build reads version 1/],
    ['another layout', () => { const b = image(); b.writeUInt32LE(7, 16); return b }, /another layout .* 7 slots/],
    ['truncated', () => image().subarray(0, FILE_BYTES - 4), new RegExp(`is ${FILE_BYTES - 4} bytes long; a breaker file is at least ${FILE_BYTES} bytes, as long as its header says`)],
    ['too long', () => Buffer.concat([image(), Buffer.alloc(8)]), new RegExp(`is ${FILE_BYTES + 8} bytes long; its header says ${FILE_BYTES} bytes`)],
    ['empty', () => Buffer.alloc(0), /is 0 bytes long/],
    ['text', () => Buffer.from('hello, world\n'), /is 13 bytes long/],
  ]
  for (const [what, content, message] of badFiles) {
    test(`a file with ${what} is refused with a clear error and left untouched`, () => {
      const file = newPath()
      const bytes = content()
      fs.writeFileSync(file, bytes)
      const modified = fs.statSync(file).mtimeMs
      assert.throws(() => CircuitBreaker.fromFile(file), (error) => {
        assert.equal(error.code, 'ERR_CIRCUIT_BREAKER_FILE')
        assert.equal(error.path, file)
        assert.match(error.message, message)
        assert.ok(error.message.startsWith(`circuit-breaker-js: the file ${file} `))
        return true
      })
      assert.deepEqual(fs.readFileSync(file), bytes)
      assert.equal(fs.statSync(file).mtimeMs, modified)
    })
  }

  test('a directory is refused', () => {
    assert.throws(() => openBreakerFile(folder), { code: 'EISDIR' })
  })

  test('a file this user may not write is refused and left untouched', () => {
    let file = newPath()
    if (process.getuid?.() === 0) {
      // root may write anything: try as an unprivileged user instead, on a
      // file it may read, in a folder it may search (the test folder is 0700).
      const open = fs.mkdtempSync(path.join(base, 'cbjs-test-readable-'))
      after(() => fs.rmSync(open, { recursive: true, force: true }))
      fs.chmodSync(open, 0o755)
      file = path.join(open, 'breaker')
      openBreakerFile(file, { mode: 0o644 })
      fs.chmodSync(file, 0o644)
    } else {
      openBreakerFile(file)
    }
    const before = fs.readFileSync(file)
    if (process.getuid?.() === 0) {
      // The module is loaded before the child drops its rights: the checkout
      // may sit where that user cannot read (a 0700 folder, /root).
      const script = `
        const { openBreakerFile } = require('shared-circuit-breaker')
        process.setgid(65534); process.setuid(65534)
        try { openBreakerFile(${JSON.stringify(file)}); console.log('opened') }
        catch (error) { console.log(error.code) }
      `
      const run = spawnSync(process.execPath, ['-e', script], { cwd: new URL('..', import.meta.url), encoding: 'utf8' })
      assert.equal(run.stdout.trim(), 'EACCES', run.stderr)
    } else {
      fs.chmodSync(file, 0o400)
      assert.throws(() => openBreakerFile(file), { code: 'EACCES' })
    }
    assert.deepEqual(fs.readFileSync(file), before)
  })

  test('bad arguments are TypeErrors and RangeErrors naming them', () => {
    for (const bad of [undefined, null, 42, '', {}, 'a\0b']) {
      assert.throws(() => openBreakerFile(bad), (error) => error instanceof TypeError && /^path must be/.test(error.message))
    }
    assert.throws(() => openBreakerFile(newPath(), { create: 'yes' }), /^TypeError: options.create must be a boolean/)
    assert.throws(() => openBreakerFile(newPath(), { mode: -1 }), /^RangeError: options.mode must be an integer from 0 to 0o777 \(permission bits only\), got -1$/)
    assert.throws(() => openBreakerFile(newPath(), { mode: '600' }), /^TypeError: options.mode must be a number/)
    assert.throws(() => openBreakerFile(newPath(), { followSymlinks: 1 }), /^TypeError: options.followSymlinks must be a boolean, got the number 1$/)
  })

  test('a mode with bits outside 0o777 (setuid, setgid, sticky) is refused before any file is made', () => {
    for (const mode of [0o6777, 0o4600, 0o2600, 0o1666, 0o10000]) {
      const file = newPath()
      assert.throws(() => openBreakerFile(file, { mode }), {
        name: 'RangeError',
        message: `options.mode must be an integer from 0 to 0o777 (permission bits only), got 0o${mode.toString(8)}`,
      })
      assert.throws(() => CircuitBreaker.fromFile(file, { mode }), RangeError)
      assert.equal(fs.existsSync(file), false)
    }
    const file = newPath()
    openBreakerFile(file, { mode: 0o777 })
    assert.equal(fs.statSync(file).mode & 0o7777, 0o777)
  })
})

describe('breaker files: writing, names, links and mappings', () => {
  // 64 + 2,512 slots x 4 bytes: longer than the 4 KiB `ulimit -f 4` allows.
  const histogram = { histogram: true }
  const HISTOGRAM_BYTES = 64 + CircuitBreaker.arrayLength(histogram) * 4

  // Node ignores SIGXFSZ itself; the trap makes sure the write fails with
  // EFBIG instead of killing the child whatever Node does.
  const underFileSizeLimit = (file, { reserve }) =>
    runChild(
      `const native = require('./lib/native.js')
      ${reserve ? '' : 'native.reserveFile = () => 0 // as where posix_fallocate is missing'}
      const { CircuitBreaker } = require('shared-circuit-breaker')
      try {
        CircuitBreaker.fromFile(${JSON.stringify(file)}, { histogram: true })
        console.log(JSON.stringify({ opened: true }))
      } catch (error) {
        console.log(JSON.stringify({ code: error.code, syscall: error.syscall, path: error.path, message: error.message }))
      }`,
      { shell: "trap '' XFSZ; ulimit -f 4" },
    )

  for (const reserve of [true, false]) {
    test(`a file the size limit cuts short is never linked into place; the error names the path${reserve ? '' : ' (no block reserve)'}`, () => {
      const dir = fs.mkdtempSync(path.join(folder, 'limit-'))
      const file = path.join(dir, 'breaker')
      assert.ok(HISTOGRAM_BYTES > 4096)
      const result = underFileSizeLimit(file, { reserve })
      assert.deepEqual(result, {
        code: 'EFBIG',
        syscall: reserve ? 'fallocate' : 'write',
        path: file,
        message: `EFBIG: file too large, ${reserve ? 'fallocate' : 'write'} '${file}'`,
      })
      assert.deepEqual(fs.readdirSync(dir), [], 'neither a truncated file nor a temporary one is left')
      // Without the limit the same path then works.
      const breaker = CircuitBreaker.fromFile(file, histogram)
      assert.equal(fs.statSync(file).size, HISTOGRAM_BYTES)
      breaker.dispose()
    })
  }

  test('a full filesystem fails the creation with ENOSPC and links nothing', (t) => {
    // A 16 KiB tmpfs with 8 KiB free, in a mount namespace of its own.
    const probe = spawnSync('unshare', ['-rm', 'mount', '-t', 'tmpfs', 'tmpfs', folder], { encoding: 'utf8' })
    if (probe.status !== 0) return t.skip(`no private tmpfs here (unshare -rm: ${probe.stderr.trim() || probe.error?.code})`)
    const dir = fs.mkdtempSync(path.join(folder, 'full-'))
    const file = path.join(dir, 'breaker')
    const script = `
      const fs = require('node:fs')
      const { CircuitBreaker } = require('shared-circuit-breaker')
      fs.writeFileSync(${JSON.stringify(path.join(dir, 'fill'))}, Buffer.alloc(8192))
      let result
      try {
        CircuitBreaker.fromFile(${JSON.stringify(file)}, { histogram: true })
        result = { opened: true }
      } catch (error) {
        result = { code: error.code, path: error.path }
      }
      console.log(JSON.stringify({ result, left: fs.readdirSync(${JSON.stringify(dir)}) }))`
    const run = spawnSync(
      'unshare',
      ['-rm', 'sh', '-c', `mount -t tmpfs -o size=16k tmpfs "$1" && exec "$0" -e "$2"`, process.execPath, dir, script],
      { cwd: root, encoding: 'utf8' },
    )
    assert.equal(run.status, 0, run.stderr)
    assert.deepEqual(JSON.parse(run.stdout), { result: { code: 'ENOSPC', path: file }, left: ['fill'] })
  })

  test('names of 240 to 255 bytes work; a longer one fails naming the path given', () => {
    const dir = fs.mkdtempSync(path.join(folder, 'names-'))
    for (const length of [240, 250, 255]) {
      const file = path.join(dir, 'n'.repeat(length))
      const breaker = CircuitBreaker.fromFile(file, { failureThreshold: 1 })
      assert.equal(fs.statSync(file).size, FILE_BYTES)
      breaker.dispose()
    }
    const tooLong = path.join(dir, 'n'.repeat(256))
    assert.throws(() => openBreakerFile(tooLong), { code: 'ENAMETOOLONG', path: tooLong })
    assert.deepEqual(temporaries(dir), [])
  })

  test('an error while creating names the path given, not a temporary file', () => {
    const missing = path.join(folder, 'no-such-folder', 'breaker')
    assert.throws(() => openBreakerFile(missing), { code: 'ENOENT', path: missing, message: `ENOENT: no such file or directory, open '${missing}'` })
    // A folder this user may read but not write (as root: as nobody, in a child).
    fs.chmodSync(folder, 0o711)
    const dir = fs.mkdtempSync(path.join(folder, 'readonly-'))
    fs.chmodSync(dir, 0o555)
    const file = path.join(dir, 'breaker')
    const result = runChild(`
      // Loaded first: as nobody, the checkout itself may be out of reach (a 0700 folder).
      const { openBreakerFile } = require('shared-circuit-breaker')
      if (process.getuid() === 0) { process.setgid(65534); process.setuid(65534) }
      try { openBreakerFile(${JSON.stringify(file)}); console.log('{}') }
      catch (error) { console.log(JSON.stringify({ code: error.code, path: error.path, message: error.message })) }`)
    assert.deepEqual(result, { code: 'EACCES', path: file, message: `EACCES: permission denied, open '${file}'` })
  })

  test('a symbolic link is refused, and its target left alone, unless followSymlinks: true', async () => {
    const target = newPath()
    const owner = CircuitBreaker.fromFile(target, { failureThreshold: 1 })
    const before = fs.readFileSync(target)
    const link = newPath()
    fs.symlinkSync(target, link)
    const refused = { code: 'ERR_CIRCUIT_BREAKER_FILE', path: link, message: `circuit-breaker-js: the file ${link} is a symbolic link; pass followSymlinks: true to open the file it points to` }
    assert.throws(() => openBreakerFile(link), refused)
    assert.throws(() => CircuitBreaker.fromFile(link), refused)
    assert.throws(() => openBreakerFile(link, { create: false, followSymlinks: false }), refused)
    assert.deepEqual(fs.readFileSync(target), before)
    // Asked to follow it, the link leads to the target's breaker.
    const follower = CircuitBreaker.fromFile(link, { failureThreshold: 1, followSymlinks: true })
    await follower.execute(async () => Promise.reject(new Error('down'))).catch(() => {})
    assert.equal(owner.getState(), 'OPEN')
    follower.dispose()
    owner.dispose()
  })

  test('a dangling symbolic link is refused, and nothing is created where it points', () => {
    const target = newPath()
    const link = newPath()
    fs.symlinkSync(target, link)
    assert.throws(() => openBreakerFile(link), { code: 'ERR_CIRCUIT_BREAKER_FILE', path: link, message: /is a symbolic link/ })
    assert.throws(() => openBreakerFile(link, { followSymlinks: true }), { code: 'ENOENT' })
    assert.equal(fs.existsSync(target), false)
    assert.equal(fs.lstatSync(link).isSymbolicLink(), true)
  })

  test('70,000 opens and disposes in a loop that never yields keep one mapping, shared by every name of the file', () => {
    // vm.max_map_count is 65,530 by default: a mapping per open would abort.
    if (!fs.existsSync('/proc/self/maps')) return
    const file = newPath()
    const hardLink = newPath()
    const result = runChild(`
      const fs = require('node:fs')
      const { CircuitBreaker, openBreakerFile } = require('shared-circuit-breaker')
      const file = ${JSON.stringify(file)}
      const mapped = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((line) => line.includes(file)).length
      const counts = []
      for (let i = 0; i < 70000; i++) {
        CircuitBreaker.fromFile(file).dispose()
        if (i % 10000 === 0) counts.push(mapped())
      }
      fs.linkSync(file, ${JSON.stringify(hardLink)})
      const array = openBreakerFile(${JSON.stringify(hardLink)})
      counts.push(mapped())
      console.log(JSON.stringify(counts))`)
    assert.deepEqual(result, [1, 1, 1, 1, 1, 1, 1, 1])
  })
})
