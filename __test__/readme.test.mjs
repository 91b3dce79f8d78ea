// Every ```js block of the README runs, as written, so the README cannot
// drift from the package. Blocks that use `require` run as CommonJS.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync, rmSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const root = fileURLToPath(new URL('..', import.meta.url))
const readme = readFileSync(path.join(root, 'README.md'), 'utf8')
// The package's name. A block may import it by the seed's name instead,
// 'circuit-breaker-js', which is what a user who installed it under that alias
// (`npm install circuit-breaker-js@npm:<name>`) writes; inside the package
// only its own name resolves, so that specifier is read as the package's.
const { name } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'))
const SEED_NAME = /(\bfrom\s*|\brequire\(\s*|\bimport\(\s*)(['"])circuit-breaker-js\2/g
const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((match) => match[1])

test('the README has code to run', () => {
  assert.ok(blocks.length >= 4, `found ${blocks.length} blocks`)
})

blocks.forEach((code, index) => {
  const firstLine = code.split('\n').find((line) => line.trim()) ?? ''
  test(`README block ${index + 1} runs: ${firstLine.slice(0, 70)}`, () => {
    const commonJs = /\brequire\(/.test(code) && !/^import /m.test(code)
    // Written inside the package, so its name resolves to it.
    const file = path.join(root, `.readme-block-${index + 1}.${commonJs ? 'cjs' : 'mjs'}`)
    writeFileSync(file, code.replace(SEED_NAME, `$1$2${name}$2`))
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
