// `fiber-bench coarse`: FIBER-B/384 at full size with random weights: the fused forward (batch 1,
// 40 tokens) and dual-encoder embedding throughput (images and texts per second), per backend.
import { fiberBaseConfig } from '@fiber-vl/fusion';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { Generator, tf, type BackendName } from '@fiber-vl/tensor-core';
import { peakRssMb, timeIt, useBenchBackend } from './measure.js';

export interface CoarseResult {
  backend: string;
  job: string;
  ms?: number;
  perSecond?: number;
  peakRssMb: number;
  skipped?: string;
}

/** Rough seconds per fused forward on each backend, to skip hopeless cases (Swin-B/384 ~94 GFLOP + text). */
const FUSED_GFLOP = 2 * 47.1 + 2 * 0.085 * 40 + 10;
const FLOOR_GFLOPS: Record<BackendName, number> = { cpu: 0.8, wasm: 10, webgpu: 0.3 };

export async function runCoarse({ backends = ['webgpu', 'wasm', 'cpu'] as BackendName[], maxCaseSeconds = 60, log = (l: string) => process.stderr.write(`${l}\n`) } = {}): Promise<CoarseResult[]> {
  const results: CoarseResult[] = [];
  for (const name of backends) {
    const label = await useBenchBackend(name, log);
    if (!label) continue;
    const estimate = FUSED_GFLOP / FLOOR_GFLOPS[name];
    if (estimate > maxCaseSeconds) {
      log(`${label}: skipped (~${Math.round(estimate)} s per fused forward)`);
      results.push({ backend: label, job: 'all', peakRssMb: peakRssMb(), skipped: `estimated ${Math.round(estimate)} s per fused forward` });
      continue;
    }
    log(`${label}: building FIBER-B/384 at full size ...`);
    const model = new FiberCoarseModel(fiberBaseConfig(384), 'pretrain').eval();
    const rng = new Generator(3);
    const pixels = rng.normal([1, 3, 384, 384]);
    const ids = tf.tensor2d([Array.from({ length: 40 }, (_, i) => (i === 0 ? 0 : i === 39 ? 2 : 4 + ((i * 7919) % 50000)))], [1, 40], 'int32');
    const mask = tf.onesLike(ids);
    const fused = await timeIt(() => {
      const f = model.fused(pixels, ids, mask);
      const cls = f.clsFeats;
      tf.dispose([f.textFeats, f.imageFeats, f.text, f.image]);
      return cls;
    }, { minSeconds: 3, maxIterations: 3 });
    results.push({ backend: label, job: 'fused forward, batch 1, 40 tokens', ms: fused.seconds * 1000, perSecond: 1 / fused.seconds, peakRssMb: peakRssMb() });
    log(`${label}: fused forward ${(fused.seconds * 1000).toFixed(0)} ms`);
    const image = await timeIt(() => {
      const r = model.encodeImage(pixels);
      r.imageFeats.dispose();
      return r.imageCls;
    }, { minSeconds: 3, maxIterations: 3 });
    results.push({ backend: label, job: 'dual: image embedding, batch 1', ms: image.seconds * 1000, perSecond: 1 / image.seconds, peakRssMb: peakRssMb() });
    const texts = tf.tile(ids, [32, 1]);
    const textMask = tf.onesLike(texts);
    const text = await timeIt(() => {
      const r = model.encodeText(texts, textMask);
      r.textFeats.dispose();
      return r.textCls;
    }, { minSeconds: 3, maxIterations: 5 });
    results.push({ backend: label, job: 'dual: text embeddings, batch 32 x 40', ms: text.seconds * 1000, perSecond: 32 / text.seconds, peakRssMb: peakRssMb() });
    log(`${label}: image ${(image.seconds * 1000).toFixed(0)} ms, 32 texts ${(text.seconds * 1000).toFixed(0)} ms`);
    tf.dispose([pixels, ids, mask, texts, textMask]);
    model.dispose();
  }
  return results;
}
