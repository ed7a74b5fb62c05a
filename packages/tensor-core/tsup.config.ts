import { defineConfig } from 'tsup';
import { libConfig } from '../../tsup.base';

export default defineConfig(
  libConfig({
    entry: ['src/index.ts', 'src/testing.ts'],
    // tfjs-core's Node entry registers neither gradients nor chained ops, and its ESM files use
    // extensionless imports that Node cannot load: bundle those two registration modules. They
    // register into tfjs' global registries, so the engine stays the one in @tensorflow/tfjs-core.
    noExternal: [/@tensorflow\/tfjs-core\/dist\/(register_all_gradients|public\/chained_ops)/],
    // Node-only modules (Dawn, wasm threads, files) stay in their own chunks, loaded on demand.
    external: ['webgpu'],
    // The chained ops registered at run time (x.mean(), x.reshape(), ...) need tfjs-core's module
    // augmentation in the declarations too, or TypeScript users get "Property 'mean' does not exist".
    dts: { banner: "import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';" },
    splitting: true,
    shims: true,
  }),
);
