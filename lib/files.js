'use strict'

// Breaker files: a breaker's slots in a file that every process maps
// shared, created whole or not at all.

const fs = require('node:fs')
const { fileURLToPath } = require('node:url')
const { threadId } = require('node:worker_threads')
const native = require('./native.js')
const { describe } = require('./describe.js')
const { SLOT_COUNT } = require('./slots.js')
const { arrayLength, readOption } = require('./options.js')

/**
 * An `Int32Array` over the slots of the breaker file at `path`, mapped
 * shared: every process (and thread) that opens the same file and builds a
 * breaker over the array shares one breaker. Creates the file (mode 0o600
 * unless `mode` says otherwise) when it does not exist and `create` is not
 * false; several processes may race to create it, and all end up on the
 * same file. A file that is not exactly a breaker file of this layout is
 * refused and left untouched.
 */
function openBreakerFile(path, options) {
  const where = filePath(path)
  // A new file is as long as breakers with these options need.
  const slots = typeof options === 'object' && options !== null ? arrayLength(options) : SLOT_COUNT
  const create = readOption(options, 'create') ?? true
  const mode = readOption(options, 'mode') ?? 0o600
  if (typeof create !== 'boolean') {
    throw new TypeError(`options.create must be a boolean, got ${describe(create)}`)
  }
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw typeof mode === 'number'
      ? new RangeError(`options.mode must be an integer from 0 to 0o7777, got ${mode}`)
      : new TypeError(`options.mode must be a number, got ${describe(mode)}`)
  }
  let fd
  // Open, or create; a file that another process linked into place and
  // removed again in between sends us round once more.
  for (let attempt = 1; fd === undefined; attempt++) {
    try {
      fd = fs.openSync(where, 'r+')
    } catch (error) {
      if (error.code !== 'ENOENT' || !create) throw error
      try {
        fd = createBreakerFile(where, mode, slots)
      } catch (createError) {
        if (createError.code === 'ENOENT' && createError.path === where && attempt < 3) continue
        // A missing folder: say so about the path asked for, not the temporary one.
        throw createError.code === 'ENOENT' ? error : createError
      }
    }
  }
  try {
    return native.mapFile(fd)
  } catch (error) {
    if (error?.code !== 'ERR_CIRCUIT_BREAKER_FILE') throw error
    const refused = new Error(`circuit-breaker-js: the file ${where} ${error.message}`)
    refused.code = error.code
    refused.path = where
    throw refused
  } finally {
    fs.closeSync(fd)
  }
}

function filePath(path) {
  if (typeof path === 'string' && path !== '' && !path.includes('\0')) return path
  if (path instanceof URL) return fileURLToPath(path)
  throw new TypeError(`path must be a non-empty string or a file: URL, got ${describe(path)}`)
}

// Writes the whole file under a temporary name and links it into place, so
// nobody ever opens a half-written breaker file. Whoever links first wins;
// the others open the winner's file.
function createBreakerFile(path, mode, slots) {
  const temporary = `${path}.${process.pid}-${threadId}-${Math.random().toString(36).slice(2)}.new`
  const fd = fs.openSync(temporary, 'wx+', mode)
  let keep = false
  try {
    fs.fchmodSync(fd, mode) // exactly `mode`, whatever the umask
    fs.writeSync(fd, native.fileImage(slots))
    try {
      fs.linkSync(temporary, path)
    } catch (error) {
      if (error.code !== 'EEXIST') throw error
      return fs.openSync(path, 'r+')
    }
    keep = true
    return fd
  } finally {
    if (!keep) fs.closeSync(fd)
    try {
      fs.unlinkSync(temporary)
    } catch {
      // Leaves a stray temporary file, not a leaked descriptor.
    }
  }
}

module.exports = { openBreakerFile }
