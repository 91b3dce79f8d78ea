'use strict'

// Loads the native addon for this platform through the loader that
// `napi build` generates (`binding.js`), and turns a failure into an error
// that says what was looked for and what to do.

function loadNative() {
  try {
    return require('./binding.js')
  } catch (cause) {
    const platform = `${process.platform}-${process.arch}`
    throw new Error(
      `circuit-breaker-js: no native binary could be loaded for ${platform}. ` +
        'Its prebuilt binary comes as an optional dependency: reinstall without ' +
        '--no-optional / --omit=optional, or, with Rust installed, build it from ' +
        'source with `npm run build` in the package folder.',
      { cause },
    )
  }
}

module.exports = loadNative()
