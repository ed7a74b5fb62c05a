// `fiber-bench kernels`: the throughput of the ops FIBER spends its time in, on every backend.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  Generator,
  Linear,
  LayerNorm,
  gelu,
  initBackend,
  layerNorm,
  linear,
  matmul,
  scaledDotProductAttention,
  tf,
  windowAttention,
  type BackendInfo,
  type BackendName,
} from '@fiber-vl/tensor-core';
import { timeIt } from './measure.js';

export interface KernelResult {
  backend: string;
  kernel: string;
  shape: string;
  ms: number;
  gflops?: number;
  iterations: number;
  skipped?: string;
}

interface KernelCase {
  kernel: string;
  shape: string;
  flops?: number;
  /** Rough cost relative to the 1024^3 matmul, to skip cases that would take minutes on slow backends. */
  weight: number;
  setup: (rng: Generator) => { run: () => tf.Tensor | tf.Tensor[]; dispose: () => void };
}

const mm = (m: number, k: number, n: number): KernelCase => ({
  kernel: 'matmul',
  shape: `[${m},${k}]x[${k},${n}]`,
  flops: 2 * m * k * n,
  weight: (m * k * n) / 1024 ** 3,
  setup: (rng) => {
    const a = rng.normal([m, k]);
    const b = rng.normal([k, n]);
    return { run: () => matmul(a, b), dispose: () => tf.dispose([a, b]) };
  },
});

const attention = (b: number, h: number, l: number, d: number, label: string): KernelCase => ({
  kernel: `attention (${label})`,
  shape: `[${b},${h},${l},${d}]`,
  flops: 4 * b * h * l * l * d,
  weight: (2 * b * h * l * l * d) / 1024 ** 3,
  setup: (rng) => {
    const [q, k, v] = [rng.normal([b, h, l, d]), rng.normal([b, h, l, d]), rng.normal([b, h, l, d])];
    const bias = rng.normal([h, l, l]);
    return { run: () => scaledDotProductAttention(q, k, v, { bias }), dispose: () => tf.dispose([q, k, v, bias]) };
  },
});

/** torch's F.linear: x [m, k] @ W[n, k]^T + b (the weight in PyTorch's layout). */
const lin = (m: number, k: number, n: number): KernelCase => ({
  kernel: 'linear',
  shape: `[${m},${k}]x[${n},${k}]^T`,
  flops: 2 * m * k * n,
  weight: (m * k * n) / 1024 ** 3,
  setup: (rng) => {
    const x = rng.normal([m, k]);
    const w = rng.normal([n, k]);
    const b = rng.normal([n]);
    return { run: () => linear(x, w, b), dispose: () => tf.dispose([x, w, b]) };
  },
});

/** Swin's shifted-window attention over a whole map: qkv [1, H, W, 3C] -> [1, H, W, C] (QK^T and PV flops). */
const windowAttn = (H: number, C: number, heads: number, w: number, label: string): KernelCase => ({
  kernel: `window attention (${label})`,
  shape: `[1,${H},${H},${3 * C}] w${w} shift ${w / 2}`,
  flops: 4 * H * H * w * w * C,
  weight: (2 * H * H * w * w * C) / 1024 ** 3,
  setup: (rng) => {
    const qkv = rng.normal([1, H, H, 3 * C]);
    const bias = rng.normal([heads, w * w, w * w]);
    return {
      run: () => windowAttention(qkv, bias, { numHeads: heads, windowSize: w, shift: w / 2 }),
      dispose: () => tf.dispose([qkv, bias]),
    };
  },
});

const norm = (rows: number, dim: number): KernelCase => ({
  kernel: 'layer norm',
  shape: `[${rows},${dim}]`,
  weight: (rows * dim * 50) / 1024 ** 3,
  setup: (rng) => {
    const x = rng.normal([rows, dim]);
    const w = tf.ones([dim]);
    const b = tf.zeros([dim]);
    return { run: () => layerNorm(x, w, b, 1e-5), dispose: () => tf.dispose([x, w, b]) };
  },
});

