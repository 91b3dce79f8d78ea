// Run by Deno without one of the permissions the addon needs: importing the
// package must fail with an error that says which flags to run with, not one
// that says to build the addon.
import { assertEqual, check, done } from './check.mjs'

await check(`without a permission (${process.argv[2] ?? 'see the runner'}), the error says to run with --allow-ffi, --allow-read and --allow-env`, async () => {
  const error = await import('shared-circuit-breaker').then(() => null, (e) => e)
  if (error === null) throw new Error('the package loaded')
  const message = String(error.message)
  assertEqual(error.code, 'ERR_CIRCUIT_BREAKER_NATIVE_BINDING', 'code')
  for (const part of ['Deno did not let it load its native addon', 'deno run --allow-read --allow-env --allow-ffi']) {
    if (!message.includes(part)) throw new Error(`the message lacks "${part}": ${message}`)
  }
  if (/npm run build|npm install/.test(message)) throw new Error(`the message says to build: ${message}`)
  return message.split('(')[1].split(')')[0]
})
done()
