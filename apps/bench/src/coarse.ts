// `fiber-bench coarse`: FIBER-B/384 at full size with random weights: the fused forward (batch 1,
// 40 tokens), dual-encoder image (batch 1 and 8) and text (32 x 40) embeddings, per backend; with
// `--profile` the time per tfjs kernel of one fused forward; with `--reference torch` the same jobs
// in PyTorch (reference/torch_fiber_ref.py) at the same thread count, and the ratio per job.
// `fiber-bench train-speed`: one training step (forward + backward + AdamW) of a tiny FIBER and of
// FIBER-B/384, side by side with PyTorch in the same way.
import { fiberBaseConfig, type FiberCoarseConfig } from '@fiber-vl/fusion';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { robertaConfig } from '@fiber-vl/roberta';
import { swinConfig } from '@fiber-vl/swin';
import { Generator, tf, type BackendName } from '@fiber-vl/tensor-core';
import { AdamW } from '@fiber-vl/trainer';
import { peakRssMb, timeIt, useBenchBackend } from './measure.js';
import { torchReference, type ReferenceOptions } from './reference.js';

export interface CoarseResult {
  backend: string;
  job: string;
  ms?: number;
  perSecond?: number;
  peakRssMb: number;
  skipped?: string;
  /** PyTorch's median ms for the same job (--reference torch) and ours / theirs. */
  referenceMs?: number;
  ratio?: number;
}

export interface KernelProfileRow {
  kernel: string;
  calls: number;
  ms: number;
}

/** Rough seconds per fused forward on each backend, to skip hopeless cases (Swin-B/384 ~94 GFLOP + text). */
const FUSED_GFLOP = 2 * 47.1 + 2 * 0.085 * 40 + 10;
const FLOOR_GFLOPS: Record<BackendName, number> = { cpu: 0.8, wasm: 10, webgpu: 0.3 };

/** Token ids of the bench: <s> ... </s> over a spread of the vocabulary. */
function tokenIds(batch: number, length: number, vocab: number): tf.Tensor {
  const row = Array.from({ length }, (_, i) => (i === 0 ? 0 : i === length - 1 ? 2 : 4 + ((i * 7919) % (vocab - 5))));
  return tf.tensor2d(Array.from({ length: batch }, () => row).flat(), [batch, length], 'int32');
}

/** tf.profile of one call, summed per kernel name, slowest first. */
async function profileKernels(fn: () => tf.Tensor[]): Promise<KernelProfileRow[]> {
  const info = await tf.profile(() => {
    const outs = fn();
    return outs;
  });
  const rows = new Map<string, KernelProfileRow>();
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const r = rows.get(k.name) ?? { kernel: k.name, calls: 0, ms: 0 };
    r.calls++;
    r.ms += ms;
    rows.set(k.name, r);
  }
  return [...rows.values()].sort((a, b) => b.ms - a.ms);
}

export interface CoarseOptions {
  backends?: BackendName[];
  maxCaseSeconds?: number;
  /** Profile one fused forward per backend (time per tfjs kernel). */
  profile?: boolean;
  /** Also run the PyTorch reference (same thread count as wasm) and report ratios. */
  reference?: ReferenceOptions;
  wasmThreads?: number;
  log?: (line: string) => void;
}

