'use strict'

// Breaker files: a breaker's slots in a file that every process maps
// shared, created whole or not at all.

const fs = require('node:fs')
const { constants: osConstants } = require('node:os')
const pathModule = require('node:path')
const util = require('node:util')
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
 * refused and left untouched, and so is a symbolic link unless
 * `followSymlinks` is true.
 */
function openBreakerFile(path, options) {
  filePath(path)
  // A new file is as long as breakers with these options need.
  const slots = typeof options === 'object' && options !== null ? arrayLength(options) : SLOT_COUNT
  return openSlotsFile(path, options, slots)
}

// openBreakerFile, making a new file `slots` slots long.
function openSlotsFile(path, options, slots) {
  const where = filePath(path)
  const create = readOption(options, 'create') ?? true
  const mode = readOption(options, 'mode') ?? 0o600
  const followSymlinks = readOption(options, 'followSymlinks') ?? false
  if (typeof create !== 'boolean') {
    throw new TypeError(`options.create must be a boolean, got ${describe(create)}`)
  }
  // Permission bits only: a setuid, setgid or sticky bit on a breaker file is never wanted.
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    const got = Number.isInteger(mode) && mode > 0o777 ? `0o${mode.toString(8)}` : mode
    throw typeof mode === 'number'
      ? new RangeError(`options.mode must be an integer from 0 to 0o777 (permission bits only), got ${got}`)
      : new TypeError(`options.mode must be a number, got ${describe(mode)}`)
  }
  if (typeof followSymlinks !== 'boolean') {
    throw new TypeError(`options.followSymlinks must be a boolean, got ${describe(followSymlinks)}`)
  }
  const flags = fs.constants.O_RDWR | (followSymlinks ? 0 : fs.constants.O_NOFOLLOW ?? 0)
  let fd
  // Open, or create; a file that another process linked into place and
  // removed again in between sends us round once more.
  for (let attempt = 1; fd === undefined; attempt++) {
    try {
      fd = openFile(where, flags)
    } catch (error) {
      if (error.code !== 'ENOENT' || !create) throw error
      fd = createBreakerFile(where, flags, mode, slots)
      if (fd === undefined && attempt === 3) throw error
    }
  }
  try {
    return native.mapFile(fd)
  } catch (error) {
    if (error?.code !== 'ERR_CIRCUIT_BREAKER_FILE') throw error
    throw fileError(where, error.message)
  } finally {
    fs.closeSync(fd)
  }
}

function filePath(path) {
  if (typeof path === 'string' && path !== '' && !path.includes('\0')) return path
  if (path instanceof URL) return fileURLToPath(path)
  throw new TypeError(`path must be a non-empty string or a file: URL, got ${describe(path)}`)
}

// Opens the existing breaker file at `path` read-write. Without O_NOFOLLOW
// in `flags` a symbolic link is followed; with it, one is refused by name
// (the system's own error, ELOOP, would say "too many symbolic links"; the
// BSDs say EMLINK).
function openFile(path, flags) {
  try {
    return fs.openSync(path, flags)
  } catch (error) {
    if ((error.code === 'ELOOP' || error.code === 'EMLINK') && (flags & fs.constants.O_NOFOLLOW) !== 0 && isSymlink(path)) {
      throw fileError(path, 'is a symbolic link; pass followSymlinks: true to open the file it points to')
    }
    throw error
  }
}

function isSymlink(path) {
  try {
    return fs.lstatSync(path).isSymbolicLink()
  } catch {
    return false
  }
}

// An Error that completes "the file `path` ...", with the code of refused files.
function fileError(path, what) {
  const error = new Error(`circuit-breaker-js: the file ${path} ${what}`)
  error.code = 'ERR_CIRCUIT_BREAKER_FILE'
  error.path = path
  return error
}

// Writes the whole file under a short temporary name in the same folder
// (a name of up to 255 bytes stays legal) and links it into place, so nobody
// ever opens a half-written breaker file: its blocks are reserved first,
// every byte is written and synced before the link, and a file that could
// not be completed is removed, never linked. Whoever links first wins, and
// everyone opens the winner's file; undefined if it was removed again at
// once. Errors name `path`, not the temporary file.
function createBreakerFile(path, flags, mode, slots) {
  const temporary = pathModule.join(
    pathModule.dirname(path),
    `.cbjs-${process.pid}-${threadId}-${Math.random().toString(36).slice(2, 10)}.new`,
  )
  let fd
  try {
    fd = fs.openSync(temporary, 'wx+', mode)
  } catch (error) {
    throw creationError(error, path)
  }
  try {
    fs.fchmodSync(fd, mode) // exactly `mode`, whatever the umask
    const image = native.fileImage(slots)
    const refused = native.reserveFile(fd, image.length)
    if (refused !== 0) throw systemError(-refused, 'fallocate', path)
    // A write may store fewer bytes than asked (a file size limit, a full
    // disk): go on from there; the next write then fails with the reason.
    for (let written = 0; written < image.length; ) {
      const wrote = fs.writeSync(fd, image, written, image.length - written, written)
      if (wrote <= 0) throw systemError(-osConstants.errno.EIO, 'write', path)
      written += wrote
    }
    fs.fsyncSync(fd)
    fs.linkSync(temporary, path)
  } catch (error) {
    if (error.code !== 'EEXIST' || error.syscall !== 'link') throw creationError(error, path)
  } finally {
    fs.closeSync(fd)
    try {
      fs.unlinkSync(temporary)
    } catch {
      // Leaves a stray temporary file, not a leaked descriptor.
    }
  }
  // Opened by its name, which is what the process's list of mappings then
  // shows (not a deleted temporary file).
  try {
    return openFile(path, flags)
  } catch (error) {
    if (error.code === 'ENOENT') return undefined
    throw error
  }
}

// A system error met while creating the breaker file at `path`, restated
// about `path`: the temporary file is ours, not the caller's.
function creationError(error, path) {
  if (typeof error?.errno !== 'number' || typeof error.syscall !== 'string' || error.path === path) return error
  return systemError(error.errno, error.syscall, path)
}

// An error in the words of `fs` ("EFBIG: file too large, write '...'") for
// `errno` (negative, as `fs` errors carry it) met by `syscall` on `path`.
function systemError(errno, syscall, path) {
  const [code, description] = util.getSystemErrorMap().get(errno) ?? ['UNKNOWN', 'unknown error']
  const error = new Error(`${code}: ${description}, ${syscall} '${path}'`)
  return Object.assign(error, { errno, code, syscall, path })
}

module.exports = { openBreakerFile, openSlotsFile, fileError }
