// Hosts of a fleet for the tests and the benchmark: each a process
// (__test__/fixtures/fleet-host.mjs) with its own breaker file and worker
// threads; and the mock dependency they call, an http server on loopback
// that counts calls and can be switched down, up or slow.
import { fork } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { before, after } from 'node:test'
import { startRedis } from './redis.mjs'

const HOST = new URL('../../fixtures/fleet-host.mjs', import.meta.url)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Resolves once `check()` is truthy (polled every 5 ms); rejects after `ms` with `what`. */
export async function until(check, ms, what) {
  const end = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(5)
  }
}

/**
 * The mock dependency: `{ url, calls, set(mode, delayMs), close() }`.
 * `calls` lists { host, by, at } (at: Date.now()); mode 'up' answers 200,
 * 'down' 500, 'slow' 200 after `delayMs`, 'hang' never.
 */
export async function startDependency() {
  let mode = 'up'
  let delay = 0
  const calls = []
  const hanging = new Set()
  const server = http.createServer((request, response) => {
    const query = new URL(request.url, 'http://x').searchParams
    calls.push({ host: query.get('host'), by: query.get('by'), at: Date.now() })
    if (mode === 'hang') return void hanging.add(response)
    const status = mode === 'down' ? 500 : 200
    if (mode === 'slow') setTimeout(() => response.writeHead(status).end(), delay)
    else response.writeHead(status).end()
  })
  server.keepAliveTimeout = 60000
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    calls,
    set(next, delayMs = 0) {
      mode = next
      delay = delayMs
    },
    close() {
      for (const response of hanging) response.destroy()
      server.closeAllConnections()
      server.close()
    },
  }
}

/**
 * A host process: `{ name, events, ask(cmd, args), waitEvent(event, since, ms), kill(signal), exited }`.
 * `events` lists what its main-thread breaker emitted.
 */
export async function startHost(name, settings) {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), `cbjs-fleet-${name}-`))
  const file = path.join(folder, 'host.breaker')
  const child = fork(HOST, [JSON.stringify({ host: name, file, ...settings })], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const events = []
  const pending = new Map()
  let next = 0
  let ready
  const started = new Promise((resolve, reject) => {
    ready = resolve
    child.once('exit', (code, signal) => reject(new Error(`host ${name} exited (${code ?? signal}) before it was ready`)))
  })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  child.on('message', (message) => {
    if (message.ready) return ready()
    if (message.event !== undefined) return void events.push({ ...message, at: BigInt(message.at) })
    pending.get(message.id)?.(message.result)
    pending.delete(message.id)
  })
  await started
  const host = {
    name,
    child,
    events,
    exited,
    ask(cmd, args = {}) {
      const id = next++
      return new Promise((resolve, reject) => {
        pending.set(id, resolve)
        child.send({ id, cmd, ...args }, (error) => error && reject(error))
        exited.then(({ code, signal }) => {
          if (pending.delete(id)) reject(new Error(`host ${name} exited (${code ?? signal}) during ${cmd}`))
        })
      })
    },
    /** The first `event` at index >= `since` in `events`, waiting up to `ms`. */
    waitEvent(event, since = 0, ms = 5000) {
      return until(() => events.slice(since).find((e) => e.event === event), ms, `${event} on ${name}`)
    },
    kill(signal = 'SIGKILL') {
      child.kill(signal)
      return exited
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.send({ id: -1, cmd: 'stop' })
      await exited
      fs.rmSync(folder, { recursive: true, force: true })
    },
  }
  return host
}

/** The settings the fleet tests use unless told otherwise. */
export const SETTINGS = { failureThreshold: 3, resetTimeout: 1000, quorum: 2, refresh: 200, lease: 2000, commandTimeout: 250 }

/** `count` hosts h0, h1, ... of the breaker `key` on the store at `store.url`. */
export async function fleetOf(count, store, dependency, key, extra = {}) {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      startHost(`h${i}`, { ...SETTINGS, url: store.url, dependency: dependency.url, key, ...extra }),
    ),
  )
}

/** Until every host's agent has read the record (its stats say connected). */
export async function connected(hosts, ms = 5000) {
  for (const host of hosts) {
    await until(async () => (await host.ask('stats')).fleet?.connected, ms, `${host.name} connected`)
  }
}

/**
 * For a suite: a redis-server and the mock dependency, started before its
 * tests and stopped after; `{ redis, dependency }` once started.
 */
export function storeAndDependency() {
  const world = {}
  before(async () => {
    world.redis = await startRedis()
    world.dependency = await startDependency()
  })
  after(async () => {
    world.dependency?.close()
    await world.redis?.stop()
  })
  return world
}
