// `fiber-bench bundle-sizes`: what a web page downloads. Each package's browser entry (everything
// its main entry exports, `import * as m from '@fiber-vl/<name>'`) bundled by esbuild for the
// browser, minified, with code splitting so that lazily imported code (tfjs-backend-webgpu, loaded
// by initBackend only when WebGPU is asked for) is counted apart from what the page loads first.
// Bytes are minified and gzipped (level 9). The WebAssembly binaries are listed separately:
// tfjs-backend-wasm's .wasm files (fetched from `wasmPath` at run time, one of the three) and
// fiber-vl's own kernel variants (embedded base64 in tensor-core's code; one is compiled at run time).
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build, version as esbuildVersion, type Metafile } from 'esbuild';

export const BROWSER_PACKAGES = [
  'tensor-core',
  'swin',
  'roberta',
  'fusion',
  'heads-coarse',
  'heads-fine',
  'trainer',
  'eval-metrics',
];

export interface Size {
  bytes: number;
  gzipBytes: number;
}

export interface EntryBundle {
  package: string;
  /** What the page loads up front: the entry chunk and the chunks it imports statically. */
  initial: Size;
  /** Chunks behind a dynamic import() (loaded on demand), with the packages they hold. */
  lazy: Size & { holds: string[] };
  /** Minified bytes of the package's own code and of each fiber-vl package it pulls in (initial + lazy). */
  fiberVlBytes: number;
  /** The largest third-party packages in the bundle, minified bytes. */
  dependencies: { name: string; bytes: number }[];
}

export interface WasmBinary {
  file: string;
  source: string;
  /** How it reaches the page. */
  delivery: string;
  bytes: number;
  gzipBytes: number;
}

export interface BundleSizes {
  esbuild: string;
  bundles: EntryBundle[];
  wasm: WasmBinary[];
}

const gzip = (b: Uint8Array) => gzipSync(b, { level: 9 }).byteLength;

/** The package a bundled input file belongs to: `@fiber-vl/x` for workspace dist files, else its node_modules name. */
function packageOf(input: string): string {
  const ws = /packages\/([^/]+)\/dist\//.exec(input);
  if (ws) return `@fiber-vl/${ws[1]}`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules\/)/.exec(input);
  return nm ? nm[1] : input;
}

