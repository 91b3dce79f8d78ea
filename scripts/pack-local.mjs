// `npm run pack:local`: builds the release addon for this machine and packs,
// into one folder, the two tarballs a user of this machine would install
// from the registry: the main package and this platform's binary package,
// each exactly as the release workflow publishes it.
//
// The release workflow runs `napi artifacts` (binaries into npm/<target>/),
// `napi pre-publish` (optionalDependencies into package.json, then publishes
// npm/<target>/) and `npm publish --ignore-scripts`. Here the same manifests
// are made in a staged copy under the OS temp folder (release-manifest.mjs
// computes them with the napi-rs CLI's config reader), because the
// repository's own package.json must stay without the optionalDependencies
// (see release-manifest.mjs), and `npm pack --ignore-scripts` packs them:
// what npm puts in the tarball is decided by npm from `files`, as on publish.
//
// Then it opens both tarballs and checks them: only the listed runtime files,
// no Rust sources, tests or build folders, no install scripts, the platform
// package at the main package's version and holding the binary just built.
//
//   node scripts/pack-local.mjs [--out DIR] [--no-build]
//     --out DIR   where the tarballs and pack.json go (default artifacts/local-pack)
//     --no-build  use the addon already built in the repository root
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  checkPlatformPackages,
  checkPublishedOptionalDependencies,
  hostPlatformArchABI,
  publishedManifest,
  readReleaseConfig,
  repoRoot,
} from './release-manifest.mjs'
import { formatBytes, npm, readTarball } from './util.mjs'

// The main package ships these and nothing else (npm adds package.json and
// the README itself; a LICENSE file too once there is one): the entry
// points, their types, the generated loader, every file of the facade in
// lib/, and the documentation pages in docs/ that the README links.
const filesIn = (dir, pattern) =>
  readdirSync(path.join(repoRoot, dir))
    .filter((file) => pattern.test(file))
    .map((file) => `${dir}/${file}`)
const MAIN_FILES = [
  'index.js',
  'index.mjs',
  'index.d.ts',
  'index.d.mts',
  'binding.js',
  'binding.d.ts',
  ...filesIn('lib', /\.(js|mjs|d\.mts)$/),
  ...filesIn('docs', /\.(md|png)$/),
]
const ALWAYS = ['package.json', 'README.md']
const INSTALL_HOOKS = ['preinstall', 'install', 'postinstall']
// Never copied into the staged package: big, generated, or not files.
const NOT_STAGED = new Set(['.git', 'node_modules', 'target', 'artifacts', 'npm'])

export async function packLocal({ out = path.join(repoRoot, 'artifacts', 'local-pack'), build = true, log = console.log } = {}) {
  const config = await readReleaseConfig()
  const problems = checkPlatformPackages(config)
  if (problems.length > 0) throw new Error(`npm/ does not match package.json:\n  ${problems.join('\n  ')}`)

  const host = hostPlatformArchABI()
  const target = config.targets.find((t) => t.platformArchABI === host)
  if (!target) {
    throw new Error(`this machine (${host}) is not among napi.targets: ${config.targets.map((t) => t.platformArchABI).join(', ')}`)
  }

  if (build) {
    log(`building the release addon for ${target.triple} (npm run build)`)
    const built = npm(['run', 'build'], { cwd: repoRoot })
    log(`  built in ${(built.ms / 1000).toFixed(1)} s`)
  }
  const binary = path.join(repoRoot, target.binaryFile)
  if (!existsSync(binary)) throw new Error(`${binary} does not exist: run \`npm run build\` first`)
  const binaryHash = sha256(readFileSync(binary))

  mkdirSync(out, { recursive: true })
  for (const entry of readdirSync(out)) {
    if (entry.endsWith('.tgz') || entry === 'pack.json') rmSync(path.join(out, entry))
  }

  const stage = mkdtempSync(path.join(os.tmpdir(), 'shared-circuit-breaker-pack-'))
  try {
    // The main package: the repository as a checkout has it, with the
    // published package.json.
    const mainDir = path.join(stage, 'main')
    cpSync(repoRoot, mainDir, {
      recursive: true,
      filter: (source) => {
        const relative = path.relative(repoRoot, source)
        if (relative === '') return true
        const [top] = relative.split(path.sep)
        if (NOT_STAGED.has(top)) return false
        return !(relative === top && (top.endsWith('.node') || top.endsWith('.tgz') || top.startsWith('.readme-block-')))
      },
    })
    writeFileSync(path.join(mainDir, 'package.json'), `${JSON.stringify(publishedManifest(config), null, 2)}\n`)

    // This platform's package: npm/<target>/ with the binary in it, as
    // `napi artifacts` leaves it.
    const platformDir = path.join(stage, 'platform')
    cpSync(path.join(repoRoot, target.dir), platformDir, { recursive: true })
    cpSync(binary, path.join(platformDir, target.binaryFile))

    const packed = []
    for (const [role, dir] of [['main', mainDir], ['platform', platformDir]]) {
      const result = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', out], { cwd: dir })
      const [info] = JSON.parse(result.stdout)
      const tarball = path.join(out, info.filename)
      const entries = readTarball(tarball)
      packed.push({
        role,
        name: info.name,
        version: info.version,
        tarball: info.filename,
        size: readFileSync(tarball).length,
        unpackedSize: info.unpackedSize,
        files: entries.map(({ path: file, size }) => ({ path: file, size })).sort((a, b) => a.path.localeCompare(b.path)),
        entries,
      })
    }

    const errors = [
      ...checkMain(packed[0], config),
      ...checkPlatform(packed[1], config, target, binaryHash),
    ]
    if (errors.length > 0) throw new Error(`the tarballs are not as they should be:\n  ${errors.join('\n  ')}`)

    const summary = {
      platform: target.platformArchABI,
      triple: target.triple,
      packages: packed.map(({ entries, ...rest }) => rest),
    }
    writeFileSync(path.join(out, 'pack.json'), `${JSON.stringify(summary, null, 2)}\n`)
    for (const p of summary.packages) {
      log(`${p.tarball}  ${formatBytes(p.size)} packed, ${formatBytes(p.unpackedSize)} unpacked, ${p.files.length} files`)
      for (const f of p.files) log(`  ${f.path.padEnd(40)} ${formatBytes(f.size).padStart(10)}`)
    }
    log(`tarballs in ${out}`)
    return { out, ...summary }
  } finally {
    rmSync(stage, { recursive: true, force: true })
  }
}

