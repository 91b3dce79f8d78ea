// What readme.test.mjs needs to know about a Markdown file: its code blocks
// (to run the JavaScript ones), its headings (as GitHub names their anchors)
// and its relative links (to check that each points somewhere real).
import { existsSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'

// A block preceded (on the line before its fence) by this comment is shown
// but not run; the reason is part of the comment and of the skipped test's
// name: <!-- not run: needs a Redis server -->
const NOT_RUN = /^<!--\s*not run:\s*(.*?)\s*-->$/

/**
 * The fenced code blocks of `text`: `{ lang, code, line, notRun }`, where
 * `line` is the 1-based line of the opening fence and `notRun` the reason
 * given by a `<!-- not run: reason -->` line just above it (else null).
 */
export function codeBlocks(text) {
  const lines = text.split('\n')
  const blocks = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i])
    if (!open) continue
    const start = i
    const body = []
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i])
    const marker = start > 0 ? NOT_RUN.exec(lines[start - 1].trim()) : null
    blocks.push({ lang: open[1], code: `${body.join('\n')}\n`, line: start + 1, notRun: marker ? marker[1] || 'marked' : null })
  }
  return blocks
}

/** Whether a block's language is one the README test runs. */
export function isJavaScript(block) {
  return ['js', 'javascript', 'mjs', 'cjs'].includes(block.lang)
}

/** `text` without fenced code blocks (their lines kept, blank) and HTML comments. */
function prose(text) {
  let fence = false
  const kept = text.split('\n').map((line) => {
    if (/^```/.test(line)) {
      fence = !fence
      return ''
    }
    return fence ? '' : line
  })
  return kept.join('\n').replace(/<!--[\s\S]*?-->/g, (comment) => comment.replace(/[^\n]/g, ' '))
}

/**
 * The anchor GitHub gives a heading: its text as rendered (links reduced to
 * their text, code spans to their content), lower-cased, every character
 * that is not a letter, digit, space, hyphen or underscore dropped, and
 * spaces turned into hyphens.
 */
export function slug(heading) {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`([^`]*)`/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-')
}

/** Every anchor a link into `text` may use: its headings' slugs (a repeated one gets -1, -2, ...) and explicit `<a id>`/`<a name>`. */
export function anchors(text) {
  const found = new Set()
  const seen = new Map()
  const body = prose(text)
  for (const match of body.matchAll(/^#{1,6}\s+(.*?)\s*#*\s*$/gm)) {
    const base = slug(match[1])
    const count = seen.get(base) ?? 0
    seen.set(base, count + 1)
    found.add(count === 0 ? base : `${base}-${count}`)
  }
  for (const match of body.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) found.add(match[1])
  return found
}

/** The links of `text` outside code and comments: `{ target, line }`. */
export function links(text) {
  const body = prose(text).replace(/`[^`\n]*`/g, (code) => ' '.repeat(code.length))
  const found = []
  for (const match of body.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g)) {
    found.push({ target: match[1], line: body.slice(0, match.index).split('\n').length })
  }
  return found
}

/**
 * What is wrong with the relative links of the Markdown file `file`, as
 * messages naming the file, the line and the link: a target that does not
 * exist, or an anchor that no heading of the target has. Links with a
 * scheme (`https:`, `mailto:`) are not followed.
 */
export function brokenLinks(file, root = path.dirname(file)) {
  const text = readFileSync(file, 'utf8')
  const problems = []
  const where = (link) => `${path.relative(root, file)}:${link.line}: (${link.target})`
  for (const link of links(text)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(link.target) || link.target.startsWith('//')) continue
    if (link.target === '') {
      problems.push(`${where(link)} is empty`)
      continue
    }
    const hash = link.target.indexOf('#')
    const filePart = hash === -1 ? link.target : link.target.slice(0, hash)
    const anchor = hash === -1 ? null : decodeURIComponent(link.target.slice(hash + 1))
    const target = filePart === '' ? file : path.resolve(path.dirname(file), decodeURIComponent(filePart))
    if (!existsSync(target)) {
      problems.push(`${where(link)} points at ${path.relative(root, target)}, which does not exist`)
      continue
    }
    if (anchor === null) continue
    if (!statSync(target).isFile() || !target.endsWith('.md')) {
      if (!/^L\d+(-L\d+)?$/.test(anchor)) problems.push(`${where(link)} has an anchor into a file that is not Markdown`)
      continue
    }
    if (!anchors(readFileSync(target, 'utf8')).has(anchor)) {
      problems.push(`${where(link)}: ${path.relative(root, target)} has no heading #${anchor}`)
    }
  }
  return problems
}
