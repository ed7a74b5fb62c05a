// Vite plugins a fiber-vl page needs, shared by the test page (and a later demo page):
// - crossOriginIsolation: COOP/COEP headers on the dev and preview servers. Without them the page
//   is not cross-origin isolated, SharedArrayBuffer is missing, and tfjs-backend-wasm and fiber-vl's
//   kernel pool run on one thread.
// - tfjsWasmFiles: tfjs-backend-wasm's three .wasm binaries at `<base>wasm/`, served in dev and
//   emitted by `vite build`, so `initBackend({ backend: 'wasm', wasmPath: '/wasm/' })` finds them.
// - serveFolders: read-only folders of the repository (fixtures) under URL prefixes, dev and preview.
import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize, sep } from 'node:path';
import type { Connect, Plugin } from 'vite';

export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export function crossOriginIsolation(): Plugin {
  return {
    name: 'fiber-cross-origin-isolation',
    config: () => ({ server: { headers: ISOLATION_HEADERS }, preview: { headers: ISOLATION_HEADERS } }),
  };
}

const TYPES: Record<string, string> = {
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.safetensors': 'application/octet-stream',
};

/** Serves the files of `dir` at `prefix` (no listing, no path escaping the folder). */
function folderMiddleware(prefix: string, dir: string): Connect.NextHandleFunction {
  const root = normalize(dir);
  return (req, res, next) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (!url.pathname.startsWith(prefix)) return next();
    const file = normalize(join(root, decodeURIComponent(url.pathname.slice(prefix.length))));
    if (!file.startsWith(root + sep) || !statSync(file, { throwIfNoEntry: false })?.isFile()) return next();
    res.setHeader('Content-Type', TYPES[extname(file)] ?? 'application/octet-stream');
    res.setHeader('Content-Length', statSync(file).size);
    for (const [k, v] of Object.entries(ISOLATION_HEADERS)) res.setHeader(k, v);
    createReadStream(file).pipe(res);
  };
}

export function serveFolders(folders: Record<string, string>): Plugin {
  const install = (server: { middlewares: Connect.Server }) => {
    for (const [prefix, dir] of Object.entries(folders)) server.middlewares.use(folderMiddleware(prefix, dir));
  };
  return { name: 'fiber-serve-folders', configureServer: install, configurePreviewServer: install };
}

/** The folder holding tfjs-backend-wasm's .wasm files, resolved from `fromDir` (a package that depends on it). */
export function tfjsWasmDir(fromDir: string): string {
  const require = createRequire(join(fromDir, 'package.json'));
  return join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
}

export function tfjsWasmFiles(fromDir: string, urlFolder = 'wasm/'): Plugin {
  const dir = tfjsWasmDir(fromDir);
  const files = readdirSync(dir).filter((f) => f.endsWith('.wasm'));
  let base = '/';
  return {
    name: 'fiber-tfjs-wasm-files',
    configResolved: (c) => void (base = c.base),
    configureServer: (server) => void server.middlewares.use(folderMiddleware(`${base}${urlFolder}`, dir)),
    generateBundle() {
      for (const f of files)
        this.emitFile({ type: 'asset', fileName: `${urlFolder}${f}`, source: readFileSync(join(dir, f)) });
    },
  };
}
