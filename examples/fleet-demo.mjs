// The demo behind `npm run demo:fleet`: three hosts (processes, each with its
// own breaker file) share one breaker through a local redis-server. Two hosts
// see the dependency fail, which is the quorum: the fleet opens and the
// third host opens too without a single failure of its own. When the
// dependency is back, one host probes for the whole fleet and every host
// closes. Needs redis-server; without it, says how to get one and exits 0.
import { fork, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import CircuitBreaker from 'shared-circuit-breaker'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

if (process.argv[2] === 'host') await host(JSON.parse(process.argv[3]))
else await main()

// One host: calls the "dependency" every 50 ms (the parent says whether it
// is down) and reports what its breaker does.
async function host({ name, url, file }) {
  let down = false
  process.on('message', (message) => {
    if (message === 'down' || message === 'up') down = message === 'down'
    if (message === 'stop') {
      clearInterval(timer)
      breaker.dispose()
      process.disconnect()
    }
  })
  const breaker = CircuitBreaker.fromFile(file, {
    name: 'payments',
    failureThreshold: 3,
    resetTimeout: 1500,
    fleet: { url, host: name, quorum: 2 },
  })
  const say = (text) => process.send(`${name}: ${text}`)
  breaker.on('open', (change) => say(change.fleet ? 'OPEN  (the fleet opened it)' : 'OPEN  (it tripped: its vote)'))
  breaker.on('halfOpen', () => say('HALF_OPEN  (it holds the fleet\'s one probe)'))
  breaker.on('close', (change) => say(change.fleet ? 'CLOSED  (the fleet closed it)' : 'CLOSED  (its probe succeeded)'))
  breaker.on('fleetDegraded', ({ reason }) => say(`fleet store away: ${reason}`))
  const timer = setInterval(() => {
    breaker
      .execute(async () => {
        if (down) throw new Error('payments API is down')
      })
      .catch(() => {})
  }, 50)
  process.send('ready')
}

async function main() {
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    console.log('The fleet demo needs redis-server on the PATH (apt-get install redis-server, brew install redis).')
    return
  }
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'cbjs-fleet-demo-'))
  const port = await new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', folder], { stdio: 'ignore' })
  const url = `redis://127.0.0.1:${port}`
  try {
    console.log(`redis-server on ${url}; three hosts, quorum 2\n`)
    const names = ['host-a', 'host-b', 'host-c']
    const hosts = []
    for (const name of names) {
      const child = fork(new URL(import.meta.url), ['host', JSON.stringify({ name, url, file: path.join(folder, `${name}.breaker`) })])
      await new Promise((resolve) => child.once('message', resolve))
      child.on('message', (line) => console.log(`  ${line}`))
      hosts.push(child)
    }
    await sleep(500)
    console.log('The dependency fails for host-a only: host-a opens, one vote is no quorum')
    hosts[0].send('down')
    await sleep(800)
    console.log('It fails for host-b too: the second vote opens the fleet, host-c included')
    hosts[1].send('down')
    await sleep(800)
    console.log('The dependency is back: after the open period one host probes for the fleet')
    for (const child of hosts) child.send('up')
    await sleep(2500)
    for (const child of hosts) child.send('stop')
    await Promise.all(hosts.map((child) => new Promise((resolve) => child.once('exit', resolve))))
    console.log('\nEvery host closed together; the demo is done.')
  } finally {
    redis.kill('SIGKILL')
    fs.rmSync(folder, { recursive: true, force: true })
  }
}