/** One SGD step of a 768-3072-768 MLP with LayerNorm on a [256, 768] batch (a transformer FFN). */
const mlpTrainStep: KernelCase = {
  kernel: 'MLP train step',
  shape: '256x768-3072-768',
  flops: 3 * 2 * 2 * 256 * 768 * 3072,
  weight: (6 * (256 * 768 * 3072)) / 1024 ** 3,
  setup: (rng) => {
    const fc1 = new Linear(768, 3072, { rng });
    const fc2 = new Linear(3072, 768, { rng });
    const ln = new LayerNorm(768);
    const x = rng.normal([256, 768]);
    const params = [...fc1.parameters(), ...fc2.parameters(), ...ln.parameters()].map((p) => p.value);
    const opt = tf.train.sgd(1e-3);
    return {
      run: () => {
        const loss = opt.minimize(
          () => tf.mean(tf.square(fc2.forward(gelu(fc1.forward(ln.forward(x)))))) as tf.Scalar,
          true,
          params,
        );
        return loss!;
      },
      dispose: () => {
        opt.dispose();
        [fc1, fc2, ln].forEach((m) => m.dispose());
        x.dispose();
      },
    };
  },
};

export const KERNEL_CASES: KernelCase[] = [
  mm(256, 256, 256),
  mm(512, 512, 512),
  mm(1024, 1024, 1024),
  mm(2048, 2048, 2048),
  mm(3136, 128, 384), // Swin-B stage-1 qkv at 224 px (56x56 tokens)
  mm(577, 768, 3072), // ViT/BERT-size FFN, 577 tokens
  lin(576, 768, 3072), // FFN fc1 of the text side / Swin stage 3, weight [out, in]
  lin(9216, 128, 384), // Swin-B/384 stage-1 qkv (96x96 tokens)
  attention(64, 4, 144, 32, 'Swin-B/384 stage 1 windows'),
  windowAttn(96, 128, 4, 12, 'Swin-B/384 stage 1'),
  windowAttn(24, 512, 16, 12, 'Swin-B/384 stage 3'),
  attention(8, 12, 50, 64, 'RoBERTa 8x50 tokens'),
  norm(3136, 128),
  norm(400, 768),
  mlpTrainStep,
];

/** GFLOP/s a backend is expected to reach at least, to skip hopeless cases. */
const FLOOR_GFLOPS: Record<BackendName, number> = { cpu: 0.5, wasm: 10, webgpu: 0.2 };

export interface KernelsOptions {
  backends?: BackendName[];
  /** wasm pool size (default: FIBER_WASM_THREADS, else every core). */
  wasmThreads?: number;
  /** Only the cases whose kernel name starts with one of these (comma-separated). */
  only?: string;
  /** Skip a case whose estimated run time on a backend exceeds this many seconds. */
  maxCaseSeconds?: number;
  minSeconds?: number;
  log?: (line: string) => void;
}

export async function runKernels(
  opts: KernelsOptions = {},
): Promise<{ backends: BackendInfo[]; results: KernelResult[]; unavailable: { backend: string; reason: string }[] }> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const prefixes = opts.only
    ?.split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const cases = KERNEL_CASES.filter((c) => !prefixes?.length || prefixes.some((p) => c.kernel.startsWith(p)));
  const backends: BackendInfo[] = [];
  const unavailable: { backend: string; reason: string }[] = [];
  for (const name of opts.backends ?? (['webgpu', 'wasm', 'cpu'] as BackendName[])) {
    try {
      backends.push(await initBackend({ backend: name, threads: opts.wasmThreads }));
    } catch (e) {
      unavailable.push({ backend: name, reason: (e as Error).message });
      log(`backend ${name} unavailable: ${(e as Error).message}`);
    }
  }
  const results: KernelResult[] = [];
  const total = backends.length * cases.length;
  let done = 0;
  for (const info of backends) {
    await initBackend({ backend: info.name, threads: opts.wasmThreads });
    for (const c of cases) {
      done++;
      const prefix = `[${done}/${total}] ${info.name.padEnd(6)} ${c.kernel} ${c.shape}`;
      const estimate = (c.weight * 2 * 1024 ** 3) / (FLOOR_GFLOPS[info.name] * 1e9);
      if (estimate > (opts.maxCaseSeconds ?? 30)) {
        log(`${prefix}: skipped (~${Math.round(estimate)} s per call at ${FLOOR_GFLOPS[info.name]} GFLOP/s)`);
        results.push({
          backend: info.name,
          kernel: c.kernel,
          shape: c.shape,
          ms: NaN,
          iterations: 0,
          skipped: `estimated ${Math.round(estimate)} s per call`,
        });
        continue;
      }
      const rng = new Generator(1);
      const { run, dispose } = c.setup(rng);
      const t = await timeIt(run, { minSeconds: opts.minSeconds ?? 1 });
      dispose();
      const r: KernelResult = {
        backend: info.name,
        kernel: c.kernel,
        shape: c.shape,
        ms: t.seconds * 1000,
        iterations: t.iterations,
      };
      if (c.flops) r.gflops = c.flops / t.seconds / 1e9;
      results.push(r);
      log(
        `${prefix}: ${r.ms.toFixed(2)} ms${r.gflops ? `, ${r.gflops.toFixed(2)} GFLOP/s` : ''} (${t.iterations} runs)`,
      );
    }
  }
  return { backends, results, unavailable };
}

