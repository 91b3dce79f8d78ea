'use strict'

// Loads the native addon for this platform through the loader that
// `napi build` generates (`binding.js`, in the package root). When that fails, the error names the
// package that holds this platform's binary, the platform it looked for, and
// what to do about it.
//
// The platform is worked out the way `binding.js` does it (same musl
// detection, same names), so the package named here is the one the loader
// tried to require.

const { existsSync, readFileSync } = require('fs')
const path = require('path')

// The package root: where `binding.js`, package.json and (in a source
// checkout) Cargo.toml are.
const ROOT = path.join(__dirname, '..')

function loadNative() {
  try {
    return require('../binding.js')
  } catch (cause) {
    let message
    try {
      message = describeLoadFailure(cause)
    } catch {
      message = `shared-circuit-breaker: the native binary for ${process.platform}-${process.arch} could not be loaded`
    }
    const error = new Error(message, { cause })
    error.code = 'ERR_CIRCUIT_BREAKER_NATIVE_BINDING'
    throw error
  }
}

/** `linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`, ...: the suffix the generated loader uses. */
function platformArchAbi() {
  const { platform, arch } = process
  switch (platform) {
    case 'linux': {
      const musl = isMusl()
      if (arch === 'arm') return musl ? 'linux-arm-musleabihf' : 'linux-arm-gnueabihf'
      if (['x64', 'arm64', 'loong64', 'riscv64'].includes(arch)) return `linux-${arch}-${musl ? 'musl' : 'gnu'}`
      if (['ppc64', 's390x'].includes(arch)) return `linux-${arch}-gnu`
      return null
    }
    case 'darwin':
      return ['x64', 'arm64'].includes(arch) ? `darwin-${arch}` : null
    case 'win32': {
      const vars = (process.config && process.config.variables) || {}
      if (arch === 'x64') {
        const gnu = vars.shlib_suffix === 'dll.a' || vars.node_target_type === 'shared_library'
        return gnu ? 'win32-x64-gnu' : 'win32-x64-msvc'
      }
      return ['ia32', 'arm64'].includes(arch) ? `win32-${arch}-msvc` : null
    }
    case 'android':
      if (arch === 'arm64') return 'android-arm64'
      return arch === 'arm' ? 'android-arm-eabi' : null
    case 'freebsd':
      return ['x64', 'arm64', 'ppc64'].includes(arch) ? `freebsd-${arch}` : null
    case 'openharmony':
      return ['arm64', 'x64', 'arm'].includes(arch) ? `openharmony-${arch}` : null
    default:
      return null
  }
}

// The generated loader's three ways of telling musl from glibc, in its order.
function isMusl() {
  let musl = null
  try {
    musl = readFileSync('/usr/bin/ldd', 'utf-8').includes('musl')
  } catch {
    musl = null
  }
  if (musl === null && process.report && typeof process.report.getReport === 'function') {
    process.report.excludeNetwork = true
    const report = process.report.getReport()
    if (report) {
      musl =
        !(report.header && report.header.glibcVersionRuntime) &&
        Array.isArray(report.sharedObjects) &&
        report.sharedObjects.some((f) => f.includes('libc.musl-') || f.includes('ld-musl-'))
    }
  }
  if (musl === null) {
    try {
      musl = require('child_process').execSync('ldd --version', { encoding: 'utf8' }).includes('musl')
    } catch {
      musl = false
    }
  }
  return musl
}

