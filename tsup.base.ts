// Shared tsup settings: ESM + CJS + .d.ts for every package, Node 20 / ES2022 target.
import type { Options } from 'tsup';

export function libConfig(overrides: Options = {}): Options {
  return {
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'es2022',
    // A package with several entries (index + node / testing) shares its modules through chunks:
    // one copy of each class and of module state, so instanceof and registries hold across entries.
    // (tensor-core without it: `testing`'s useBackend started the wasm kernel pool in its own copy,
    // and the main entry's ops ran tfjs' kernels in every other package's tests.)
    splitting: true,
    treeshake: true,
    ...overrides,
  };
}