function checkMain(main, config) {
  const errors = []
  const license = readdirSync(repoRoot).filter((f) => /^(LICEN[CS]E|COPYING)/i.test(f))
  const allowed = new Set([...MAIN_FILES, ...ALWAYS, ...license])
  const paths = main.files.map((f) => f.path)
  for (const file of paths) {
    if (!allowed.has(file)) errors.push(`${main.tarball} contains ${file}, which is not a runtime file`)
    if (/\.rs$|Cargo\.|(^|\/)(__test__|target|core|src|bench|examples)\/|\.node$|^build\.rs$|binding\.gyp$/.test(file)) {
      errors.push(`${main.tarball} contains ${file} (Rust sources, tests, build output and binaries stay out)`)
    }
  }
  for (const file of [...MAIN_FILES, ...ALWAYS]) {
    if (!paths.includes(file)) errors.push(`${main.tarball} lacks ${file}`)
  }
  const manifest = JSON.parse(main.entries.find((e) => e.path === 'package.json').data.toString('utf8'))
  for (const hook of INSTALL_HOOKS) {
    if (manifest.scripts?.[hook]) errors.push(`${main.tarball} has an ${hook} script: a registry install would run it`)
  }
  if (manifest.gypfile) errors.push(`${main.tarball} sets gypfile: npm would run node-gyp on install`)
  if (manifest.version !== config.pkg.version) errors.push(`${main.tarball} is version ${manifest.version}`)
  errors.push(...checkPublishedOptionalDependencies({ ...config, pkg: manifest }).map((e) => `${main.tarball}: ${e}`))
  return errors
}

function checkPlatform(platform, config, target, binaryHash) {
  const errors = []
  const paths = platform.files.map((f) => f.path).sort()
  const wanted = ['README.md', target.binaryFile, 'package.json'].sort()
  if (JSON.stringify(paths) !== JSON.stringify(wanted)) {
    errors.push(`${platform.tarball} holds ${paths.join(', ')}; expected ${wanted.join(', ')}`)
  }
  const manifest = JSON.parse(platform.entries.find((e) => e.path === 'package.json').data.toString('utf8'))
  if (manifest.name !== target.packageName) errors.push(`${platform.tarball} is named ${manifest.name}`)
  if (manifest.version !== config.pkg.version) {
    errors.push(`${platform.tarball} is version ${manifest.version}, the main package ${config.pkg.version}`)
  }
  for (const hook of INSTALL_HOOKS) {
    if (manifest.scripts?.[hook]) errors.push(`${platform.tarball} has an ${hook} script`)
  }
  const shipped = platform.entries.find((e) => e.path === target.binaryFile)
  if (shipped && sha256(shipped.data) !== binaryHash) errors.push(`${platform.tarball}: ${target.binaryFile} is not the binary just built`)
  return errors
}

function sha256(buffer) {
  return createHash('sha256').update(buffer).digest('hex')
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, 'no-build': { type: 'boolean', default: false } },
  })
  try {
    await packLocal({ out: values.out ? path.resolve(values.out) : undefined, build: !values['no-build'] })
  } catch (error) {
    console.error(`pack:local: ${error.message}`)
    process.exit(1)
  }
}