function describeLoadFailure(cause) {
  const pkg = readOwnPackageJson()
  const name = (pkg.napi && pkg.napi.packageName) || pkg.name || 'shared-circuit-breaker'
  const version = pkg.version || '?'
  const here = `${process.platform}-${process.arch}`
  const target = platformArchAbi()
  const sourceCheckout = existsSync(path.join(ROOT, 'Cargo.toml'))
  const buildFromSource =
    'build it from source: in a clone of the repository, with Rust installed, `npm install` ' +
    '(or `npm run build`) compiles the addon for this machine'

  const denied = denoPermissionDenied(cause)
  if (denied !== null) {
    return (
      `${name}: Deno did not let it load its native addon (${denied.split('\n')[0]}). ` +
      `${name} is a Node-API addon: Deno loads it only with --allow-ffi, and its loader needs ` +
      '--allow-read and --allow-env. Run with `deno run --allow-read --allow-env --allow-ffi` (or -A).'
    )
  }
  if (process.env.NAPI_RS_NATIVE_LIBRARY_PATH) {
    return (
      `${name}: NAPI_RS_NATIVE_LIBRARY_PATH is set to ${process.env.NAPI_RS_NATIVE_LIBRARY_PATH}, ` +
      `which could not be loaded (${messageChain(cause)}). Unset it to use the installed binary.`
    )
  }
  if (target === null) {
    return (
      `${name}: no native binary exists for this platform (${here}); ` +
      `napi-rs has no package name for it. To use ${name} here, ${buildFromSource}.`
    )
  }
  const binaryPackage = `${name}-${target}`
  if (sourceCheckout) {
    return (
      `${name}: no native binary for ${target} in this source checkout (${ROOT}). ` +
      'Build it with `npm run build` (needs Rust), or run `npm install`, which builds it.'
    )
  }
  const prebuilt = Object.keys(pkg.optionalDependencies || {})
    .filter((dep) => dep.startsWith(`${name}-`))
    .map((dep) => dep.slice(name.length + 1))
  if (!prebuilt.includes(target)) {
    return (
      `${name}@${version}: no prebuilt binary for this platform (${target}); there is no package ` +
      `${binaryPackage}. Prebuilt binaries exist for: ${prebuilt.join(', ') || 'none'}. ` +
      `To use ${name} here, ${buildFromSource}.`
    )
  }
  const installed = findInstalledPackage(binaryPackage)
  if (installed === null) {
    return (
      `${name}@${version}: the package ${binaryPackage}, which holds the native binary for this ` +
      `platform (${target}), is not installed. It is an optional dependency of ${name}, and npm ` +
      'leaves it out when optional dependencies are omitted (--omit=optional, --no-optional) or ' +
      'when package-lock.json was written on another platform (npm bug npm/cli#4828). ' +
      `Fix: reinstall with optional dependencies (delete node_modules and package-lock.json, then ` +
      `\`npm install\`), or install it directly: \`npm install ${binaryPackage}@${version}\`.`
    )
  }
  // Ask for the package again to get its own error (a missing symbol, a libc
  // too old, a corrupt file): Node does not cache a module that failed.
  let reason
  try {
    require(binaryPackage)
    reason = messageChain(cause)
  } catch (error) {
    reason = messageChain(error)
  }
  const versionNote =
    installed.version === version ? '' : ` (version ${installed.version}; ${name}@${version} needs ${version})`
  return (
    `${name}@${version}: ${binaryPackage} is installed at ${installed.dir}${versionNote}, ` +
    `but its binary could not be loaded: ${reason}. ` +
    `Reinstall it: \`npm install ${binaryPackage}@${version}\`.`
  )
}

// Under Deno, the message of a permission error down the `cause` chain
// ("Requires ffi access to ..."), or null.
function denoPermissionDenied(error) {
  if (typeof globalThis.Deno !== 'object' || globalThis.Deno === null) return null
  for (let e = error, depth = 0; e && depth < 20; e = e.cause, depth++) {
    const message = typeof e.message === 'string' ? e.message : ''
    if (e.name === 'NotCapable' || e.name === 'PermissionDenied' || /--allow-ffi\b/.test(message)) return message
  }
  return null
}

function readOwnPackageJson() {
  try {
    return JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
  } catch {
    return {}
  }
}

// Resolved from this folder, which finds the same packages as `binding.js`
// (in the folder above) does.
function findInstalledPackage(packageName) {
  try {
    const manifest = require.resolve(`${packageName}/package.json`)
    const { version } = JSON.parse(readFileSync(manifest, 'utf8'))
    return { dir: path.dirname(manifest), version: String(version) }
  } catch {
    return null
  }
}

// The first line of each message down an error's `cause` chain.
function messageChain(error) {
  const messages = []
  for (let e = error, depth = 0; e && depth < 20; e = e.cause, depth++) {
    const message = typeof e.message === 'string' ? e.message : String(e)
    messages.push(message.split('\n')[0])
  }
  return messages.join(' <- ') || 'unknown error'
}

module.exports = loadNative()
