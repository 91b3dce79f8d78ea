// What the published packages look like, computed from package.json's `napi`
// config with the napi-rs CLI's own reader, so that `npm run pack:local`, the
// loader test and the release workflow agree with `napi pre-publish`.
//
// - The main package names one optional dependency per target,
//   `<packageName>-<platformArchABI>` at the main package's version. The
//   repository's package.json does not carry them: before the platform
//   packages are published they cannot be resolved, and `npm ci` would refuse
//   the lockfile. `napi pre-publish` writes them at release time;
//   `publishedManifest()` writes the same map into a staged copy.
// - Each `npm/<platformArchABI>/package.json` holds one binary, at the same
//   version as the main package.
//
// As a command (the release workflow runs it after `napi pre-publish`):
//   node scripts/release-manifest.mjs --check              npm/ packages agree with package.json
//   node scripts/release-manifest.mjs --check --published  ... and package.json names them all
//   node scripts/release-manifest.mjs --check --binaries   ... and every npm/ package holds its binary
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { readNapiConfig } from '@napi-rs/cli'

export const repoRoot = fileURLToPath(new URL('..', import.meta.url))

/** package.json and its napi config, as the napi-rs CLI reads them. */
export async function readReleaseConfig(root = repoRoot) {
  const packageJsonPath = path.join(root, 'package.json')
  const config = await readNapiConfig(packageJsonPath)
  const pkg = JSON.parse(readFileSync(packageJsonPath, 'utf8'))
  return {
    pkg,
    packageName: config.packageName,
    binaryName: config.binaryName,
    targets: config.targets.map(({ triple, platformArchABI, platform, arch, abi }) => ({
      triple,
      platformArchABI,
      platform,
      arch,
      abi,
      packageName: `${config.packageName}-${platformArchABI}`,
      binaryFile: `${config.binaryName}.${platformArchABI}.node`,
      dir: path.join('npm', platformArchABI),
    })),
  }
}

/** The optionalDependencies `napi pre-publish` writes: every target at the main version. */
export function publishedOptionalDependencies(config) {
  return Object.fromEntries(config.targets.map((t) => [t.packageName, config.pkg.version]))
}

/** package.json as published: the repository's, plus the platform packages. */
export function publishedManifest(config) {
  const own = Object.fromEntries(
    Object.entries(config.pkg.optionalDependencies ?? {}).filter(
      ([name]) => !name.startsWith(`${config.packageName}-`),
    ),
  )
  return {
    ...config.pkg,
    optionalDependencies: { ...own, ...publishedOptionalDependencies(config) },
  }
}

/**
 * This machine's `platformArchABI` for the targets this package builds
 * (`linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`, ...).
 */
export function hostPlatformArchABI() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const header = process.report?.getReport()?.header
    return `linux-${arch}-${header?.glibcVersionRuntime ? 'gnu' : 'musl'}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

const LIBC = { gnu: 'glibc', musl: 'musl' }

/** Problems with the npm/ platform packages (an empty list when they agree with package.json). */
export function checkPlatformPackages(config, root = repoRoot, { binaries = false } = {}) {
  const problems = []
  for (const t of config.targets) {
    const manifestPath = path.join(root, t.dir, 'package.json')
    if (!existsSync(manifestPath)) {
      problems.push(`${t.dir}/package.json is missing (run \`napi create-npm-dirs\`)`)
      continue
    }
    const p = JSON.parse(readFileSync(manifestPath, 'utf8'))
    const expect = (what, actual, wanted) => {
      if (JSON.stringify(actual) !== JSON.stringify(wanted)) {
        problems.push(`${t.dir}/package.json ${what} is ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}`)
      }
    }
    expect('name', p.name, t.packageName)
    expect('version', p.version, config.pkg.version)
    expect('os', p.os, [t.platform])
    expect('cpu', p.cpu, [t.arch])
    expect('libc', p.libc, LIBC[t.abi] ? [LIBC[t.abi]] : undefined)
    expect('main', p.main, t.binaryFile)
    expect('files', p.files, [t.binaryFile])
    for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) {
      if (p.scripts?.[hook]) problems.push(`${t.dir}/package.json has a ${hook} script`)
    }
    if (binaries && !existsSync(path.join(root, t.dir, t.binaryFile))) {
      problems.push(`${t.dir}/${t.binaryFile} is missing`)
    }
  }
  return problems
}

/** The problems with package.json's optionalDependencies as published. */
export function checkPublishedOptionalDependencies(config) {
  const wanted = publishedOptionalDependencies(config)
  const actual = Object.fromEntries(
    Object.entries(config.pkg.optionalDependencies ?? {}).filter(([name]) =>
      name.startsWith(`${config.packageName}-`),
    ),
  )
  return JSON.stringify(actual) === JSON.stringify(wanted)
    ? []
    : [`package.json optionalDependencies are ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}`]
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = new Set(process.argv.slice(2))
  if (!args.has('--check')) {
    console.error('usage: node scripts/release-manifest.mjs --check [--published] [--binaries]')
    process.exit(2)
  }
  const config = await readReleaseConfig()
  const problems = [
    ...checkPlatformPackages(config, repoRoot, { binaries: args.has('--binaries') }),
    ...(args.has('--published') ? checkPublishedOptionalDependencies(config) : []),
  ]
  for (const problem of problems) console.error(`release-manifest: ${problem}`)
  if (problems.length > 0) process.exit(1)
  console.log(
    `release-manifest: ${config.targets.length} platform packages agree with ${config.packageName}@${config.pkg.version}`,
  )
}