/**
 * numpy's matmul on the same shapes, as the CPU reference (when python3 with numpy exists):
 * once with the environment as it is and, when OPENBLAS_CORETYPE pins a kernel, once more with
 * OpenBLAS choosing its kernel for this CPU.
 */
export function numpyReference(log: (l: string) => void): KernelResult[] {
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const shapes = KERNEL_CASES.filter((c) => c.kernel === 'matmul').map((c) => c.shape.match(/\d+/g)!.map(Number));
  const script = `
import json, time
import numpy as np
out = []
for m, k, _, n in ${JSON.stringify(shapes)}:
    a = np.random.rand(m, k).astype(np.float32); b = np.random.rand(k, n).astype(np.float32)
    a @ b
    t = time.perf_counter(); it = 0
    while time.perf_counter() - t < 1.0 or it == 0:
        a @ b; it += 1
    s = (time.perf_counter() - t) / it
    out.append({"shape": f"[{m},{k}]x[{k},{n}]", "ms": s * 1000, "gflops": 2 * m * k * n / s / 1e9, "iterations": it})
print(json.dumps(out))
`;
  const pinned = process.env.OPENBLAS_CORETYPE;
  const { OPENBLAS_CORETYPE: _c, OPENBLAS_L2_SIZE: _l, ...autoEnv } = process.env;
  const runs: [string, NodeJS.ProcessEnv][] = [[`numpy (OpenBLAS${pinned ? ` ${pinned}` : ''})`, process.env]];
  if (pinned) runs.push(['numpy (OpenBLAS, auto kernel)', autoEnv]);
  const results: KernelResult[] = [];
  for (const [label, env] of runs) {
    try {
      log(`measuring ${label} ...`);
      const out = JSON.parse(
        execFileSync(python, ['-c', script], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
      );
      for (const r of out) results.push({ backend: label, kernel: 'matmul', ...r });
    } catch (e) {
      log(`${label} not measured: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  return results;
}

export function kernelsMarkdown(results: KernelResult[]): string {
  const backends = [...new Set(results.map((r) => r.backend))];
  const rows = [...new Map(results.map((r) => [`${r.kernel} ${r.shape}`, r])).values()];
  const cell = (r?: KernelResult) =>
    !r
      ? ''
      : r.skipped
        ? 'skipped'
        : r.gflops !== undefined
          ? `${r.gflops.toFixed(1)} GFLOP/s (${r.ms.toFixed(1)} ms)`
          : `${r.ms.toFixed(2)} ms`;
  const lines = [`| kernel | shape | ${backends.join(' | ')} |`, `|---|---|${backends.map(() => '---').join('|')}|`];
  for (const row of rows) {
    lines.push(
      `| ${row.kernel} | ${row.shape} | ${backends.map((b) => cell(results.find((r) => r.backend === b && r.kernel === row.kernel && r.shape === row.shape))).join(' | ')} |`,
    );
  }
  return lines.join('\n');
}
