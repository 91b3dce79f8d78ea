// A TCP proxy on loopback that the fleet tests put between a breaker and its
// store, to make the network slow or broken on purpose:
//   'pass'      forwards both ways
//   'delay'     forwards each chunk `delayMs` later (in order)
//   'drop'      resets every connection and refuses new ones
//   'blackhole' keeps connections open but forwards nothing either way
import net from 'node:net'

export async function startProxy(targetPort) {
  let mode = 'pass'
  let delayMs = 0
  const links = new Set()

  // Sends `chunk` to `to` as the mode says, keeping chunks in order.
  const forward = (link, to, chunk) => {
    if (mode === 'blackhole') return
    if (mode === 'delay') {
      const at = Math.max(Date.now() + delayMs, link.last)
      link.last = at
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk)
      }, at - Date.now())
      return
    }
    to.write(chunk)
  }

  const server = net.createServer((client) => {
    if (mode === 'drop') {
      client.resetAndDestroy()
      return
    }
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort })
    const link = { client, upstream, last: 0 }
    links.add(link)
    const close = () => {
      links.delete(link)
      client.destroy()
      upstream.destroy()
    }
    client.on('data', (chunk) => forward(link, upstream, chunk))
    upstream.on('data', (chunk) => forward(link, client, chunk))
    client.on('error', close)
    upstream.on('error', close)
    client.on('close', close)
    upstream.on('close', close)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: server.address().port,
    connections: () => links.size,
    /** 'pass' | 'delay' | 'drop' | 'blackhole'; `options.delayMs` for 'delay'. */
    setMode(next, options = {}) {
      mode = next
      delayMs = options.delayMs ?? 0
      if (next === 'drop') {
        for (const link of links) {
          link.client.resetAndDestroy()
          link.upstream.destroy()
        }
        links.clear()
      }
    },
    async close() {
      for (const link of links) {
        link.client.destroy()
        link.upstream.destroy()
      }
      links.clear()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
