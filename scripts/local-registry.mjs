// A package registry on the loopback interface that serves packed tarballs
// and nothing else, so that `npm install circuit-breaker-js@npm:NAME` (the
// alias form a user types) can be run offline by test-install.mjs.
//
// It answers `GET /<name>` with a packument (the document a registry serves
// for a package: its versions, each with its manifest and tarball address
// and integrity) and `GET /-/<file>.tgz` with the tarball; every other
// request gets a 404, as a registry answers for a package it does not have.
// Platform packages without a tarball here (the other platforms) are listed
// by their manifest alone, the way npm sees them before it skips them for
// their `os`/`cpu`/`libc`.
//
// npm is run with spawnSync by the caller, which blocks its event loop, so
// the server runs in a worker thread of its own: startRegistry() starts it
// and resolves with its address and a stop function.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'

/**
 * `tarballs`: [{ manifest, file }] (file: a .tgz path); `manifests`: package
 * manifests served without a tarball. Resolves { url, stop() }.
 */
export function startRegistry({ tarballs, manifests = [] }) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { tarballs, manifests } })
    worker.once('error', reject)
    worker.once('message', ({ port }) => {
      resolve({
        url: `http://127.0.0.1:${port}/`,
        stop: () => worker.terminate(),
      })
    })
  })
}

function serve({ tarballs, manifests }) {
  const files = new Map()
  const packuments = new Map()
  const versionOf = (name) => {
    if (!packuments.has(name)) packuments.set(name, { name, 'dist-tags': {}, versions: {} })
    return packuments.get(name)
  }
  for (const { manifest } of manifests) {
    const doc = versionOf(manifest.name)
    doc.versions[manifest.version] = { ...manifest, dist: {} }
    doc['dist-tags'].latest = manifest.version
  }
  const server = http.createServer((request, response) => {
    const url = decodeURIComponent(new URL(request.url, 'http://registry').pathname)
    const { port } = server.address()
    if (url.startsWith('/-/') && files.has(url.slice(3))) {
      const data = files.get(url.slice(3))
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length })
      response.end(data)
      return
    }
    const doc = packuments.get(url.slice(1))
    if (!doc) {
      response.writeHead(404, { 'content-type': 'application/json' })
      response.end('{"error":"Not found"}')
      return
    }
    // Tarball addresses carry the port, known only once listening.
    const body = JSON.stringify(doc).replaceAll('{REGISTRY}', `http://127.0.0.1:${port}`)
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(body)
  })
  for (const { manifest, file } of tarballs) {
    const data = readFileSync(file)
    const base = path.basename(file)
    files.set(base, data)
    const doc = versionOf(manifest.name)
    doc.versions[manifest.version] = {
      ...manifest,
      dist: {
        tarball: `{REGISTRY}/-/${encodeURIComponent(base)}`,
        shasum: createHash('sha1').update(data).digest('hex'),
        integrity: `sha512-${createHash('sha512').update(data).digest('base64')}`,
      },
    }
    doc['dist-tags'].latest = manifest.version
  }
  server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }))
}

if (!isMainThread && workerData?.tarballs) serve(workerData)