async function bundleEntry(benchDir: string, name: string): Promise<EntryBundle> {
  const r = await build({
    stdin: {
      contents: `import * as m from '@fiber-vl/${name}';\nglobalThis.fiber = m;\n`,
      resolveDir: benchDir,
      loader: 'js',
      sourcefile: `${name}-entry.js`,
    },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    define: { 'process.env.NODE_ENV': '"production"' },
    outdir: join(benchDir, '.bundle-sizes'),
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const meta: Metafile = r.metafile;
  const files = new Map(r.outputFiles.map((f) => [f.path.slice(f.path.indexOf('.bundle-sizes/')), f.contents]));
  const key = (p: string) => p.slice(p.indexOf('.bundle-sizes/'));
  const js = Object.entries(meta.outputs).filter(([p]) => p.endsWith('.js'));
  const entry = js.find(([, o]) => o.entryPoint !== undefined);
  if (!entry) throw new Error(`bundle-sizes: esbuild gave no entry chunk for @fiber-vl/${name}`);
  // the entry and its static imports, transitively
  const initial = new Set<string>();
  const visit = (p: string) => {
    if (initial.has(p)) return;
    initial.add(p);
    for (const i of meta.outputs[p].imports) if (i.kind === 'import-statement' && meta.outputs[i.path]) visit(i.path);
  };
  visit(entry[0]);
  const size = (paths: string[]): Size => {
    const contents = paths.map((p) => files.get(key(p))!);
    const joined = new Uint8Array(contents.reduce((n, c) => n + c.byteLength, 0));
    contents.reduce((o, c) => (joined.set(c, o), o + c.byteLength), 0);
    return { bytes: joined.byteLength, gzipBytes: contents.length ? gzip(joined) : 0 };
  };
  const lazyPaths = js.map(([p]) => p).filter((p) => !initial.has(p));
  const byPackage = new Map<string, number>();
  const lazyHolds = new Set<string>();
  for (const [p, o] of js) {
    for (const [input, { bytesInOutput }] of Object.entries(o.inputs)) {
      const pkg = packageOf(input);
      byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + bytesInOutput);
      if (!initial.has(p) && bytesInOutput > 0) lazyHolds.add(pkg);
    }
  }
  const fiberVlBytes = [...byPackage].filter(([k]) => k.startsWith('@fiber-vl/')).reduce((n, [, v]) => n + v, 0);
  const dependencies = [...byPackage]
    .filter(([k]) => !k.startsWith('@fiber-vl/') && !k.endsWith('-entry.js'))
    .map(([k, bytes]) => ({ name: k, bytes }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 6);
  return {
    package: `@fiber-vl/${name}`,
    initial: size([...initial]),
    lazy: { ...size(lazyPaths), holds: [...lazyHolds].sort() },
    fiberVlBytes,
    dependencies,
  };
}

/** tfjs-backend-wasm's .wasm files and fiber-vl's embedded kernel variants. */
function wasmBinaries(root: string): WasmBinary[] {
  const tc = join(root, 'packages', 'tensor-core');
  const require = createRequire(join(tc, 'package.json'));
  const tfjsDist = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  const out: WasmBinary[] = readdirSync(tfjsDist)
    .filter((f) => f.endsWith('.wasm'))
    .sort()
    .map((f) => {
      const bytes = readFileSync(join(tfjsDist, f));
      return {
        file: f,
        source: '@tensorflow/tfjs-backend-wasm',
        delivery: 'fetched from wasmPath (one of the three)',
        bytes: bytes.byteLength,
        gzipBytes: gzip(bytes),
      };
    });
  const generated = join(tc, 'src', 'kernels', 'generated', 'binaries.ts');
  let text: string;
  try {
    text = readFileSync(generated, 'utf8');
  } catch {
    throw new Error(`bundle-sizes: ${generated} is missing (it is generated by the build: npm run build)`);
  }
  for (const [, variant, base64] of text.matchAll(/^\s*(\w+): '([A-Za-z0-9+/=]+)',?$/gm)) {
    const bytes = Buffer.from(base64, 'base64');
    out.push({
      file: `kernels ${variant}`,
      source: '@fiber-vl/tensor-core',
      delivery: `embedded base64 (${base64.length} bytes of JS)`,
      bytes: bytes.byteLength,
      gzipBytes: gzip(bytes),
    });
  }
  if (!out.some((w) => w.source === '@fiber-vl/tensor-core'))
    throw new Error(`bundle-sizes: no kernel variant found in ${generated}`);
  return out;
}

export async function runBundleSizes(
  root: string,
  { log = (l: string) => process.stderr.write(`${l}\n`) } = {},
): Promise<BundleSizes> {
  const benchDir = join(root, 'apps', 'bench');
  const bundles: EntryBundle[] = [];
  for (const name of BROWSER_PACKAGES) {
    log(`bundling @fiber-vl/${name} for the browser ...`);
    bundles.push(await bundleEntry(benchDir, name));
  }
  return { esbuild: esbuildVersion, bundles, wasm: wasmBinaries(root) };
}

const kb = (b: number) => (b / 1024).toFixed(1);

export function bundleSizesMarkdown(r: BundleSizes): string {
  const rows = r.bundles.map((b) => {
    const lazy = b.lazy.bytes ? `${kb(b.lazy.bytes)} / ${kb(b.lazy.gzipBytes)} (${b.lazy.holds.join(', ')})` : '';
    const deps = b.dependencies.map((d) => `${d.name} ${kb(d.bytes)}`).join(', ');
    const initial = `${kb(b.initial.bytes)} | ${kb(b.initial.gzipBytes)}`;
    return `| ${b.package} | ${initial} | ${lazy} | ${kb(b.fiberVlBytes)} | ${deps} |`;
  });
  const wasm = r.wasm.map((w) => `| ${w.file} | ${w.source} | ${kb(w.bytes)} | ${kb(w.gzipBytes)} | ${w.delivery} |`);
  return [
    `Browser entry bundles (esbuild ${r.esbuild}, platform browser, minified, code splitting; KiB):`,
    '',
    '| entry | initial | initial gzip | lazy chunks min / gzip (holding) | fiber-vl code, min | largest deps, min |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    'WebAssembly binaries (not in the sizes above except as noted; KiB):',
    '',
    '| binary | from | bytes | gzip | delivery |',
    '|---|---|---|---|---|',
    ...wasm,
  ].join('\n');
}
