import { defineConfig } from 'tsup';
import { libConfig } from '../../tsup.base';

// tfjs-core's registration modules (all gradients, chained ops). Bundled into the Node platform
// file only: Node cannot load tfjs-core's ESM files (extensionless imports). Browser bundlers can,
// so the browser platform file imports them and the user's bundler shares them with tfjs-core.
const registrations = /@tensorflow\/tfjs-core\/dist\/(register_all_gradients|public\/chained_ops)/;

export default defineConfig([
  libConfig({
    entry: ['src/index.ts', 'src/testing.ts'],
    // the platform (Node or browser) is chosen by the package.json "imports" map at the user's end
    external: ['#platform', 'webgpu'],
    // The chained ops registered at run time (x.mean(), x.reshape(), ...) need tfjs-core's module
    // augmentation in the declarations too, or TypeScript users get "Property 'mean' does not exist".
    dts: { banner: "import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';" },
    clean: false,
  }),
  libConfig({
    entry: { 'platform-node': 'src/platform/node.ts' },
    noExternal: [registrations],
    external: ['webgpu'],
    // wasm-threads-node needs import.meta.url in the CJS build too
    shims: true,
    dts: false,
    clean: false,
  }),
  libConfig({
    entry: { 'platform-browser': 'src/platform/browser.ts' },
    external: [registrations],
    dts: false,
    clean: false,
  }),
]);
