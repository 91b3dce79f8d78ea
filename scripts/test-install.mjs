// `npm run test:install`: installs the packed packages the way a user of this
// machine gets them from the registry, with no Rust toolchain in reach, and
// uses them.
//
// 1. `pack-local.mjs` builds and packs the main package and this platform's
//    package (or `--tarballs DIR` takes tarballs packed before).
// 2. A new empty folder under the OS temp folder; PATH without any folder
//    holding cargo or rustc (checked: neither can be started), and no
//    CARGO/RUSTC variables.
// 3. One `npm install --offline` of both tarballs, with an empty npm cache:
//    nothing can come from the network. The main package's optional
//    dependency on this platform's package (same name, same version) is
//    satisfied by the second tarball, as the registry would satisfy it; the
//    other platforms' packages cannot be fetched and are skipped, as npm
//    skips them on this platform. `npm ls` must show the optional
//    dependency resolved to it.
// 4. In that folder: the README's Usage example as ES module, the same with
//    `require`, `tsc --noEmit` (strict) of a consumer in each module kind
//    against the shipped declarations, two worker threads sharing one
//    breaker, and the README example under Bun and Deno (the binaries of the
//    repository's bun and deno dev dependencies).
// 5. A second folder installs the main package alone with
//    `--omit=optional`: loading it must fail with the error that names the
//    platform package and says what to do.
// 6. A third folder installs it under the seed's name, the way a user of
//    `circuit-breaker-js` keeps their imports: `npm install
//    circuit-breaker-js@npm:<name>@<version>`, the alias form exactly, from a
//    registry on the loopback interface that serves the two tarballs (and the
//    other platforms' manifests, which npm skips) and nothing else
//    (local-registry.mjs). `import CircuitBreaker, { CircuitBreakerKeys } from
//    'circuit-breaker-js'` and `require('circuit-breaker-js')` must then load
//    the package, and the README Usage example run under that name.
//
//   node scripts/test-install.mjs [--tarballs DIR] [--no-build] [--keep]
import assert from 'node:assert/strict'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { packLocal } from './pack-local.mjs'
import { hostPlatformArchABI, readReleaseConfig, repoRoot } from './release-manifest.mjs'
import { startRegistry } from './local-registry.mjs'
import { npm, readTarball, run } from './util.mjs'

// The name the seed was published as; its users install this package under
// it as an npm alias.
const SEED_NAME = 'circuit-breaker-js'
const PACKAGE_NAME = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).name

const fixture = fileURLToPath(new URL('./install-fixture/', import.meta.url))
const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc')
const TOOLCHAIN = ['cargo', 'rustc', 'rustup']