export async function runCoarse({
  backends = ['webgpu', 'wasm', 'cpu'],
  maxCaseSeconds = 60,
  profile = false,
  reference,
  wasmThreads,
  log = (l: string) => process.stderr.write(`${l}\n`),
}: CoarseOptions = {}): Promise<{
  results: CoarseResult[];
  profiles: Record<string, KernelProfileRow[]>;
  reference?: unknown;
}> {
  const results: CoarseResult[] = [];
  const profiles: Record<string, KernelProfileRow[]> = {};
  let threads = 1;
  for (const name of backends) {
    const label = await useBenchBackend(name, log, wasmThreads);
    if (!label) continue;
    if (name === 'wasm') threads = Number(/\((\d+) threads/.exec(label)?.[1] ?? 1);
    const estimate = FUSED_GFLOP / FLOOR_GFLOPS[name];
    if (estimate > maxCaseSeconds) {
      log(`${label}: skipped (~${Math.round(estimate)} s per fused forward)`);
      results.push({
        backend: label,
        job: 'all',
        peakRssMb: peakRssMb(),
        skipped: `estimated ${Math.round(estimate)} s per fused forward`,
      });
      continue;
    }
    log(`${label}: building FIBER-B/384 at full size ...`);
    const model = new FiberCoarseModel(fiberBaseConfig(384), 'pretrain').eval();
    const rng = new Generator(3);
    const pixels = rng.normal([1, 3, 384, 384]);
    const pixels8 = rng.normal([8, 3, 384, 384]);
    const ids = tokenIds(1, 40, 50265);
    const mask = tf.onesLike(ids);
    const texts = tokenIds(32, 40, 50265);
    const textMask = tf.onesLike(texts);
    const fusedOnce = () => {
      const f = model.fused(pixels, ids, mask);
      tf.dispose([f.textFeats, f.imageFeats, f.text, f.image]);
      return [f.clsFeats];
    };
    const jobs: [string, () => tf.Tensor[], number][] = [
      ['fused forward, batch 1, 40 tokens', fusedOnce, 1],
      [
        'dual: image embedding, batch 1',
        () => {
          const r = model.encodeImage(pixels);
          r.imageFeats.dispose();
          return [r.imageCls];
        },
        1,
      ],
      [
        'dual: image embedding, batch 8',
        () => {
          const r = model.encodeImage(pixels8);
          r.imageFeats.dispose();
          return [r.imageCls];
        },
        8,
      ],
      [
        'dual: text embeddings, batch 32 x 40',
        () => {
          const r = model.encodeText(texts, textMask);
          r.textFeats.dispose();
          return [r.textCls];
        },
        32,
      ],
    ];
    for (const [job, fn, items] of jobs) {
      const t = await timeIt(fn, { minSeconds: 3, maxIterations: 3 });
      results.push({ backend: label, job, ms: t.seconds * 1000, perSecond: items / t.seconds, peakRssMb: peakRssMb() });
      log(`${label}: ${job}: ${(t.seconds * 1000).toFixed(0)} ms`);
    }
    if (profile) {
      profiles[label] = await profileKernels(fusedOnce);
      const top = profiles[label].slice(0, 8).map((r) => `${r.kernel} ${r.ms.toFixed(0)} ms (${r.calls})`);
      log(`${label}: profile of one fused forward: ${top.join(', ')}`);
    }
    tf.dispose([pixels, pixels8, ids, mask, texts, textMask]);
    model.dispose();
  }
  let ref: unknown;
  if (reference) {
    const jobs: [string, string[]][] = [
      ['fused forward, batch 1, 40 tokens', ['--bench', 'fused', '--batch', '1']],
      ['dual: image embedding, batch 1', ['--bench', 'dual-image', '--batch', '1']],
      ['dual: image embedding, batch 8', ['--bench', 'dual-image', '--batch', '8']],
      ['dual: text embeddings, batch 32 x 40', ['--bench', 'dual-text', '--batch', '32']],
    ];
    const runs: Record<string, unknown> = {};
    for (const [job, args] of jobs) {
      log(`PyTorch reference (${threads} threads): ${job} ...`);
      const r = torchReference(
        ['--config', 'fiber-b-384', ...args, '--repeat', '3', '--warmup', '1'],
        threads,
        reference,
        log,
      );
      runs[job] = r ?? null;
      if (!r) continue;
      for (const x of results.filter((x) => x.job === job && x.ms !== undefined)) {
        x.referenceMs = r.median_s * 1000;
        x.ratio = x.ms! / x.referenceMs;
      }
    }
    ref = { threads, runs };
  }
  return { results, profiles, reference: ref };
}

/** The torch_fiber_ref.py "tiny" preset as a FiberCoarseConfig (128 px, window 4, widths 16 / 32). */
export function tinyFiberConfig(): FiberCoarseConfig {
  const swin = swinConfig('swin_base_patch4_window12_384', {
    imageSize: 128,
    windowSize: 4,
    embedDim: 16,
    numHeads: [2, 4, 8, 16],
  });
  const roberta = robertaConfig({
    hiddenSize: 32,
    numAttentionHeads: 4,
    intermediateSize: 128,
    vocabSize: 120,
    maxPositionEmbeddings: 40,
  });
  return { swin, roberta, numFuseBlock: 6, hiddenSize: 48, maxTextLen: 16 };
}

/** The WebAssembly heap's ceiling (wasm32, tfjs-backend-wasm's build): every tensor of a wasm step lives in it. */
const WASM_HEAP_BYTES = 2 ** 32;

/**
 * Bytes a training step holds before any activation: every float32 parameter (4 bytes) and, for
 * the trained ones, a gradient and AdamW's two moments (12 more). Counted on a model built on the
 * cpu backend, so that the count itself never fills the heap it is meant to protect.
 */
async function trainStateBytes(cfg: FiberCoarseConfig): Promise<number> {
  const active = tf.getBackend();
  await tf.setBackend('cpu');
  const model = new FiberCoarseModel(cfg, 'pretrain');
  try {
    const floats = model.namedParameters().filter(([, p]) => p.dtype === 'float32');
    return floats.reduce((n, [, p]) => n + p.value.size * (p.requiresGrad ? 16 : 4), 0);
  } finally {
    model.dispose();
    await tf.setBackend(active);
  }
}

export interface TrainResult {
  backend: string;
  model: string;
  ms?: number;
  skipped?: string;
  referenceMs?: number;
  ratio?: number;
  peakRssMb: number;
}

/** The models `runTrain` measures: the tiny FIBER and FIBER-B at 384 px. */
export const TRAIN_SPEED_MODELS: readonly string[] = ['tiny', 'fiber-b-384'];

/**
 * One training step: fused forward (batch 1), loss = mean(cls_feats^2), backward, AdamW over every
 * parameter. The PyTorch reference runs the same loss (torch_fiber_ref.py --bench train).
 */
export async function runTrain({
  backends = ['wasm', 'cpu'] as BackendName[],
  models = [...TRAIN_SPEED_MODELS],
  reference,
  wasmThreads,
  log = (l: string) => process.stderr.write(`${l}\n`),
}: {
  backends?: BackendName[];
  models?: string[];
  reference?: ReferenceOptions;
  wasmThreads?: number;
  log?: (l: string) => void;
} = {}): Promise<TrainResult[]> {
  const unknown = models.find((m) => !TRAIN_SPEED_MODELS.includes(m));
  if (unknown !== undefined)
    throw new RangeError(`runTrain: unknown model "${unknown}" (one of ${TRAIN_SPEED_MODELS.join(', ')})`);
  const results: TrainResult[] = [];
  let threads = 1;
  for (const name of backends) {
    const label = await useBenchBackend(name, log, wasmThreads);
    if (!label) continue;
    if (name === 'wasm') threads = Number(/\((\d+) threads/.exec(label)?.[1] ?? 1);
    for (const m of models) {
      const cfg = m === 'tiny' ? tinyFiberConfig() : fiberBaseConfig(384);
      const size = cfg.swin.imageSize;
      const L = cfg.maxTextLen;
      const stateBytes = name === 'wasm' ? await trainStateBytes(cfg) : 0;
      if (stateBytes > WASM_HEAP_BYTES) {
        // tfjs-backend-wasm's threaded build spins instead of failing when its heap runs out
        const why = `parameters, gradients and AdamW moments alone need ${(stateBytes / 2 ** 30).toFixed(1)} GiB, over the 4 GiB wasm heap`;
        results.push({ backend: label, model: m, skipped: why, peakRssMb: peakRssMb() });
        log(`${label}: ${m} train step skipped: ${why}`);
        continue;
      }
      try {
        const model = new FiberCoarseModel(cfg, 'pretrain').train();
        const named = model.namedParameters().filter(([, p]) => p.requiresGrad && p.dtype === 'float32');
        const opt = new AdamW([{ params: named, lr: 1e-5, weightDecay: 0.01 }]);
        const pixels = new Generator(3).normal([1, 3, size, size]);
        const ids = tokenIds(1, L, cfg.roberta.vocabSize);
        const mask = tf.onesLike(ids);
        const vars = named.map(([, p]) => p.value);
        let calls = 0;
        const started = performance.now();
        const step = () => {
          // a FIBER-B step on cpu takes many minutes: say what is running
          log(
            `${label}: ${m} train step ${calls++ === 0 ? '(warm-up)' : calls - 1} started at ${((performance.now() - started) / 1000).toFixed(0)} s`,
          );
          const { value, grads } = tf.variableGrads(() => {
            const f = model.fused(pixels, ids, mask);
            tf.dispose([f.textFeats, f.imageFeats, f.text, f.image]);
            return tf.mean(tf.square(f.clsFeats)) as tf.Scalar;
          }, vars);
          const byName = new Map(named.map(([n, p]) => [n, grads[p.value.name]] as [string, tf.Tensor]));
          opt.step(byName);
          tf.dispose(Object.values(grads));
          return [value];
        };
        const t = await timeIt(step, { minSeconds: 3, maxIterations: 3 });
        results.push({ backend: label, model: m, ms: t.seconds * 1000, peakRssMb: peakRssMb() });
        log(`${label}: ${m} train step ${(t.seconds * 1000).toFixed(0)} ms`);
        opt.dispose();
        model.dispose();
        tf.dispose([pixels, ids, mask]);
      } catch (e) {
        results.push({
          backend: label,
          model: m,
          skipped: (e as Error).message.split('\n')[0],
          peakRssMb: peakRssMb(),
        });
        // the table keeps the first line; the log has all of it
        log(`${label}: ${m} train step failed: ${(e as Error).stack ?? (e as Error).message}`);
      }
    }
  }
  if (reference) {
    for (const m of models) {
      log(`PyTorch reference (${threads} threads): ${m} train step ...`);
      const r = torchReference(
        ['--config', m, '--bench', 'train', '--repeat', '3', '--warmup', '1'],
        threads,
        reference,
        log,
      );
      if (!r) continue;
      for (const x of results.filter((x) => x.model === m && x.ms !== undefined)) {
        x.referenceMs = r.median_s * 1000;
        x.ratio = x.ms! / x.referenceMs;
      }
    }
  }
  return results;
}
