// Starts real redis-server processes for the fleet tests: on a free loopback
// port, in a temporary folder, with no persistence, killed when the test
// ends. Also a 3-master Redis Cluster, a server with a password or an ACL
// user, and a TLS server with a certificate made at test time.
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { connect } from './resp.mjs'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Why the fleet tests cannot run here, or undefined when they can. */
export function missingServer() {
  const found = spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
  if (found.error !== undefined || found.status !== 0) return 'redis-server is not installed'
  return undefined
}

/**
 * The `skip` option for a fleet test: skipped with the reason when
 * redis-server is missing, unless FLEET_TESTS_REQUIRED=1 (CI) makes that a
 * failure.
 */
export function skipUnlessServer() {
  const missing = missingServer()
  if (missing === undefined) return false
  if (process.env.FLEET_TESTS_REQUIRED === '1') throw new Error(`${missing}, and FLEET_TESTS_REQUIRED=1`)
  return missing
}

export async function freePort() {
  const server = net.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function waitForPing(port, tlsOptions, auth, ms = 10000) {
  const end = Date.now() + ms
  for (;;) {
    try {
      const client = await connect(port, { tlsOptions, timeoutMs: 1000 })
      try {
        if (auth.length > 0) await client.command('AUTH', ...auth)
        if ((await client.command('PING')) === 'PONG') return
      } finally {
        client.close()
      }
    } catch (error) {
      if (Date.now() > end) throw new Error(`redis-server on port ${port} did not answer within ${ms} ms: ${error.message}`)
    }
    await sleep(20)
  }
}

// Certificates for a TLS server: a CA and a server certificate for
// 127.0.0.1 and localhost, made with openssl in `dir`.
function makeCertificates(dir) {
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=circuit-breaker-js test CA',
    '-keyout', 'ca.key', '-out', 'ca.crt')
  run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr')
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
    '-extfile', 'san.ext', '-out', 'server.crt')
  return { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') }
}

/**
 * One redis-server. Options: `password` (requirepass), `user`
 * ({ name, password }: an ACL user allowed everything), `tls` (serve TLS
 * only), `cluster` (cluster mode, for startCluster), `port`.
 * Returns { port, url, dir, ca, client(), kill(signal), restart(), stop() }.
 */
export async function startRedis(options = {}) {
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'cbjs-redis-'))
  const port = options.port ?? (await freePort())
  const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no',
    '--protected-mode', 'no', '--enable-debug-command', 'local', '--logfile', path.join(dir, 'redis.log')]
  let certificates
  let tlsOptions
  if (options.tls) {
    certificates = options.certificates ?? makeCertificates(dir)
    args.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', certificates.cert,
      '--tls-key-file', certificates.key, '--tls-ca-cert-file', certificates.ca, '--tls-auth-clients', 'no')
    tlsOptions = { ca: fs.readFileSync(certificates.ca), servername: 'localhost' }
  } else {
    args.push('--port', String(port))
  }
  if (options.password !== undefined) args.push('--requirepass', options.password)
  if (options.user !== undefined) {
    // ACL users come from a file: the command line cannot hold the rules.
    const aclFile = path.join(dir, 'users.acl')
    fs.writeFileSync(aclFile, `user ${options.user.name} on >${options.user.password} ~* &* +@all\nuser default off\n`)
    args.push('--aclfile', aclFile)
  }
  if (options.cluster) {
    args.push('--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, 'nodes.conf'),
      '--cluster-node-timeout', '2000')
  }
  const child = spawn('redis-server', args, { stdio: 'ignore' })
  let exited = false
  child.once('exit', () => {
    exited = true
  })
  const auth = options.user !== undefined
    ? [options.user.name, options.user.password]
    : options.password !== undefined ? [options.password] : []
  try {
    await waitForPing(port, tlsOptions, auth)
  } catch (error) {
    child.kill('SIGKILL')
    const log = fs.existsSync(path.join(dir, 'redis.log')) ? fs.readFileSync(path.join(dir, 'redis.log'), 'utf8') : ''
    throw new Error(`${error.message}\n${log.slice(-2000)}`)
  }
  const scheme = options.tls ? 'rediss' : 'redis'
  const credentials = options.user !== undefined
    ? `${encodeURIComponent(options.user.name)}:${encodeURIComponent(options.user.password)}@`
    : options.password !== undefined ? `:${encodeURIComponent(options.password)}@` : ''
  const server = {
    port,
    dir,
    child,
    ca: certificates?.ca,
    url: `${scheme}://${credentials}127.0.0.1:${port}`,
    /** A RESP connection, authenticated as the server requires. */
    async client() {
      const client = await connect(port, { tlsOptions })
      if (auth.length > 0) await client.command('AUTH', ...auth)
      return client
    },
    /** Kills the server (SIGKILL unless told) and waits for it to be gone. */
    async kill(signal = 'SIGKILL') {
      if (exited) return
      const gone = new Promise((resolve) => child.once('exit', resolve))
      child.kill(signal)
      await gone
    },
    /** Kills it and starts a new empty server on the same port. */
    async restart() {
      await server.kill()
      const again = await startRedis({ ...options, port, dir, certificates })
      Object.assign(server, { child: again.child, kill: again.kill, restart: again.restart })
      return server
    },
    async stop() {
      await server.kill()
      if (options.dir === undefined) fs.rmSync(dir, { recursive: true, force: true })
    },
  }
  return server
}

/**
 * A 3-master Redis Cluster on loopback (no replicas). Returns { nodes, url,
 * urls, client(i), stop() }; `url` names the first node, from which a
 * cluster client discovers the rest.
 */
export async function startCluster(masters = 3) {
  const nodes = []
  try {
    for (let i = 0; i < masters; i++) nodes.push(await startRedis({ cluster: true }))
    execFileSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'pipe' })
    const end = Date.now() + 15000
    for (const node of nodes) {
      for (;;) {
        const client = await node.client()
        const info = await client.command('CLUSTER', 'INFO')
        client.close()
        if (/cluster_state:ok/.test(info)) break
        if (Date.now() > end) throw new Error(`cluster node ${node.port} not ok: ${info}`)
        await sleep(50)
      }
    }
  } catch (error) {
    await Promise.all(nodes.map((node) => node.stop()))
    throw error
  }
  return {
    nodes,
    url: nodes[0].url,
    urls: nodes.map((node) => node.url),
    async stop() {
      await Promise.all(nodes.map((node) => node.stop()))
    },
  }
}
