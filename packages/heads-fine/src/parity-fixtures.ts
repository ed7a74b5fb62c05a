// Test-only: the copies of the official fine-grained fixtures under fixtures/fiber-fine (provenance
// in that folder's README) and the head/FPN configs their config.json files describe.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsFile, type tf } from '@fiber-vl/tensor-core';
import { FIBER_DYHEAD, type DyHeadConfig } from './config.js';

export const FINE_FIXTURES = join(__dirname, '../../../fixtures/fiber-fine');

const readJson = (dir: string) => JSON.parse(readFileSync(join(FINE_FIXTURES, dir, 'config.json'), 'utf8'));

/** set B `tiny_fine_head`: the real VLDyHead config with the tiny overrides of its config.json. */
export function tinyFineHeadConfig(): DyHeadConfig {
  const j = readJson('tiny_fine_head');
  const t = j.tiny_overrides;
  return {
    ...FIBER_DYHEAD,
    channels: t.CHANNELS,
    numConvs: j.dyhead.NUM_CONVS,
    groupNormGroups: j.group_norm.num_groups,
    groupNormEps: j.group_norm.eps,
    dyReluHidden: Math.floor(t.CHANNELS / 4),
    numClasses: j.dyhead.NUM_CLASSES,
    langDim: t.LANG_DIM,
    maxQueryLen: t.MAX_QUERY_LEN,
    priorProb: j.dyhead.PRIOR_PROB,
    logScale: j.dyhead.LOG_SCALE,
  };
}

export async function openFixture(dir: string, file: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(join(FINE_FIXTURES, dir, file));
}

/** Every tensor of a file whose name starts with `prefix`, the prefix removed. */
export async function readPrefixed(file: SafetensorsFile, prefix: string): Promise<Map<string, tf.Tensor>> {
  const out = new Map<string, tf.Tensor>();
  for (const name of file.tensors.keys()) {
    if (name.startsWith(prefix)) out.set(name.slice(prefix.length), await file.readTensor(name));
  }
  return out;
}

/** max |ours - ref| / max(1, max |ref|) (fiber-spec §9's tolerance form), and the plain max |diff|. */
export async function relativeError(ours: tf.Tensor, ref: tf.Tensor): Promise<{ rel: number; abs: number }> {
  if (ours.shape.join() !== ref.shape.join()) return { rel: Infinity, abs: Infinity };
  const [a, b] = [(await ours.data()) as Float32Array, (await ref.data()) as Float32Array];
  let abs = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    abs = d > abs || Number.isNaN(d) ? (Number.isNaN(d) ? Infinity : d) : abs;
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { rel: abs / scale, abs };
}
