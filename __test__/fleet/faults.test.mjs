// Fleet mode under faults, against real servers: a slow store, partitions
// through a TCP proxy (delay, drop, blackhole), CLIENT PAUSE, a 3-master
// Redis Cluster; operators acting on the whole fleet; the agent's life in a
// process. Skipped when redis-server is missing unless FLEET_TESTS_REQUIRED=1.
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { skipUnlessServer, startCluster } from './support/redis.mjs'
import { startProxy } from './support/proxy.mjs'
import { connected, fleetOf, storeAndDependency, until } from './support/hosts.mjs'

const skip = skipUnlessServer()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const INDEX = fileURLToPath(new URL('../../index.js', import.meta.url))

describe('fleet mode under faults', { skip }, () => {
  const world = storeAndDependency()

  test('through a proxy: a slow store still opens the fleet; past the command timeout, a drop and a blackhole degrade it; calls never fail; it recovers', async () => {
    const { redis, dependency } = world
    const proxy = await startProxy(redis.port)
    const hosts = await fleetOf(2, { url: `redis://127.0.0.1:${proxy.port}` }, dependency, 'proxied')
    try {
      await connected(hosts)
      proxy.setMode('delay', { delayMs: 60 })
      dependency.set('down')
      await hosts[0].ask('calls', { count: 3, main: true })
      await hosts[1].ask('calls', { count: 3, main: true })
      await until(async () => (await hosts[0].ask('stats')).fleet.state === 'open', 3000, 'the slow store opening the fleet')
      const client = await redis.client()
      await client.command('DEL', 'cb:{proxied}', 'cb:{proxied}:votes', 'cb:{proxied}:probe')
      client.close()
      await Promise.all(hosts.map((h) => h.ask('reset')))
      dependency.set('up')
      for (const [mode, options] of [['delay', { delayMs: 600 }], ['drop'], ['blackhole']]) {
        const since = hosts.map((h) => h.events.length)
        const load = hosts.map((host) => host.ask('calls', { ms: 1200, every: 5 }))
        proxy.setMode(mode, options)
        for (const [i, host] of hosts.entries()) {
          const degraded = await host.waitEvent('fleetDegraded', since[i], 3000)
          assert.match(degraded.payload.reason, /store/, `${mode}: ${degraded.payload.reason}`)
        }
        for (const outcome of await Promise.all(load)) {
          assert.equal(outcome.failed + outcome.rejected, 0, `${mode}: calls go on`)
        }
        proxy.setMode('pass')
        for (const [i, host] of hosts.entries()) await host.waitEvent('fleetRecovered', since[i], 6000)
      }
    } finally {
      dependency.set('up')
      await Promise.all(hosts.map((h) => h.stop()))
      await proxy.close()
    }
  })

  test('CLIENT PAUSE: the hosts degrade and run on their own, then recover', async () => {
    const { redis, dependency } = world
    const hosts = await fleetOf(2, redis, dependency, 'paused')
    try {
      await connected(hosts)
      const since = hosts.map((h) => h.events.length)
      const client = await redis.client()
      await client.command('CLIENT', 'PAUSE', '1500', 'ALL')
      const outcomes = await Promise.all(hosts.map((host) => host.ask('calls', { ms: 1000, every: 5 })))
      for (const [i, host] of hosts.entries()) await host.waitEvent('fleetDegraded', since[i], 3000)
      for (const o of outcomes) assert.equal(o.failed + o.rejected, 0)
      for (const [i, host] of hosts.entries()) await host.waitEvent('fleetRecovered', since[i], 6000)
      client.close()
    } finally {
      await Promise.all(hosts.map((h) => h.stop()))
    }
  })

  test('isolate(), release, disable() and reset() on one host act on every host', async () => {
    const { redis, dependency } = world
    const hosts = await fleetOf(3, redis, dependency, 'operators', { resetTimeout: 60000 })
    try {
      await connected(hosts)
      const since = hosts[2].events.length
      await hosts[0].ask('isolate')
      assert.equal(await hosts[0].ask('state'), 'OPEN', 'at once, locally')
      await until(async () => (await hosts[2].ask('state')) === 'OPEN', 3000, 'the isolation on h2')
      assert.equal((await hosts[2].waitEvent('open', since)).payload.fleet, true)
      await hosts[0].ask('release')
      await until(async () => (await hosts[2].ask('state')) === 'CLOSED', 3000, 'the release on h2')
      // The isolation's opening was no trip vote: one host tripping now is
      // still one vote.
      dependency.set('down')
      await hosts[1].ask('calls', { count: 3, main: true })
      assert.equal(await hosts[1].ask('state'), 'OPEN')
      await sleep(500)
      assert.equal(await hosts[2].ask('state'), 'CLOSED', 'no quorum from an isolation')
      await hosts[1].ask('reset')
      dependency.set('up')
      await hosts[1].ask('disable')
      await until(async () => (await hosts[2].ask('stats')).disabled, 3000, 'disabled on h2')
      dependency.set('down')
      assert.deepEqual(await hosts[2].ask('calls', { count: 6, main: true }), { ok: 0, failed: 6, rejected: 0 }, 'never opens')
      await hosts[1].ask('enable')
      await until(async () => !(await hosts[2].ask('stats')).disabled, 3000, 'enabled on h2')
      await hosts[0].ask('calls', { count: 3, main: true })
      await hosts[2].ask('calls', { count: 3, main: true })
      await until(async () => (await hosts[1].ask('state')) === 'OPEN', 3000, 'the quorum on h1')
      await hosts[1].ask('reset')
      for (const host of hosts) await until(async () => (await host.ask('state')) === 'CLOSED', 3000, `reset on ${host.name}`)
    } finally {
      dependency.set('up')
      await Promise.all(hosts.map((h) => h.stop()))
    }
  })

  test('a 3-master Redis Cluster: the quorum opens every host', async () => {
    const { redis, dependency } = world
    const cluster = await startCluster()
    const hosts = await fleetOf(3, cluster, dependency, 'clustered', { cluster: true })
    try {
      await connected(hosts, 10000)
      dependency.set('down')
      await hosts[0].ask('calls', { count: 3, main: true })
      await hosts[1].ask('calls', { count: 3, main: true })
      const opened = await hosts[2].waitEvent('open', 0, 5000)
      assert.equal(opened.payload.fleet, true)
    } finally {
      dependency.set('up')
      await Promise.all(hosts.map((h) => h.stop()))
      await cluster.stop()
    }
  })

  test('one process: 2 store connections for 3 breakers in 3 threads; the last dispose() stops the agent; the process exits by itself', async () => {
    const { redis, dependency } = world
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'cbjs-agent-life-'))
    const script = `
const fs = require('node:fs')
const { Worker } = require('node:worker_threads')
const { CircuitBreaker } = require(${JSON.stringify(INDEX)})
const options = { fleet: { url: ${JSON.stringify(redis.url)}, key: 'life', host: 'life' } }
const file = ${JSON.stringify(path.join(folder, 'life.breaker'))}
const agents = () => fs.readdirSync('/proc/self/task').filter((t) => {
  try { return fs.readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim() === 'breaker-fleet' } catch { return false }
}).length
const breaker = CircuitBreaker.fromFile(file, options)
const code = 'const { parentPort, workerData } = require("node:worker_threads"); const { CircuitBreaker } = require(workerData.index);' +
  'const b = CircuitBreaker.fromFile(workerData.file, workerData.options); parentPort.once("message", () => { b.dispose(); parentPort.close() }); parentPort.postMessage(1)'
const workers = [0, 1].map(() => new Worker(code, { eval: true, workerData: { index: ${JSON.stringify(INDEX)}, file, options } }))
Promise.all(workers.map((w) => new Promise((r) => w.once('message', r)))).then(async () => {
  const until = async (check) => { for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10)) }
  await until(() => breaker.getStats().fleet.connected)
  process.stdout.write(JSON.stringify({ agents: agents(), connected: breaker.getStats().fleet.connected }) + '\\n')
  process.stdin.once('data', async () => {
    for (const w of workers) w.postMessage('bye')
    await Promise.all(workers.map((w) => new Promise((r) => w.once('exit', r))))
    breaker.dispose()
    await until(() => agents() === 0)
    process.stdout.write(JSON.stringify({ agents: agents() }) + '\\n')
    process.stdin.destroy()
  })
})
`
    const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] })
    const lines = []
    child.stdout.setEncoding('utf8').on('data', (chunk) => lines.push(...chunk.trim().split('\n')))
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
    try {
      await until(() => lines.length >= 1, 10000, 'the process connected')
      assert.deepEqual(JSON.parse(lines[0]), { agents: 1, connected: true })
      const client = await redis.client()
      const list = await client.command('CLIENT', 'LIST')
      client.close()
      // Every client but this test's one is the process's agent.
      assert.equal(list.trim().split('\n').length - 1, 2, list)
      child.stdin.write('go\n')
      await until(() => lines.length >= 2, 10000, 'the dispose')
      assert.deepEqual(JSON.parse(lines[1]), { agents: 0 })
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000)
      assert.deepEqual(await exited, { code: 0, signal: null }, 'exited by itself')
      clearTimeout(timer)
    } finally {
      child.kill('SIGKILL')
      fs.rmSync(folder, { recursive: true, force: true })
    }
  })
})
