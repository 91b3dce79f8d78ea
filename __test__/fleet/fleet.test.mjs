// Fleet mode end to end against a real redis-server: hosts are processes
// (each with its own breaker file and two worker threads), the dependency a
// local http server that counts calls. Skipped when redis-server is missing
// unless FLEET_TESTS_REQUIRED=1.
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { skipUnlessServer, startRedis } from './support/redis.mjs'
import { commandCalls } from './support/resp.mjs'
import { connected, fleetOf, storeAndDependency, until } from './support/hosts.mjs'

const skip = skipUnlessServer()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

describe('fleet mode', { skip }, () => {
  const world = storeAndDependency()

  test('quorum: one host tripping opens only itself; a second opens all 4, their open events say fleet; exactly one probe among 4 hosts x 2 workers closes them all', async () => {
    const { redis, dependency } = world
    const hosts = await fleetOf(4, redis, dependency, 'quorum')
    try {
      await connected(hosts)
      dependency.set('down')
      assert.deepEqual(await hosts[0].ask('calls', { count: 3, main: true }), { ok: 0, failed: 3, rejected: 0 })
      assert.equal(await hosts[0].ask('state'), 'OPEN')
      await sleep(300)
      for (const host of hosts.slice(1)) assert.equal(await host.ask('state'), 'CLOSED', `${host.name}: one vote is not a quorum`)
      const since = hosts.map((h) => h.events.length)
      await hosts[1].ask('calls', { count: 3, main: true })
      for (const [i, host] of hosts.entries()) {
        if (i < 2) continue
        const opened = await host.waitEvent('open', since[i], 3000)
        assert.equal(opened.payload.fleet, true, `${host.name}'s open came from the fleet`)
        assert.equal(opened.payload.pid, host.child.pid, `made by the agent in ${host.name}'s process`)
      }
      for (const host of hosts) assert.equal(await host.ask('state'), 'OPEN', host.name)
      assert.notEqual(hosts[1].events.slice(since[1]).find((e) => e.event === 'open').payload.fleet, true, 'its own trip')
      // Past the open period no host probes on its own: the fleet holds them,
      // except the one host the fleet's probe lease went to.
      await sleep(1300)
      const states = await Promise.all(hosts.map((host) => host.ask('state')))
      assert.equal(states.filter((s) => s === 'OPEN').length, 3, `held: ${states}`)
      assert.equal(states.filter((s) => s === 'HALF_OPEN').length, 1, `the lease holder: ${states}`)
      // The dependency is back, slowly: every worker of every host calls.
      dependency.set('slow', 700)
      const before = dependency.calls.length
      const load = hosts.map((host) => host.ask('calls', { ms: 2500, every: 5 }))
      for (const l of load) l.catch(() => {}) // reported where awaited
      await until(() => dependency.calls.length > before, 5000, 'the probe')
      await sleep(500)
      const during = dependency.calls.slice(before)
      assert.equal(during.length, 1, `one probe in the fleet, got ${JSON.stringify(during)}`)
      const outcomes = await Promise.all(load)
      for (const [i, host] of hosts.entries()) {
        assert.equal(outcomes[i].failed, 0)
        assert.equal(await host.ask('state'), 'CLOSED', `${host.name} closed with the fleet`)
      }
    } finally {
      dependency.set('up')
      await Promise.all(hosts.map((h) => h.stop()))
    }
  })

  test('hosts over a SharedArrayBuffer (no breaker file): the fleet opens and closes every host and its workers', async () => {
    const { redis, dependency } = world
    const hosts = await fleetOf(3, redis, dependency, 'shared-memory', { shared: true, quorum: 2 })
    try {
      await connected(hosts)
      dependency.set('down')
      const since = hosts[2].events.length
      await hosts[0].ask('calls', { count: 3, main: true })
      await hosts[1].ask('calls', { count: 3, main: true })
      assert.equal((await hosts[2].waitEvent('open', since, 3000)).payload.fleet, true)
      // Both workers of host 2 meet the open breaker.
      assert.deepEqual(await hosts[2].ask('calls', { count: 2 }), { ok: 0, failed: 0, rejected: 4 })
      // Back: some host's call is the fleet's probe, and its success closes all.
      dependency.set('up')
      const load = hosts.map((host) => host.ask('calls', { ms: 2500, every: 10 }))
      for (const l of load) l.catch(() => {}) // reported where awaited
      await hosts[2].waitEvent('close', since, 5000)
      await Promise.all(load)
      assert.deepEqual(await hosts[2].ask('calls', { count: 2 }), { ok: 4, failed: 0, rejected: 0 })
    } finally {
      dependency.set('up')
      await Promise.all(hosts.map((h) => h.stop()))
    }
  })

  test('the probing host is SIGKILLed: after its lease another host probes', async () => {
    const { redis, dependency } = world
    const hosts = await fleetOf(3, redis, dependency, 'sigkill', { lease: 1000, quorum: 1 })
    try {
      await connected(hosts)
      dependency.set('down')
      await hosts[0].ask('calls', { count: 3, main: true })
      await until(async () => (await hosts[2].ask('state')) === 'OPEN', 3000, 'the fleet open')
      dependency.set('hang')
      const before = dependency.calls.length
      const load = hosts.map((host) => host.ask('calls', { ms: 4000, every: 5 }).catch(() => null))
      await until(() => dependency.calls.length > before, 5000, 'the first probe')
      const first = dependency.calls[before]
      const victim = hosts.find((h) => h.name === first.host)
      const killedAt = Date.now()
      await victim.kill('SIGKILL')
      dependency.set('up')
      await until(() => dependency.calls.length > before + 1, 5000, 'a second probe')
      const second = dependency.calls[before + 1]
      assert.notEqual(second.host, first.host, 'another host probes')
      assert.ok(second.at - first.at >= 900, `only after the lease (${second.at - first.at} ms)`)
      assert.ok(second.at - killedAt < 4000)
      await Promise.all(load)
      for (const host of hosts.filter((h) => h !== victim)) assert.equal(await host.ask('state'), 'CLOSED', host.name)
    } finally {
      dependency.set('up')
      await Promise.all(hosts.map((h) => h.stop()))
    }
  })

  test('FLUSHALL while open: no host closes by itself', async () => {
    const { redis, dependency } = world
    const hosts = await fleetOf(2, redis, dependency, 'flush', { quorum: 1, resetTimeout: 60000 })
    try {
      await connected(hosts)
      dependency.set('down')
      await hosts[0].ask('calls', { count: 3, main: true })
      await until(async () => (await hosts[1].ask('state')) === 'OPEN', 3000, 'the fleet open')
      const client = await redis.client()
      await client.command('FLUSHALL')
      await sleep(1000)
      for (const host of hosts) assert.equal(await host.ask('state'), 'OPEN', host.name)
      assert.equal(await client.command('HGET', 'cb:{flush}', 'state'), 'open', 'written back')
      client.close()
    } finally {
      dependency.set('up')
      await Promise.all(hosts.map((h) => h.stop()))
    }
  })

  test('0 store commands for 100,000 CLOSED calls and for 100,000 OPEN rejections', async () => {
    const { redis, dependency } = world
    const [host] = await fleetOf(1, redis, dependency, 'quiet', { refresh: 3600000, resetTimeout: 600000, quorum: 5 })
    try {
      await connected([host])
      const client = await redis.client()
      const counted = async () => {
        const calls = commandCalls(await client.command('INFO', 'commandstats'))
        delete calls.info
        delete calls['config|resetstat']
        delete calls.config
        return calls
      }
      await client.command('CONFIG', 'RESETSTAT')
      await host.ask('local', { count: 100000 })
      assert.deepEqual(await counted(), {}, 'CLOSED successes')
      await host.ask('local', { count: 2, fail: true })
      await host.ask('local', { count: 1, fail: true })
      assert.equal(await host.ask('state'), 'OPEN')
      await sleep(200) // the trip's vote
      await client.command('CONFIG', 'RESETSTAT')
      await host.ask('local', { count: 100000 })
      assert.deepEqual(await counted(), {}, 'OPEN rejections')
      client.close()
    } finally {
      await host.stop()
    }
  })

  test('redis killed and restarted under load: no call fails because of the store; fleetDegraded then fleetRecovered', async () => {
    const { redis, dependency } = world
    const hosts = await fleetOf(2, redis, dependency, 'outage')
    try {
      await connected(hosts)
      dependency.set('up')
      const since = hosts.map((h) => h.events.length)
      const load = hosts.map((host) => host.ask('calls', { ms: 3000, every: 2 }))
      await sleep(500)
      await redis.kill()
      for (const [i, host] of hosts.entries()) {
        const degraded = await host.waitEvent('fleetDegraded', since[i], 3000)
        assert.match(degraded.payload.reason, /store/)
      }
      await sleep(500)
      await redis.restart()
      for (const [i, host] of hosts.entries()) await host.waitEvent('fleetRecovered', since[i], 5000)
      const outcomes = await Promise.all(load)
      for (const o of outcomes) {
        assert.equal(o.failed, 0)
        assert.equal(o.rejected, 0)
        assert.ok(o.ok > 100)
      }
      for (const host of hosts) assert.equal((await host.ask('stats')).fleet.connected, true)
      // The fleet works again on the new server: an isolation reaches the other host.
      await hosts[0].ask('isolate')
      await until(async () => (await hosts[1].ask('state')) === 'OPEN', 3000, 'the isolation after the restart')
      await hosts[0].ask('release')
    } finally {
      await Promise.all(hosts.map((h) => h.stop()))
    }
  })

  test('a wrong password: fleetDegraded says the credentials were refused, and the process exits by itself', async () => {
    const { redis, dependency } = world
    const secured = await startRedis({ password: 'right' })
    try {
      const url = secured.url.replace(':right@', ':wrong@')
      const [host] = await fleetOf(1, { url }, dependency, 'password')
      const degraded = await host.waitEvent('fleetDegraded', 0, 5000)
      assert.match(degraded.payload.reason, /credentials/)
      assert.doesNotMatch(degraded.payload.reason, /wrong/)
      assert.deepEqual(await host.ask('calls', { count: 5, main: true }), { ok: 5, failed: 0, rejected: 0 })
      await host.stop()
      assert.deepEqual(await host.exited, { code: 0, signal: null })
    } finally {
      await secured.stop()
    }
  })
})
