// What the runtime fixtures share: `check(name, fn)` runs one check and
// prints `ok - name` or `not ok - name: error`; the runner
// (scripts/test-runtimes.mjs) counts those lines. Plain code, no test
// framework, so that it runs the same under Node, Bun and Deno.
let failures = 0

export async function check(name, fn) {
  try {
    const detail = await fn()
    console.log(`ok - ${name}${detail ? `: ${detail}` : ''}`)
  } catch (error) {
    failures++
    console.log(`not ok - ${name}: ${String(error?.stack ?? error).split('\n').slice(0, 4).join(' | ')}`)
  }
}

export function assertEqual(actual, expected, what) {
  const a = JSON.stringify(actual)
  const e = JSON.stringify(expected)
  if (a !== e) throw new Error(`${what}: got ${a}, expected ${e}`)
}

/** Ends the process: 1 if a check failed. */
export function done() {
  process.exit(failures > 0 ? 1 : 0)
}

export const runtime = typeof globalThis.Bun !== 'undefined' ? 'bun' : typeof globalThis.Deno !== 'undefined' ? 'deno' : 'node'
