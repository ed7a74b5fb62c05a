// `fiber-bench backbones`: Swin-B/384 forward (batch 1) and roberta-base forward (batch 8 x 40
// tokens) at full size with random weights, per backend: time and peak memory.
import { RobertaModel } from '@fiber-vl/roberta';
import { SwinTransformer, fiberCoarseWindowSize, swinConfig } from '@fiber-vl/swin';
import { Generator, tf, type BackendName } from '@fiber-vl/tensor-core';
import { peakRssMb, timeIt, useBenchBackend } from './measure.js';

export interface BackboneResult {
  backend: string;
  model: string;
  input: string;
  gflop: number;
  ms?: number;
  gflops?: number;
  iterations?: number;
  peakRssMb: number;
  tensorMb: number;
  skipped?: string;
}

/** Rough GFLOP of one call (multiply-adds x 2), to report throughput and skip hopeless cases. */
const SWIN_B_384_GFLOP = 2 * 47.1; // Swin-B/384: 47.1 GMACs (Liu et al. 2021)
const robertaGflop = (tokens: number) => (2 * 85e6 * tokens + 2 * 12 * 2 * 40 * 40 * 768 * 8) / 1e9;
const FLOOR_GFLOPS: Record<BackendName, number> = { cpu: 0.8, wasm: 20, webgpu: 0.3 };

export async function runBackbones({
  backends = ['webgpu', 'wasm', 'cpu'] as BackendName[],
  maxCaseSeconds = 60,
  wasmThreads = undefined as number | undefined,
  log = (l: string) => process.stderr.write(`${l}\n`),
} = {}): Promise<BackboneResult[]> {
  const results: BackboneResult[] = [];
  for (const name of backends) {
    const label = await useBenchBackend(name, log, wasmThreads);
    if (!label) continue;
    const cases = [
      {
        model: 'Swin-B/384',
        input: '[1, 3, 384, 384]',
        gflop: SWIN_B_384_GFLOP,
        build: () =>
          new SwinTransformer(swinConfig('swin_base_patch4_window12_384', { windowSize: fiberCoarseWindowSize(384) })),
        input_: () => new Generator(1).normal([1, 3, 384, 384]),
        run: (m: SwinTransformer | RobertaModel, x: tf.Tensor) => (m as SwinTransformer).forward(x).lastHiddenState!,
      },
      {
        model: 'roberta-base',
        input: '[8, 40] tokens',
        gflop: robertaGflop(320),
        build: () => new RobertaModel(),
        input_: () =>
          tf.tensor2d(
            Array.from({ length: 320 }, (_, i) => (i % 40 === 0 ? 0 : i % 40 === 39 ? 2 : 4 + ((i * 7919) % 50000))),
            [8, 40],
            'int32',
          ),
        run: (m: SwinTransformer | RobertaModel, x: tf.Tensor) => (m as RobertaModel).forward(x).lastHiddenState,
      },
    ];
    for (const c of cases) {
      const estimate = c.gflop / FLOOR_GFLOPS[name];
      if (estimate > maxCaseSeconds) {
        log(`${label} ${c.model}: skipped (~${Math.round(estimate)} s per call at ${FLOOR_GFLOPS[name]} GFLOP/s)`);
        results.push({
          backend: label,
          model: c.model,
          input: c.input,
          gflop: c.gflop,
          peakRssMb: peakRssMb(),
          tensorMb: 0,
          skipped: `estimated ${Math.round(estimate)} s per call`,
        });
        continue;
      }
      log(`${label} ${c.model}: building at full size ...`);
      const model = c.build().eval();
      const x = c.input_();
      const t = await timeIt(
        () => {
          const out = c.run(model, x);
          return out;
        },
        { minSeconds: 3, maxIterations: 5 },
      );
      const r: BackboneResult = {
        backend: label,
        model: c.model,
        input: c.input,
        gflop: c.gflop,
        ms: t.seconds * 1000,
        gflops: c.gflop / t.seconds,
        iterations: t.iterations,
        peakRssMb: peakRssMb(),
        tensorMb: Math.round(tf.memory().numBytes / 2 ** 20),
      };
      results.push(r);
      log(`${label} ${c.model}: ${r.ms!.toFixed(0)} ms (${r.gflops!.toFixed(1)} GFLOP/s), peak RSS ${r.peakRssMb} MB`);
      x.dispose();
      model.dispose();
    }
  }
  return results;
}
