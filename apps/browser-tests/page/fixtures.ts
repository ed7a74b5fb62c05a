// Fixture files fetched from the server (the test server maps /fixtures/ to the repository's
// fixtures/ folder) and opened as the user's File would be: a Blob read slice by slice.
import { SafetensorsFile, blobSource, initBackend, type BackendInfo, type BackendName } from '@fiber-vl/tensor-core';

/** Where the page serves tfjs-backend-wasm's .wasm files (vite-plugins.ts: tfjsWasmFiles). */
export const WASM_PATH = new URL('wasm/', document.baseURI).href;

async function get(url: string): Promise<Response> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status} ${r.statusText}`);
  return r;
}

export async function fetchJson(url: string): Promise<unknown> {
  return (await get(url)).json();
}

export async function fetchBlob(url: string): Promise<Blob> {
  return (await get(url)).blob();
}

/** A safetensors file from the server, through blobSource (lazy reads of slices of the Blob). */
export async function openRemoteSafetensors(url: string): Promise<SafetensorsFile> {
  return SafetensorsFile.fromSource(blobSource(await fetchBlob(url), url.split('/').slice(-2).join('/')));
}

/** initBackend with the page's wasm path; a software WebGPU adapter (SwiftShader in CI) is accepted. */
export function useBackend(backend: BackendName): Promise<BackendInfo> {
  return initBackend({ backend, wasmPath: WASM_PATH, allowSoftwareWebGpu: true });
}
