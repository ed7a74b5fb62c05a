// `fiber-bench fine`: the fine-grained FIBER-B at full size with random weights (fused Swin-B +
// RoBERTa, FPN, 6-block VLDyHead) on one image at the official test size (shorter side 800, longer
// <= 1333, padded to a multiple of 32) with a 256-token prompt: forward time and peak memory per
// backend, and the backbone / head split.
import { createFiberFineModel } from '@fiber-vl/heads-fine';
import { Generator, disposeOutput, tf, type BackendName } from '@fiber-vl/tensor-core';
import { peakRssMb, useBenchBackend } from './measure.js';

export interface FineResult {
  backend: string;
  input: string;
  ms?: number;
  backboneMs?: number;
  headMs?: number;
  peakRssMb: number;
  skipped?: string;
}

/** Rough GFLOP of one forward at 800 x 1344 (Swin-B ~7x its 384 px cost, RoBERTa 256 tokens, FPN + head ~250). */
const GFLOP = 7 * 94 + 2 * 0.085 * 256 + 250;
const FLOOR_GFLOPS: Record<BackendName, number> = { cpu: 0.8, wasm: 10, webgpu: 0.3 };

export async function runFine({
  backends = ['webgpu', 'wasm', 'cpu'] as BackendName[],
  maxCaseSeconds = 300,
  height = 800,
  width = 1344,
  wasmThreads = undefined as number | undefined,
  log = (l: string) => process.stderr.write(`${l}\n`),
} = {}): Promise<FineResult[]> {
  const results: FineResult[] = [];
  const input = `1 x 3 x ${height} x ${width}, 256 tokens`;
  for (const name of backends) {
    const label = await useBenchBackend(name, log, wasmThreads);
    if (!label) continue;
    const estimate = GFLOP / FLOOR_GFLOPS[name];
    if (estimate > maxCaseSeconds) {
      log(`${label}: skipped (~${Math.round(estimate)} s per forward; raise --max-case-seconds to run it)`);
      results.push({
        backend: label,
        input,
        peakRssMb: peakRssMb(),
        skipped: `estimated ${Math.round(estimate)} s per forward`,
      });
      continue;
    }
    log(`${label}: building the fine-grained FIBER-B at full size ...`);
    const model = createFiberFineModel('base').eval();
    const pixels = new Generator(3).normal([1, 3, height, width]);
    const ids = tf.tensor2d(
      [Array.from({ length: 256 }, (_, i) => (i === 0 ? 0 : i < 40 ? 4 + ((i * 7919) % 50000) : i === 40 ? 2 : 1))],
      undefined,
      'int32',
    );
    const mask = tf.cast(tf.notEqual(ids, 1), 'int32');
    try {
      for (let run = 0; run < 2; run++) {
        // the first run compiles kernels / warms caches; the second is reported
        const t0 = performance.now();
        const backbone = model.fusionBackbone.forward(pixels, ids, mask);
        await Promise.all((backbone.pyramid ?? []).map((p) => p.data()));
        const t1 = performance.now();
        const head = model.rpn.head.forward(backbone.pyramid ?? [], backbone.language.embedded);
        await Promise.all(head.levels.map((l) => l.dotProductLogits.data()));
        const t2 = performance.now();
        disposeOutput([backbone, head]);
        log(
          `${label}: ${run === 0 ? 'warm-up' : 'timed'} forward ${((t2 - t0) / 1000).toFixed(1)} s (backbone ${((t1 - t0) / 1000).toFixed(1)} s, head ${((t2 - t1) / 1000).toFixed(1)} s)`,
        );
        if (run === 1)
          results.push({
            backend: label,
            input,
            ms: t2 - t0,
            backboneMs: t1 - t0,
            headMs: t2 - t1,
            peakRssMb: peakRssMb(),
          });
      }
    } finally {
      tf.dispose([pixels, ids, mask]);
      model.dispose();
    }
  }
  return results;
}
