#!/usr/bin/env node
// The fleet benchmark (issue 16): what fleet mode costs and how fast it is.
//
//   node bench/fleet.mjs [--smoke] [--json FILE]
//
//   propagation_ms {p50, p99}     a quorum-reaching failure on one host to the
//                                 `open` event on another (4 hosts, quorum 2;
//                                 200 trips, 2 listening hosts each)
//   store_commands_per_million_calls {closed, open}
//                                 store commands (INFO commandstats) per
//                                 million CLOSED calls / OPEN rejections
//   closed_ratio_fleet_vs_local   time per CLOSED call, fleet breaker over a
//                                 local one, same process, rounds alternating
//                                 (closed_ratio_local_vs_local: the same for
//                                 two local breakers, the noise floor)
//   cross_process_event_ms {p50, p99}
//                                 a transition in one process to the listener
//                                 in another, over a breaker file (1,000)
//
// Hosts are processes (__test__/fixtures/fleet-host.mjs) with their own
// breaker files, on one machine's loopback; times come from one monotonic
// clock. --smoke runs fewer of everything (about 20 s) for CI. Needs
// redis-server on the PATH.
import fs from 'node:fs'
import { CircuitBreaker } from '../index.js'
import { missingServer, startRedis } from '../__test__/fleet/support/redis.mjs'
import { commandCalls } from '../__test__/fleet/support/resp.mjs'
import { fleetOf, startDependency, until } from '../__test__/fleet/support/hosts.mjs'
import { crossProcessLatency, percentile } from '../__test__/support/file-events.mjs'

const args = process.argv.slice(2)
const smoke = args.includes('--smoke')
const jsonAt = args.indexOf('--json')
const jsonFile = jsonAt >= 0 ? args[jsonAt + 1] : undefined
if (jsonAt >= 0 && jsonFile === undefined) {
  console.error('usage: node bench/fleet.mjs [--smoke] [--json FILE]')
  process.exit(2)
}
const missing = missingServer()
if (missing !== undefined) {
  console.error(`bench:fleet needs redis-server (${missing}); install it (apt-get install redis-server, brew install redis)`)
  process.exit(smoke ? 0 : 1)
}

const TRIPS = smoke ? 30 : 200
const CALLS = smoke ? 100_000 : 1_000_000
const EVENTS = smoke ? 300 : 1000
const RATIO_ROUNDS = smoke ? 5 : 15
const RATIO_CALLS = smoke ? 50_000 : 200_000

const round3 = (x) => Math.round(x * 1000) / 1000
const summary = (samples) => {
  const sorted = [...samples].sort((a, b) => a - b)
  return { p50: round3(percentile(sorted, 0.5)), p99: round3(percentile(sorted, 0.99)) }
}

async function propagation(redis, dependency) {
  const hosts = await fleetOf(4, redis, dependency, 'bench-propagation', { failureThreshold: 1, resetTimeout: 600000, workers: 1 })
  const client = await redis.client()
  const samples = []
  try {
    for (const host of hosts) await until(async () => (await host.ask('stats')).fleet?.connected, 10000, 'connected')
    for (let trip = 0; trip < TRIPS; trip++) {
      const [a, b, ...listeners] = trip % 2 === 0 ? hosts : [...hosts].reverse()
      await a.ask('trip')
      await until(async () => Number(await client.command('ZCARD', 'cb:{bench-propagation}:votes')) === 1, 5000, 'the first vote')
      const since = listeners.map((h) => h.events.length)
      const at = BigInt(await b.ask('trip'))
      for (const [i, host] of listeners.entries()) {
        const opened = await host.waitEvent('open', since[i], 5000)
        samples.push(Number(opened.at - at) / 1e6)
      }
      await a.ask('reset')
      for (const host of hosts) await until(async () => (await host.ask('state')) === 'CLOSED', 5000, 'closed again')
    }
  } finally {
    client.close()
    await Promise.all(hosts.map((h) => h.stop()))
  }
  return { ...summary(samples), samples: samples.length }
}

async function storeCommands(redis, dependency) {
  const [host] = await fleetOf(1, redis, dependency, 'bench-quiet', { refresh: 3600000, resetTimeout: 600000, quorum: 1, workers: 0, failureThreshold: 1 })
  const client = await redis.client()
  const count = async () => {
    const calls = commandCalls(await client.command('INFO', 'commandstats'))
    return Object.entries(calls)
      .filter(([name]) => !/^(info|config)/.test(name))
      .reduce((sum, [, n]) => sum + n, 0)
  }
  try {
    await until(async () => (await host.ask('stats')).fleet?.connected, 10000, 'connected')
    await client.command('CONFIG', 'RESETSTAT')
    await host.ask('local', { count: CALLS })
    const closed = ((await count()) * 1e6) / CALLS
    await host.ask('trip')
    await until(async () => (await host.ask('stats')).fleet.state === 'open', 5000, 'the fleet open')
    await client.command('CONFIG', 'RESETSTAT')
    await host.ask('local', { count: CALLS })
    const open = ((await count()) * 1e6) / CALLS
    return { closed, open }
  } finally {
    client.close()
    await host.stop()
  }
}

// Time per CLOSED call of a fleet breaker over a local one, both over a
// SharedArrayBuffer in this process: rounds of local, fleet, fleet, local
// (so drift cancels), the median of the rounds' ratios. The same with a
// second local breaker in the fleet one's place gives the noise floor.
async function closedRatio(redis) {
  const length = CircuitBreaker.arrayLength()
  const array = () => new Int32Array(new SharedArrayBuffer(length * 4))
  const local = new CircuitBreaker(array())
  const other = new CircuitBreaker(array())
  const fleet = new CircuitBreaker(array(), { fleet: { url: redis.url, key: 'bench-ratio', host: 'bench' } })
  const task = () => Promise.resolve(1)
  const time = async (breaker) => {
    const start = process.hrtime.bigint()
    for (let i = 0; i < RATIO_CALLS; i++) await breaker.execute(task)
    return Number(process.hrtime.bigint() - start) / RATIO_CALLS
  }
  const ratio = async (subject) => {
    const ratios = []
    for (let round = 0; round < RATIO_ROUNDS; round++) {
      const a = await time(local)
      const b = (await time(subject)) + (await time(subject))
      ratios.push(b / (a + (await time(local))))
    }
    return round3(ratios.sort((x, y) => x - y)[Math.floor(ratios.length / 2)])
  }
  for (const breaker of [local, other, fleet]) await time(breaker)
  const result = { fleet: await ratio(fleet), noise: await ratio(other) }
  for (const breaker of [local, other, fleet]) breaker.dispose()
  return result
}

const redis = await startRedis()
const dependency = await startDependency()
const started = Date.now()
try {
  const result = {
    smoke,
    propagation_ms: await propagation(redis, dependency),
    store_commands_per_million_calls: await storeCommands(redis, dependency),
    closed_ratio_fleet_vs_local: null,
    closed_ratio_local_vs_local: null,
    cross_process_event_ms: null,
  }
  const ratios = await closedRatio(redis)
  result.closed_ratio_fleet_vs_local = ratios.fleet
  result.closed_ratio_local_vs_local = ratios.noise
  const events = await crossProcessLatency(EVENTS)
  result.cross_process_event_ms = { p50: round3(events.p50), p99: round3(events.p99), samples: events.count }
  result.seconds = Math.round((Date.now() - started) / 100) / 10
  console.log(JSON.stringify(result, null, 2))
  if (jsonFile !== undefined) fs.writeFileSync(jsonFile, JSON.stringify(result, null, 2) + '\n')
} finally {
  dependency.close()
  await redis.stop()
}
