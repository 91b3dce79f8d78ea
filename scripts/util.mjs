// Small helpers shared by pack-local.mjs and test-install.mjs.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import path from 'node:path'

/**
 * How to run npm without looking it up on PATH: its CLI script run by this
 * node. Under `npm run`, npm says where it is (`npm_execpath`).
 */
export function npmCommand() {
  const candidates = [
    process.env.npm_execpath,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'),
    path.join(path.dirname(process.execPath), 'node_modules', 'npm', 'bin', 'npm-cli.js'),
  ]
  const cli = candidates.find((file) => file && /npm-cli\.js$/.test(file) && existsSync(file))
  if (!cli) throw new Error(`npm-cli.js not found next to ${process.execPath}; tried ${candidates.filter(Boolean).join(', ')}`)
  return [process.execPath, cli]
}

/**
 * Runs a command to the end. Throws with its output when it fails, unless
 * `allowFailure`; returns { status, stdout, stderr, ms }.
 */
export function run(command, args, { cwd, env = process.env, allowFailure = false, input, timeout = 600000 } = {}) {
  const started = performance.now()
  const result = spawnSync(command, args, {
    cwd,
    env,
    input,
    encoding: 'utf8',
    timeout,
    maxBuffer: 64 * 1024 * 1024,
  })
  const ms = performance.now() - started
  const out = { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '', ms, error: result.error }
  if (!allowFailure && (result.error || result.status !== 0)) {
    const shown = [command, ...args].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')
    throw new Error(
      `command failed (${result.error ? result.error.message : `exit ${result.status}`}): ${shown}\n` +
        `in ${cwd ?? process.cwd()}\n--- stdout\n${out.stdout}\n--- stderr\n${out.stderr}`,
    )
  }
  return out
}

/** Runs npm (see npmCommand) with `args`. */
export function npm(args, options) {
  const [node, cli] = npmCommand()
  return run(node, [cli, ...args], options)
}

/**
 * The entries of a .tgz as npm wrote it: [{ path, size, data }] for regular
 * files, paths relative to the `package/` folder npm puts everything in.
 */
export function readTarball(file) {
  const tar = gunzipSync(readFileSync(file))
  const entries = []
  let longName = null
  let paxPath = null
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const header = tar.subarray(offset, offset + 512)
    if (header.every((byte) => byte === 0)) break
    const field = (start, length) => header.subarray(start, start + length).toString('utf8').replace(/\0.*$/s, '')
    const size = parseInt(field(124, 12).trim() || '0', 8)
    const type = field(156, 1) || '0'
    const prefix = field(345, 155)
    const data = tar.subarray(offset + 512, offset + 512 + size)
    const name = longName ?? paxPath ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100))
    if (type === 'L') {
      longName = data.toString('utf8').replace(/\0.*$/s, '')
    } else if (type === 'x') {
      const match = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'))
      paxPath = match ? match[1] : null
    } else {
      longName = null
      paxPath = null
      if (type === '0' || type === '7') {
        entries.push({ path: name.replace(/^package\//, ''), size, data: Buffer.from(data) })
      }
    }
    offset += 512 + Math.ceil(size / 512) * 512
  }
  return entries
}

export function formatBytes(bytes) {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`
}
