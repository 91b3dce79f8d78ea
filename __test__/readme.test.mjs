// Every ```js block of the README and of every page in docs/ runs, as
// written, so the documentation cannot drift from the package. Blocks that
// use `require` run as CommonJS. A block that is shown but must not run
// (it needs a server this test does not start) has the line
// `<!-- not run: the reason -->` just above its fence: it is reported as a
// skipped test with that reason. And every relative link of those files
// points at a file that exists and, with a `#anchor`, at one of its headings.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import os from 'node:os'
import path from 'node:path'
import { anchors, brokenLinks, codeBlocks, isJavaScript, links, slug } from './support/markdown.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const pages = [
  'README.md',
  ...readdirSync(path.join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
]
// The package's name. A block may import it by the seed's name instead,
// 'circuit-breaker-js', which is what a user who installed it under that alias
// (`npm install circuit-breaker-js@npm:<name>`) writes; inside the package
// only its own name resolves, so that specifier is read as the package's.
const { name: packageName } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'))
const SEED_NAME = /(\bfrom\s*|\brequire\(\s*|\bimport\(\s*)(['"])circuit-breaker-js\2/g

const blocksOf = (page) => codeBlocks(readFileSync(path.join(root, page), 'utf8')).filter(isJavaScript)

test('the README and the docs have code to run', () => {
  const readme = blocksOf('README.md').filter((block) => !block.notRun)
  assert.ok(readme.length >= 3, `README.md: found ${readme.length} blocks to run`)
  const docs = pages.slice(1).flatMap(blocksOf).filter((block) => !block.notRun)
  assert.ok(docs.length >= 5, `docs/: found ${docs.length} blocks to run`)
})

for (const page of pages) {
  blocksOf(page).forEach((block, index) => {
    const { code } = block
    const firstLine = code.split('\n').find((line) => line.trim()) ?? ''
    const name = `${page} block ${index + 1} (line ${block.line}) runs: ${firstLine.slice(0, 60)}`
    test(name, { skip: block.notRun ? `not run: ${block.notRun}` : false }, () => {
      const commonJs = /\brequire\(/.test(code) && !/^import /m.test(code)
      // Written inside the package, so its name resolves to it.
      const stem = page.replace(/\.md$/, '').replace(/[^a-z0-9]+/gi, '-')
      const file = path.join(root, `.readme-block-${stem}-${index + 1}.${commonJs ? 'cjs' : 'mjs'}`)
      writeFileSync(file, code.replace(SEED_NAME, `$1$2${packageName}$2`))
      try {
        const run = spawnSync(process.execPath, [file], { cwd: root, encoding: 'utf8', timeout: 60000 })
        assert.equal(run.stderr, '')
        assert.equal(run.status, 0)
        // Every `// value` comment after a console.log is what that line prints.
        const expected = [...code.matchAll(/console\.log\(.*\)\s*\/\/ (.*)$/gm)].map((m) => m[1].trim())
        const printed = run.stdout.trim().split('\n').filter(Boolean)
        const normalise = (text) => text.replace(/^'(.*)'$/, '$1')
        assert.deepEqual(printed.map(normalise).sort(), expected.map(normalise).sort())
      } finally {
        rmSync(file, { force: true })
      }
    })
  })
}

test('every relative link of the README and the docs points at a file and heading that exist', () => {
  const problems = pages.flatMap((page) => brokenLinks(path.join(root, page), root))
  assert.deepEqual(problems, [])
  // The check has links to look at: the README links every page of docs/.
  const readmeTargets = links(readFileSync(path.join(root, 'README.md'), 'utf8')).map((link) => link.target.split('#')[0])
  for (const page of pages.slice(1)) assert.ok(readmeTargets.includes(page), `README.md does not link ${page}`)
})

test('anchors are named as GitHub names them', () => {
  assert.equal(slug('Events, stats and metrics'), 'events-stats-and-metrics')
  assert.equal(slug('`STATE` written from JavaScript'), 'state-written-from-javascript')
  assert.equal(slug('What `FAILURE_COUNT` holds (64-bit?)'), 'what-failure_count-holds-64-bit')
  assert.equal(slug('Sharing one breaker between [processes](docs/processes.md)'), 'sharing-one-breaker-between-processes')
  assert.deepEqual([...anchors('# Usage\n\n```sh\n# not a heading\n```\n## Usage\n### Usage\n')], ['usage', 'usage-1', 'usage-2'])
})

test('the link check finds a missing file, a missing heading and nothing in code or comments', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'readme-links-'))
  try {
    writeFileSync(path.join(dir, 'other.md'), '# Other page\n\n## A section\n')
    writeFileSync(
      path.join(dir, 'page.md'),
      [
        '# Page',
        '[fine](other.md) [fine too](other.md#a-section) [here](#page) [web](https://example.com/x.md#nowhere)',
        '[gone](missing.md)',
        '[no such heading](other.md#no-section)',
        '[not here](#elsewhere)',
        '`[in code](missing.md)` <!-- [in a comment](missing.md) -->',
        '```md',
        '[in a block](missing.md)',
        '```',
      ].join('\n'),
    )
    assert.deepEqual(brokenLinks(path.join(dir, 'page.md'), dir), [
      'page.md:3: (missing.md) points at missing.md, which does not exist',
      'page.md:4: (other.md#no-section): other.md has no heading #no-section',
      'page.md:5: (#elsewhere): page.md has no heading #elsewhere',
    ])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a block marked not run is found with its reason, and only that block', () => {
  const blocks = codeBlocks('<!-- not run: needs a server -->\n```js\nserver()\n```\n\n```js\nrun()\n```\n')
  assert.deepEqual(
    blocks.map((block) => [block.line, block.notRun, block.code]),
    [
      [2, 'needs a server', 'server()\n'],
      [6, null, 'run()\n'],
    ],
  )
})

test('docs/architecture.md links every source file of lib/, src/, core/src/ and fleet/src/, subfolders included', () => {
  const linked = new Set(
    links(readFileSync(path.join(root, 'docs/architecture.md'), 'utf8')).map((link) =>
      path.relative(root, path.resolve(root, 'docs', link.target.split('#')[0])),
    ),
  )
  const rooms = { lib: '.js', src: '.rs', 'core/src': '.rs', 'fleet/src': '.rs' }
  const sources = Object.entries(rooms).flatMap(([dir, ext]) =>
    readdirSync(path.join(root, dir), { recursive: true })
      .filter((name) => name.endsWith(ext))
      .map((name) => `${dir}/${name}`),
  )
  assert.ok(sources.length >= 20, `found ${sources.length} source files`)
  assert.deepEqual(sources.filter((file) => !linked.has(file)), [])
})
