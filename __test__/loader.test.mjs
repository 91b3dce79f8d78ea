// What a user sees when the native binary cannot be loaded. Each test runs
// node in a temporary copy of the package's shipped files (no .node file,
// no node_modules) with the package.json the release publishes, so the only
// way to a binary is the platform package the test puts there, or none.
//
// Other platforms are played by a preload that changes `process.platform`,
// `process.arch` and what /usr/bin/ldd says (both the generated loader and
// lib/native.js read it to tell musl from glibc). The error must name the
// package the generated loader really tried: the test finds that name in
// the loader's own errors, in `cause`.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import {
  checkPlatformPackages,
  hostPlatformArchABI,
  publishedManifest,
  readReleaseConfig,
} from '../scripts/release-manifest.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const config = await readReleaseConfig(root)
const { packageName } = config
const version = config.pkg.version
const host = hostPlatformArchABI()
const hostTarget = config.targets.find((t) => t.platformArchABI === host)
const builtBinary = hostTarget && path.join(root, hostTarget.binaryFile)

const scratch = mkdtempSync(path.join(os.tmpdir(), 'circuit-breaker-js-loader-'))
after(() => rmSync(scratch, { recursive: true, force: true }))

const FAKE_PLATFORM = `
const fs = require('fs')
const { FAKE_PLATFORM, FAKE_ARCH, FAKE_LIBC } = process.env
if (FAKE_PLATFORM) Object.defineProperty(process, 'platform', { value: FAKE_PLATFORM })
if (FAKE_ARCH) Object.defineProperty(process, 'arch', { value: FAKE_ARCH })
if (FAKE_LIBC) {
  const readFileSync = fs.readFileSync
  fs.readFileSync = function (file, ...rest) {
    if (file === '/usr/bin/ldd') return FAKE_LIBC === 'musl' ? 'musl libc (x86_64)' : 'GNU C Library'
    return readFileSync.call(this, file, ...rest)
  }
}
`

const PROBE = `
try {
  console.log(JSON.stringify({ loaded: typeof require(process.argv[2]).CircuitBreaker === 'function' }))
} catch (error) {
  const causes = []
  for (let e = error.cause; e; e = e.cause) causes.push(String(e.message))
  console.log(JSON.stringify({ loaded: false, message: error.message, code: error.code, causes }))
}
`

let copies = 0
/**
 * A folder holding the package as published: its `files`, and package.json
 * with the optionalDependencies `napi pre-publish` writes.
 */
function packageCopy({ platformPackage, binary, sourceCheckout = false } = {}) {
  const dir = path.join(scratch, `copy-${++copies}`)
  const pkgDir = path.join(dir, 'node_modules', packageName)
  mkdirSync(pkgDir, { recursive: true })
  for (const file of config.pkg.files) cpSync(path.join(root, file), path.join(pkgDir, file), { recursive: true })
  writeFileSync(path.join(pkgDir, 'package.json'), JSON.stringify(publishedManifest(config), null, 2))
  if (sourceCheckout) writeFileSync(path.join(pkgDir, 'Cargo.toml'), '')
  if (platformPackage) {
    const target = config.targets.find((t) => t.platformArchABI === platformPackage)
    const platformDir = path.join(dir, 'node_modules', target.packageName)
    mkdirSync(platformDir, { recursive: true })
    copyFileSync(path.join(root, target.dir, 'package.json'), path.join(platformDir, 'package.json'))
    writeFileSync(path.join(platformDir, target.binaryFile), binary)
  }
  writeFileSync(path.join(dir, 'fake-platform.cjs'), FAKE_PLATFORM)
  writeFileSync(path.join(dir, 'probe.cjs'), PROBE)
  return { dir, pkgDir }
}

function run(copy, args, { platform, arch, libc, env = {} } = {}) {
  return spawnSync(process.execPath, ['--require', path.join(copy.dir, 'fake-platform.cjs'), ...args], {
    cwd: copy.dir,
    encoding: 'utf8',
    timeout: 60000,
    env: {
      ...process.env,
      NODE_PATH: '',
      NAPI_RS_NATIVE_LIBRARY_PATH: '',
      FAKE_PLATFORM: platform ?? '',
      FAKE_ARCH: arch ?? '',
      FAKE_LIBC: libc ?? '',
      ...env,
    },
  })
}

/** Requires the copy's index.js in a new node; returns what it saw. */
function load(copy, options) {
  const result = run(copy, [path.join(copy.dir, 'probe.cjs'), path.join(copy.pkgDir, 'index.js')], options)
  assert.equal(result.stderr, '')
  assert.equal(result.status, 0)
  return JSON.parse(result.stdout)
}

/** Imports the copy's index.mjs in a new node: { status, stdout, stderr }. */
function importEsm(copy, options) {
  const url = pathToFileURL(path.join(copy.pkgDir, 'index.mjs')).href
  const code = `import CircuitBreaker from ${JSON.stringify(url)}; console.log(typeof CircuitBreaker)`
  return run(copy, ['--input-type=module', '--eval', code], options)
}

function assertMentions(message, parts) {
  for (const part of parts) assert.ok(message.includes(part), `missing "${part}" in: ${message}`)
}

test('the platform packages under npm/ match package.json (names, version, os, cpu, libc, binary)', () => {
  assert.deepEqual(checkPlatformPackages(config, root), [])
  assert.ok(config.targets.length >= 7)
  assert.ok(!config.targets.some((t) => t.platform === 'wasi'), 'no wasm target: its memory is not shared')
})