const { values: options } = parseArgs({
  options: {
    tarballs: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
})

const started = performance.now()
const tmp = mkdtempSync(path.join(os.tmpdir(), 'shared-circuit-breaker-install-'))
const results = []
let failed = false
let installSeconds = null

// Runs one check and reports it. The setup steps are `fatal`: nothing after
// them can run when they fail; the checks of the installed package are not.
async function step(name, body, { fatal = false } = {}) {
  const t0 = performance.now()
  try {
    const detail = await body()
    const ms = performance.now() - t0
    results.push({ name, ms, ok: true })
    console.log(`ok - ${name} (${(ms / 1000).toFixed(2)} s)${detail ? `: ${detail}` : ''}`)
  } catch (error) {
    failed = true
    results.push({ name, ok: false })
    console.log(`not ok - ${name}\n${String(error.stack ?? error).replace(/^/gm, '  ')}`)
    if (fatal) throw error
  }
}

try {
  // 1. The tarballs.
  let pack
  await step('pack the main package and this platform package', async () => {
    if (options.tarballs) {
      const dir = path.resolve(options.tarballs)
      pack = { out: dir, ...JSON.parse(readFileSync(path.join(dir, 'pack.json'), 'utf8')) }
    } else {
      pack = await packLocal({ out: path.join(tmp, 'tarballs'), build: !options['no-build'], log: () => {} })
    }
    return pack.packages.map((p) => `${p.tarball} (${p.size} bytes, ${p.files.length} files)`).join(', ')
  }, { fatal: true })
  const main = pack.packages.find((p) => p.role === 'main')
  const platform = pack.packages.find((p) => p.role === 'platform')
  const tarball = (p) => path.join(pack.out, p.tarball)

  // 2. No Rust toolchain.
  const env = withoutRust(process.env)
  await step('cargo and rustc are out of reach', () => {
    for (const tool of TOOLCHAIN) {
      const attempt = run(tool, ['--version'], { env, allowFailure: true })
      assert.equal(attempt.error?.code, 'ENOENT', `${tool} still starts: ${attempt.stdout}${attempt.stderr}`)
    }
    return `PATH=${env.PATH}`
  }, { fatal: true })

  // 3. Install both tarballs, offline.
  const app = path.join(tmp, 'app')
  const installed = path.join(app, 'node_modules', main.name)
  await step('npm install of both tarballs, offline, empty cache', () => {
    cpSync(fixture, app, { recursive: true })
    writeFileSync(path.join(app, 'package.json'), `${JSON.stringify({ name: 'install-check', private: true }, null, 2)}\n`)
    const install = npm(
      ['install', '--offline', '--no-audit', '--no-fund', '--cache', path.join(tmp, 'npm-cache'), tarball(main), tarball(platform)],
      { cwd: app, env },
    )
    const ls = JSON.parse(npm(['ls', '--all', '--json', '--offline'], { cwd: app, env, allowFailure: true }).stdout)
    const viaMain = ls.dependencies?.[main.name]?.dependencies?.[platform.name]
    assert.ok(viaMain, `npm ls does not show ${platform.name} under ${main.name}: ${JSON.stringify(ls, null, 2)}`)
    assert.equal(viaMain.version, main.version)
    assert.equal(ls.dependencies[platform.name].version, main.version)
    assert.equal(
      path.resolve(app, ls.dependencies[platform.name].resolved.slice('file:'.length)),
      path.resolve(tarball(platform)),
      'the platform package came from its tarball',
    )
    // The binary comes from the platform package; nothing was built.
    assert.deepEqual(
      readdirSync(installed).filter((f) => f.endsWith('.node') || f === 'target'),
      [],
      'the main package holds no binary and no build folder',
    )
    const binaryFile = platform.files.find((f) => f.path.endsWith('.node')).path
    assert.ok(statSync(path.join(app, 'node_modules', platform.name, binaryFile)).isFile())
    const others = readdirSync(path.join(app, 'node_modules')).filter(
      (d) => d.startsWith(`${main.name}-`) && d !== platform.name,
    )
    assert.deepEqual(others, [], 'no other platform package is installed')
    installSeconds = install.ms / 1000
    return `${installSeconds.toFixed(2)} s; ${platform.name}@${viaMain.version} satisfies ${main.name}'s optional dependency`
  }, { fatal: true })

  // 4. Use it.
  const node = (file) => run(process.execPath, [file], { cwd: app, env, timeout: 60000 })
  const readme = readFileSync(path.join(installed, 'README.md'), 'utf8').replaceAll('\r\n', '\n')
  // The README may import the package by its name or by the seed's (what an
  // alias install resolves): each folder runs it under the name it installed.
  const usage = withSpecifier(readmeUsageBlock(readme), main.name)
  const expected = printedComments(usage)

  await step('the README Usage example as an ES module', () => {
    writeFileSync(path.join(app, 'readme-usage.mjs'), usage)
    const result = node('readme-usage.mjs')
    assert.equal(result.stderr, '')
    assert.deepEqual(printedLines(result.stdout), expected)
    return expected.join(' | ')
  })

  await step('the same example with require', () => {
    const cjs = readFileSync(path.join(app, 'usage.cjs'), 'utf8').replaceAll('\r\n', '\n')
    assert.deepEqual(printedComments(cjs), expected, 'usage.cjs is the README example')
    const result = node('usage.cjs')
    assert.equal(result.stderr, '')
    assert.deepEqual(printedLines(result.stdout), expected)
  })

  await step('tsc --noEmit (strict) of an ESM and a CJS consumer against the shipped types', () => {
    assert.ok(existsSync(tsc), `TypeScript is not installed in the repository: ${tsc}`)
    const result = run(process.execPath, [tsc, '-p', 'tsconfig.json', '--listFiles'], { cwd: app, env, allowFailure: true })
    const lines = `${result.stdout}${result.stderr}`.split('\n')
    const diagnostics = lines.filter((line) => line.trim() && !path.isAbsolute(line.trim()))
    assert.equal(result.status, 0, `tsc reported:\n${diagnostics.join('\n')}`)
    const used = lines.map((f) => f.trim().replaceAll('\\', '/')).filter((f) => f.includes(`node_modules/${main.name}/`))
    for (const declarations of ['index.d.ts', 'index.d.mts']) {
      assert.ok(
        used.some((f) => f.endsWith(`node_modules/${main.name}/${declarations}`)),
        `tsc did not read the installed ${declarations}:\n${result.stdout}`,
      )
    }
    return used.map((f) => path.relative(app, f)).join(', ')
  })

  await step('two worker threads share one breaker', () => {
    const result = node('workers.mjs')
    assert.equal(result.stderr, '')
    return result.stdout.trim()
  })

  await step('the same example under Bun and Deno, from the installed package', () => {
    const runtimes = [
      ['bun', path.join(repoRoot, 'node_modules', '.bin', 'bun'), []],
      ['deno', path.join(repoRoot, 'node_modules', '.bin', 'deno'), ['run', '--allow-read', '--allow-env', '--allow-ffi']],
    ]
    const ran = []
    for (const [name, command, args] of runtimes) {
      assert.ok(existsSync(command), `${name} is not installed in the repository: ${command}`)
      const result = run(command, [...args, 'readme-usage.mjs'], { cwd: app, env: { ...env, NO_COLOR: '1' }, timeout: 60000 })
      assert.equal(result.stderr, '', name)
      assert.deepEqual(printedLines(result.stdout), expected, name)
      ran.push(`${name} ${run(command, ['--version'], { env }).stdout.trim().split('\n')[0]}`)
    }
    return ran.join(', ')
  })

  // 5. The platform package left out.
  await step('without the platform package, the error says which package and what to do', () => {
    const bare = path.join(tmp, 'bare')
    cpSync(path.join(fixture, 'usage.cjs'), path.join(bare, 'usage.cjs'))
    writeFileSync(path.join(bare, 'package.json'), '{ "name": "install-check-bare", "private": true }\n')
    npm(
      ['install', '--offline', '--omit=optional', '--no-audit', '--no-fund', '--cache', path.join(tmp, 'npm-cache'), tarball(main)],
      { cwd: bare, env },
    )
    assert.equal(existsSync(path.join(bare, 'node_modules', platform.name)), false)
    const result = run(process.execPath, ['usage.cjs'], { cwd: bare, env, allowFailure: true })
    assert.notEqual(result.status, 0)
    const message = /Error: (.*)/.exec(result.stderr)?.[1] ?? result.stderr
    for (const part of [
      `the package ${platform.name}`,
      `(${pack.platform})`,
      'is not installed',
      'optional dependency',
      `npm install ${platform.name}@${main.version}`,
    ]) {
      assert.ok(message.includes(part), `the error lacks "${part}": ${message}`)
    }
    return message
  })

  // 6. Installed under the seed's name, through the alias.
  await step(`npm install ${SEED_NAME}@npm:${main.name}@${main.version} from a loopback registry holding only the tarballs`, async () => {
    const aliasApp = path.join(tmp, 'alias')
    mkdirSync(aliasApp)
    writeFileSync(path.join(aliasApp, 'package.json'), '{ "name": "install-check-alias", "private": true }\n')
    const manifestOf = (p) => JSON.parse(readTarball(tarball(p)).find((e) => e.path === 'package.json').data.toString('utf8'))
    const config = await readReleaseConfig()
    const registry = await startRegistry({
      tarballs: [main, platform].map((p) => ({ manifest: manifestOf(p), file: tarball(p) })),
      manifests: config.targets
        .filter((t) => t.platformArchABI !== hostPlatformArchABI())
        .map((t) => ({ manifest: JSON.parse(readFileSync(path.join(repoRoot, t.dir, 'package.json'), 'utf8')) })),
    })
    try {
      npm(
        ['install', '--no-audit', '--no-fund', '--registry', registry.url, '--cache', path.join(tmp, 'npm-cache-alias'),
          `${SEED_NAME}@npm:${main.name}@${main.version}`],
        { cwd: aliasApp, env },
      )
    } finally {
      await registry.stop()
    }
    const dependencies = JSON.parse(readFileSync(path.join(aliasApp, 'package.json'), 'utf8')).dependencies
    assert.deepEqual(Object.keys(dependencies), [SEED_NAME])
    assert.match(dependencies[SEED_NAME], new RegExp(`^npm:${main.name}@`))
    const aliased = JSON.parse(readFileSync(path.join(aliasApp, 'node_modules', SEED_NAME, 'package.json'), 'utf8'))
    assert.equal(aliased.name, main.name, `node_modules/${SEED_NAME} holds ${aliased.name}`)
    assert.ok(existsSync(path.join(aliasApp, 'node_modules', platform.name)), `${platform.name} was installed`)
    assert.equal(existsSync(path.join(aliasApp, 'node_modules', main.name)), false, `only the alias folder holds ${main.name}`)

    const seed = [
      `import CircuitBreaker, { CircuitBreakerKeys } from '${SEED_NAME}'`,
      `import { createRequire } from 'node:module'`,
      `const cjs = createRequire(import.meta.url)('${SEED_NAME}')`,
      'const array = new Int32Array(new SharedArrayBuffer(Object.keys(CircuitBreakerKeys).length * 4))',
      'const breaker = new CircuitBreaker(array, 1, 60000)',
      "await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {})",
      'console.log(breaker.getState(), cjs.CircuitBreaker === CircuitBreaker, new cjs.CircuitBreaker(array).getState())',
    ].join('\n')
    writeFileSync(path.join(aliasApp, 'seed.mjs'), seed)
    const seedRun = run(process.execPath, ['seed.mjs'], { cwd: aliasApp, env, timeout: 60000 })
    assert.equal(seedRun.stderr, '')
    assert.equal(seedRun.stdout.trim(), 'OPEN true OPEN')

    writeFileSync(path.join(aliasApp, 'readme-usage.mjs'), withSpecifier(usage, SEED_NAME))
    const usageRun = run(process.execPath, ['readme-usage.mjs'], { cwd: aliasApp, env, timeout: 60000 })
    assert.equal(usageRun.stderr, '')
    assert.deepEqual(printedLines(usageRun.stdout), expected)
    return `node_modules/${SEED_NAME} is ${aliased.name}@${aliased.version}; the seed's imports and the README example run`
  })
} catch {
  failed = true
} finally {
  if (options.keep) console.log(`kept ${tmp}`)
  else rmSync(tmp, { recursive: true, force: true })
}

const passed = results.filter((r) => r.ok).length
console.log(`\ninstall time in the clean folder: ${installSeconds === null ? 'n/a' : `${installSeconds.toFixed(2)} s`}`)
console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`)
console.log(`${passed} passed, ${results.length - passed} failed`)
process.exitCode = failed ? 1 : 0

// ---

/**
 * The environment with every PATH folder that holds a Rust tool removed, and
 * the node_modules/.bin folders `npm run` put there (this repository's napi
 * CLI among them): the new folder sees what a user's shell would.
 */
function withoutRust(source) {
  const env = { ...source }
  for (const key of Object.keys(env)) {
    if (/^(CARGO|RUSTC|RUSTUP|RUSTFLAGS|RUSTDOC)/i.test(key)) delete env[key]
  }
  const pathKey = Object.keys(env).find((k) => k.toUpperCase() === 'PATH') ?? 'PATH'
  const exts = process.platform === 'win32' ? ['.exe', '.cmd', '.bat', ''] : ['']
  env[pathKey] = (env[pathKey] ?? '')
    .split(path.delimiter)
    .filter((dir) => dir && !dir.split(/[\\/]/).includes('node_modules'))
    .filter((dir) => !TOOLCHAIN.some((tool) => exts.some((ext) => existsSync(path.join(dir, tool + ext)))))
    .join(path.delimiter)
  return env
}

/** The first ```js block under "## Usage". */
function readmeUsageBlock(text) {
  const section = text.split(/^## /m).find((s) => s.startsWith('Usage'))
  const block = section && /```js\n([\s\S]*?)```/.exec(section)
  if (!block) throw new Error('the shipped README.md has no ```js block under "## Usage"')
  return block[1]
}

/** `code` with every import or require of the package (by either name) naming `name`. */
function withSpecifier(code, name) {
  const specifier = new RegExp(`(\\bfrom\\s*|\\brequire\\(\\s*|\\bimport\\(\\s*)(['"])(?:${SEED_NAME}|${PACKAGE_NAME})\\2`, 'g')
  return code.replace(specifier, `$1$2${name}$2`)
}

/** What the `// value` comments after console.log calls say gets printed, sorted. */
function printedComments(code) {
  return [...code.matchAll(/console\.log\(.*\)\s*\/\/ (.*)$/gm)].map((m) => unquote(m[1].trim())).sort()
}

function printedLines(stdout) {
  return stdout.trim().split(/\r?\n/).filter(Boolean).map(unquote).sort()
}

function unquote(text) {
  return text.replace(/^'(.*)'$/, '$1')
}
