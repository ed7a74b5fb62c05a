// WebGPU in Node through Dawn (the `webgpu` npm package).
//
// Dawn enumerates Vulkan devices. On a machine without a GPU, Mesa's lavapipe is rejected by Dawn
// ("shaderUniform*ArrayDynamicIndexing required"), but the SwiftShader Vulkan driver that Debian's
// `chromium` package ships works. When no adapter is found and VK_ICD_FILENAMES is not set, we
// retry once with SwiftShader if its ICD file exists, so that a CPU-only machine still gets a
// (slow, but correct) WebGPU device for testing kernels.
import { existsSync } from 'node:fs';

export const SWIFTSHADER_ICD_CANDIDATES = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib64/chromium/vk_swiftshader_icd.json',
  '/usr/lib/chromium-browser/vk_swiftshader_icd.json',
];

export interface NodeGpu {
  gpu: GPU;
  adapter: GPUAdapter;
  /** The Vulkan ICD forced for this adapter, when we had to pick SwiftShader. */
  icd?: string;
}

interface Dawn {
  create: (flags: string[]) => GPU;
  globals: Record<string, unknown>;
}

function isDawn(m: unknown): m is Dawn {
  return (
    typeof m === 'object' &&
    m !== null &&
    typeof Reflect.get(m, 'create') === 'function' &&
    typeof Reflect.get(m, 'globals') === 'object'
  );
}

/** Installs `navigator.gpu` (and the WebGPU globals) from Dawn; resolves null with a reason. */
export async function installNodeWebGpu(): Promise<NodeGpu | { reason: string }> {
  let dawn: Dawn;
  try {
    // `webgpu` is ESM-only; import() works from both our ESM and CJS builds.
    const mod: unknown = await import('webgpu');
    if (!isDawn(mod))
      return {
        reason: 'the "webgpu" package does not export create() and globals (unsupported version; install webgpu@0.6.2)',
      };
    dawn = mod;
  } catch (e) {
    return {
      reason: `WebGPU in Node needs the optional peer dependency "webgpu" (Dawn, ~130 MB): npm install webgpu@0.6.2 (${(e as Error).message.split('\n')[0]})`,
    };
  }
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp'; // silences the Vulkan loader
  let gpu = dawn.create([]);
  let adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  let icd: string | undefined;
  if (!adapter && !process.env.VK_ICD_FILENAMES) {
    icd = SWIFTSHADER_ICD_CANDIDATES.find((p) => existsSync(p));
    if (icd) {
      process.env.VK_ICD_FILENAMES = icd;
      gpu = dawn.create([]);
      adapter = await gpu.requestAdapter();
    }
  }
  if (!adapter) {
    return {
      reason:
        'Dawn found no WebGPU adapter (no Vulkan GPU driver; on Debian without a GPU, ' +
        '`apt-get install chromium libvulkan1` provides the SwiftShader Vulkan driver)',
    };
  }
  Object.assign(globalThis, dawn.globals);
  const g = globalThis as { navigator?: { gpu?: GPU } };
  if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  Object.defineProperty(g.navigator!, 'gpu', { value: gpu, configurable: true, writable: true });
  return { gpu, adapter, icd };
}
