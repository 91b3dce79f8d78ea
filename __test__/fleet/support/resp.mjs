// A minimal RESP2 client for the fleet tests: enough to ask a test server
// what it holds (HGETALL, INFO commandstats, CLIENT LIST) and to break it on
// purpose (FLUSHALL, CLIENT PAUSE, DEBUG SLEEP). Not part of the package:
// the package talks to Redis from Rust.
import net from 'node:net'
import tls from 'node:tls'

export class RespError extends Error {}

// Parses one reply at `offset`; returns [value, next offset] or undefined
// when the buffer does not hold a whole reply yet.
function parse(buffer, offset) {
  const end = buffer.indexOf('\r\n', offset)
  if (end === -1) return undefined
  const type = String.fromCharCode(buffer[offset])
  const line = buffer.toString('utf8', offset + 1, end)
  const next = end + 2
  switch (type) {
    case '+':
      return [line, next]
    case '-':
      return [new RespError(line), next]
    case ':':
      return [Number(line), next]
    case '$': {
      const length = Number(line)
      if (length === -1) return [null, next]
      if (buffer.length < next + length + 2) return undefined
      return [buffer.toString('utf8', next, next + length), next + length + 2]
    }
    case '*': {
      const count = Number(line)
      if (count === -1) return [null, next]
      const items = []
      let at = next
      for (let i = 0; i < count; i++) {
        const item = parse(buffer, at)
        if (item === undefined) return undefined
        items.push(item[0])
        at = item[1]
      }
      return [items, at]
    }
    default:
      throw new RespError(`unexpected reply type ${JSON.stringify(type)}`)
  }
}

function encode(args) {
  let out = `*${args.length}\r\n`
  for (const arg of args) {
    const text = String(arg)
    out += `$${Buffer.byteLength(text)}\r\n${text}\r\n`
  }
  return out
}

/**
 * Connects to `port` on loopback (TLS when `tlsOptions` is given). The
 * client's `command(...args)` resolves with the reply (rejects with a
 * RespError for an error reply); `close()` ends the connection.
 */
export async function connect(port, { tlsOptions, timeoutMs = 5000 } = {}) {
  const socket = tlsOptions
    ? tls.connect({ host: '127.0.0.1', port, ...tlsOptions })
    : net.connect({ host: '127.0.0.1', port })
  await new Promise((resolve, reject) => {
    socket.once(tlsOptions ? 'secureConnect' : 'connect', resolve)
    socket.once('error', reject)
  })
  let buffered = Buffer.alloc(0)
  const waiting = []
  let failure
  socket.on('data', (chunk) => {
    buffered = Buffer.concat([buffered, chunk])
    for (;;) {
      const reply = parse(buffered, 0)
      if (reply === undefined) break
      buffered = buffered.subarray(reply[1])
      const next = waiting.shift()
      if (next === undefined) continue
      clearTimeout(next.timer)
      if (reply[0] instanceof RespError) next.reject(reply[0])
      else next.resolve(reply[0])
    }
  })
  const failAll = (error) => {
    failure = error
    for (const next of waiting.splice(0)) {
      clearTimeout(next.timer)
      next.reject(error)
    }
  }
  socket.on('error', failAll)
  socket.on('close', () => failAll(new RespError('connection closed')))
  return {
    command(...args) {
      if (failure !== undefined) return Promise.reject(failure)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new RespError(`${args[0]}: no reply within ${timeoutMs} ms`)), timeoutMs)
        waiting.push({ resolve, reject, timer })
        socket.write(encode(args))
      })
    },
    close() {
      socket.destroy()
    },
  }
}

/** `HGETALL`'s flat list as an object. */
export function pairs(list) {
  const object = {}
  for (let i = 0; i + 1 < list.length; i += 2) object[list[i]] = list[i + 1]
  return object
}

/** `INFO commandstats` as { command: calls }. */
export function commandCalls(info) {
  const calls = {}
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[match[1]] = Number(match[2])
  return calls
}
