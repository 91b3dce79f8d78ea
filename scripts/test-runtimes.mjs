// `npm run test:runtimes`: the package under Bun and Deno (and Node, the
// reference the fixtures are checked against), from this checkout, with the
// addon built here.
//
// Each fixture in __test__/runtimes/ prints `ok - ...` or `not ok - ...` per
// check and exits non-zero when one failed:
//   seed.mjs      the seed's example (README Usage) and a circuit that opens
//   workers.mjs   two worker threads sharing one breaker
//   file.mjs      a breaker file shared by two processes of the runtime
//   events.mjs    open / halfOpen / close events, also for a worker's transition
// Under Deno also no-permission.mjs, twice, each time without one of the
// permissions the addon needs: the import must fail saying which flags to
// run with.
//
// The runtimes are the binaries the `bun` and `deno` dev dependencies carry
// (node_modules/.bin); Deno runs with `run -A`. A runtime that is missing
// fails its checks (it is not skipped). The last line is `N passed, N failed`;
// the exit code is 1 when a check failed.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = (name) => path.join(root, 'node_modules', '.bin', process.platform === 'win32' ? `${name}.cmd` : name)
const fixture = (name) => path.join(root, '__test__', 'runtimes', name)
const FIXTURES = ['seed.mjs', 'workers.mjs', 'file.mjs', 'events.mjs']

const RUNTIMES = [
  { name: 'node', command: process.execPath, args: [] },
  { name: 'bun', command: bin('bun'), args: [] },
  { name: 'deno', command: bin('deno'), args: ['run', '-A'] },
]

// [runtime, command, args, label]
const runs = []
for (const runtime of RUNTIMES) {
  for (const file of FIXTURES) runs.push({ runtime, args: [...runtime.args, fixture(file)], label: file })
}
const deno = RUNTIMES.find((r) => r.name === 'deno')
for (const flags of [['--allow-read', '--allow-env'], ['--allow-read', '--allow-ffi']]) {
  runs.push({
    runtime: deno,
    args: ['run', ...flags, fixture('no-permission.mjs'), flags.join(' ')],
    label: `no-permission.mjs (${flags.join(' ')})`,
  })
}

let passed = 0
let failed = 0
const started = performance.now()
const versions = new Map()
for (const { runtime, args, label } of runs) {
  if (!versions.has(runtime.name)) {
    const version = existsSync(runtime.command)
      ? spawnSync(runtime.command, ['--version'], { encoding: 'utf8', timeout: 60000 }).stdout?.split('\n')[0]
      : null
    versions.set(runtime.name, version)
    console.log(`# ${runtime.name}: ${version ?? `not found at ${runtime.command}`}`)
  }
  if (versions.get(runtime.name) === null) {
    failed++
    console.log(`not ok - ${runtime.name} ${label}: ${runtime.command} does not exist (npm ci installs it)`)
    continue
  }
  const t0 = performance.now()
  const result = spawnSync(runtime.command, args, {
    cwd: root,
    encoding: 'utf8',
    timeout: 120000,
    env: { ...process.env, NO_COLOR: '1' },
  })
  const ms = performance.now() - t0
  const lines = (result.stdout ?? '').split('\n').filter((line) => /^(not )?ok - /.test(line))
  for (const line of lines) {
    if (line.startsWith('ok - ')) passed++
    else failed++
    console.log(line.replace(/^(not )?ok - /, (m) => `${m}${runtime.name} ${label}: `))
  }
  const ok = lines.filter((line) => line.startsWith('ok - ')).length
  if (result.status !== 0 && ok === lines.length) {
    // It failed without saying which check: count that as a failure of its own.
    failed++
    const why = result.error ? result.error.message : `exit ${result.status ?? result.signal}`
    console.log(`not ok - ${runtime.name} ${label}: ${why}; stderr: ${(result.stderr ?? '').trim().split('\n').slice(0, 6).join(' | ')}`)
  } else if (lines.length === 0) {
    failed++
    console.log(`not ok - ${runtime.name} ${label}: printed no check`)
  }
  console.log(`# ${runtime.name} ${label}: ${(ms / 1000).toFixed(2)} s`)
}
console.log(`# total ${((performance.now() - started) / 1000).toFixed(1)} s`)
console.log(`${passed} passed, ${failed} failed`)
process.exitCode = failed > 0 ? 1 : 0