test('without the platform package, the error names it, the platform, and what to do', () => {
  const copy = packageCopy()
  const seen = load(copy)
  assert.equal(seen.loaded, false)
  assert.equal(seen.code, 'ERR_CIRCUIT_BREAKER_NATIVE_BINDING')
  assertMentions(seen.message, [
    `${packageName}@${version}`,
    `the package ${packageName}-${host},`,
    `(${host})`,
    'is not installed',
    'optional dependency',
    '--omit=optional',
    `\`npm install ${packageName}-${host}@${version}\``,
  ])
  assert.ok(
    seen.causes.some((c) => c.includes(`'${packageName}-${host}'`)),
    `the generated loader did not try ${packageName}-${host}: ${seen.causes.join(' | ')}`,
  )
  // An ES module importer gets the same error.
  const esm = importEsm(copy)
  assert.notEqual(esm.status, 0)
  assert.equal(esm.stdout, '')
  assert.ok(esm.stderr.includes(`Error: ${seen.message}`), esm.stderr)
})

const platforms = [
  { platform: 'linux', arch: 'x64', libc: 'glibc', suffix: 'linux-x64-gnu' },
  { platform: 'linux', arch: 'x64', libc: 'musl', suffix: 'linux-x64-musl' },
  { platform: 'linux', arch: 'arm64', libc: 'glibc', suffix: 'linux-arm64-gnu' },
  { platform: 'linux', arch: 'arm64', libc: 'musl', suffix: 'linux-arm64-musl' },
  { platform: 'darwin', arch: 'x64', suffix: 'darwin-x64' },
  { platform: 'darwin', arch: 'arm64', suffix: 'darwin-arm64' },
  { platform: 'win32', arch: 'x64', suffix: 'win32-x64-msvc' },
]

test('on each released platform, the package named is the one the generated loader requires', () => {
  assert.deepEqual(
    platforms.map((p) => p.suffix).sort(),
    config.targets.map((t) => t.platformArchABI).sort(),
    'this table covers every napi target',
  )
  const copy = packageCopy()
  for (const { platform, arch, libc, suffix } of platforms) {
    const seen = load(copy, { platform, arch, libc })
    assert.equal(seen.loaded, false)
    assertMentions(seen.message, [`the package ${packageName}-${suffix},`, `(${suffix})`, 'is not installed'])
    assert.ok(
      seen.causes.some((c) => c.includes(`'${packageName}-${suffix}'`)),
      `${platform} ${arch} ${libc ?? ''}: the generated loader did not try ${packageName}-${suffix}: ${seen.causes.join(' | ')}`,
    )
  }
})

test('on a platform without a prebuilt binary, the error says so and lists the platforms that have one', () => {
  const seen = load(packageCopy(), { platform: 'freebsd', arch: 'x64' })
  assert.equal(seen.loaded, false)
  assertMentions(seen.message, [
    'no prebuilt binary for this platform (freebsd-x64)',
    `there is no package ${packageName}-freebsd-x64`,
    `Prebuilt binaries exist for: ${config.targets.map((t) => t.platformArchABI).join(', ')}`,
    'build it from source',
  ])
})

test('on a platform napi-rs has no name for, the error says what it is and how to build', () => {
  const seen = load(packageCopy(), { platform: 'aix', arch: 'ppc64' })
  assert.equal(seen.loaded, false)
  assertMentions(seen.message, ['no native binary exists for this platform (aix-ppc64)', 'build it from source'])
})

test('in a source checkout without a build, the error says to build it', () => {
  const seen = load(packageCopy({ sourceCheckout: true }))
  assert.equal(seen.loaded, false)
  assertMentions(seen.message, [`no native binary for ${host} in this source checkout`, '`npm run build`'])
})

test('a NAPI_RS_NATIVE_LIBRARY_PATH that cannot be loaded is named in the error', () => {
  const missing = path.join(scratch, 'nowhere', 'addon.node')
  const seen = load(packageCopy(), { env: { NAPI_RS_NATIVE_LIBRARY_PATH: missing } })
  assert.equal(seen.loaded, false)
  assertMentions(seen.message, [`NAPI_RS_NATIVE_LIBRARY_PATH is set to ${missing}`, 'Unset it'])
})

test('a platform package whose binary cannot be loaded: the error gives the reason', { skip: !hostTarget && `no target for ${host}` }, () => {
  const copy = packageCopy({ platformPackage: host, binary: 'not a shared library' })
  const seen = load(copy)
  assert.equal(seen.loaded, false)
  assertMentions(seen.message, [
    `${packageName}-${host} is installed at ${path.join(copy.dir, 'node_modules', `${packageName}-${host}`)}`,
    'but its binary could not be loaded: ',
    hostTarget.binaryFile,
    `\`npm install ${packageName}-${host}@${version}\``,
  ])
})

test(
  'with the platform package installed, both entries load the binary from it',
  { skip: !(builtBinary && existsSync(builtBinary)) && 'the addon is not built (npm run build)' },
  () => {
    const copy = packageCopy({ platformPackage: host, binary: readFileSync(builtBinary) })
    assert.deepEqual(load(copy), { loaded: true })
    const esm = importEsm(copy)
    assert.equal(esm.stderr, '')
    assert.equal(esm.stdout, 'function\n')
  },
)
