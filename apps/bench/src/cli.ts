// fiber-bench: the fiber-vl main job and benchmarks.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { BackendName } from '@fiber-vl/tensor-core';
import type { KernelResult } from './kernels.js';
import { undecodableArgument } from './arg-bytes.js';
import { oneLine } from './one-line.js';
import { UsageError, intArg, numberArg } from './train/args.js';

const USAGE = `usage: fiber-bench <command> [options]

commands:
  run       the main job: pre-trains a tiny FIBER coarse-to-fine on the built-in procedural world,
            evaluates every task against its baseline, runs the ablations over 2 seeds; writes
            bench-results/results.json and report.html; see fiber-bench run --help
  tune      chooses the settings of the main job's fine stage or ablation (b) on the world's val
            scenes (the run reports on test); see fiber-bench tune --help
  train     one task (pretrain-coarse, pretrain-fine, vqa, caption, nlvr2, retrieval-itc/itm, refcoco,
            detection) on the built-in world or a data folder in the public layout, with checkpoints,
            --resume and DIR/final/model.safetensors; see fiber-bench train --help
  eval      a FIBER checkpoint on a real benchmark in its public layout (VQAv2, COCO captioning,
            COCO / Flickr30k retrieval, NLVR2, RefCOCO/+/g, Flickr30k Entities, COCO detection):
            official result files and metrics; see fiber-bench eval --help
  kernels   matmul / attention / layer norm / MLP train-step throughput on every available backend,
            next to numpy's matmul when python3 + numpy are installed
  backbones Swin-B/384 forward (batch 1) and roberta-base forward (batch 8 x 40 tokens) at full size,
            time and peak memory per backend
  coarse    FIBER-B/384 at full size: fused forward (batch 1, 40 tokens) and dual-encoder embedding
            (images batch 1 and 8, texts 32 x 40), time and peak memory per backend; --profile adds
            the time per tfjs kernel of one fused forward, --reference torch the PyTorch timings of
            the same jobs at the same thread count and the ratio per job
  train-speed
            one training step (fused forward batch 1, backward, AdamW) of a tiny FIBER and of
            FIBER-B/384 (--models tiny,fiber-b-384), side by side with PyTorch via --reference torch
  parity    DIR: the FIBER coarse model against a fixture folder of the official code (config.json,
            model.safetensors, inputs.safetensors, outputs), or a coarse pre-training step folder
            (config.json with a train_step section: the trainer's steps replayed): a table of max abs
            errors per tensor, exit code 1 on any failure (default backends: every one that starts)
  fine      the fine-grained FIBER-B at full size (fused Swin-B + RoBERTa, FPN, VLDyHead) on one
            800 x 1344 image with a 256-token prompt: forward time (backbone / head) and peak memory
            per backend; --max-case-seconds (default 300) skips hopeless backends
  sizes     what users download: each package's packed tarball (npm pack) and the size of a fresh
            npm install (needs the npm registry) of tensor-core, eval-metrics, the six model packages
            and every package; --no-install packs only
  bundle-sizes
            each package's browser entry bundled by esbuild (minified, code splitting): bytes and
            gzipped bytes loaded up front and lazily, and the WebAssembly binaries listed separately
  metrics   @fiber-vl/eval-metrics at COCO scale (synthetic, seeded): captioning on 5,000 images x 5
            references and COCOeval on 5,000 images x 100 detections; seconds, CPU seconds and peak
            memory per stage (tokenize, BLEU, ROUGE-L, CIDEr-D, METEOR, COCOeval evaluate/accumulate/summarize)
  inspect   FILE...: a checkpoint's tensors (.ckpt / .pth / .bin / .safetensors / sharded *.index.json):
            names, dtypes, shapes, bytes, which official FIBER model and task heads it matches and
            what is missing or extra; exit 2 with one line per file that cannot be read

options:
  --backends LIST        comma-separated subset of webgpu,wasm,cpu (default: all that start;
                         train-speed: wasm,cpu)
  --out-dir DIR          where to write <command>.json (default: ./bench-results)
  --max-case-seconds S   skip a case estimated to take longer than S seconds per call (kernels 30,
                         backbones and coarse 60, fine 300)
  --only NAME[,NAME]     only the cases whose kernel name starts with a NAME (e.g. matmul)
  --wasm-threads N       wasm thread pool size (default: FIBER_WASM_THREADS, else every core)
  --no-numpy             do not measure the numpy reference
  --no-single-thread     do not measure wasm matmul with one thread for comparison
  --json                 print the results as JSON on stdout and write no file
  --profile              coarse: time per tfjs kernel of one fused forward, per backend
  --reference torch      coarse, train-speed: run the PyTorch reference too (python3 with torch) and print ratios
  --reference-script P   the reference script (default: reference/torch_fiber_ref.py shipped with the bench)
  --reference-python P   the python to run it with (default: /usr/bin/python3, then python3)
  --models LIST          train-speed: tiny,fiber-b-384 (default both)
  --images N             metrics: number of images (default 5000)
  --repeat N             metrics: runs per stage, medians reported (default 1)
  --export-captions FILE metrics: write the tokenised captions as pycocoevalcap's scorers take them
  --verify               inspect: read every value and count non-finite ones (exit 1 if any)
  --all                  inspect: list every tensor, not only the groups
`;

/** wasm matmul with a one-thread pool, in a child process (the pool size is fixed per process). */
function singleThreadWasm(log: (l: string) => void): KernelResult[] {
  log('measuring wasm matmul and window attention with 1 thread (child process) ...');
  const r = spawnSync(
    process.execPath,
    [
      fileURLToPath(import.meta.url),
      'kernels',
      '--backends',
      'wasm',
      '--wasm-threads',
      '1',
      '--only',
      'matmul,window attention',
      '--no-numpy',
      '--json',
    ],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  if (r.status !== 0) {
    log(`wasm single-thread run failed (exit ${r.status})`);
    return [];
  }
  const parsed = JSON.parse(r.stdout) as { results: KernelResult[] };
  return parsed.results.map((x) => ({ ...x, backend: 'wasm (1 thread)' }));
}

/** The machine a report was measured on. */
const machine = () => ({ cpu: cpus()[0]?.model, cores: cpus().length, node: process.version });

async function main(argv: string[]): Promise<number> {
  // Each command loads its own modules (the models, tfjs and its backends only where it needs them),
  // so that --help and bad usage answer at once.
  const undecodable = undecodableArgument(argv);
  if (undecodable) throw new UsageError(undecodable);
  if (argv[0] === 'eval') return (await import('./eval/index.js')).evalMain(argv.slice(1));
  if (argv[0] === 'run') return (await import('./run/main.js')).runMain(argv.slice(1));
  if (argv[0] === 'tune') return (await import('./run/tune.js')).tuneMain(argv.slice(1));
  if (argv[0] === 'train') return (await import('./train/entry.js')).trainMain(argv.slice(1));
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      backends: { type: 'string' },
      'out-dir': { type: 'string' },
      'max-case-seconds': { type: 'string' },
      'no-numpy': { type: 'boolean' },
      'no-single-thread': { type: 'boolean' },
      only: { type: 'string' },
      'wasm-threads': { type: 'string' },
      json: { type: 'boolean' },
      images: { type: 'string' },
      'no-install': { type: 'boolean' },
      profile: { type: 'boolean' },
      reference: { type: 'string' },
      'reference-script': { type: 'string' },
      'reference-python': { type: 'string' },
      models: { type: 'string' },
      repeat: { type: 'string' },
      'export-captions': { type: 'string' },
      verify: { type: 'boolean' },
      all: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return command || values.help ? 0 : 2;
  }
  const outDir = resolve(values['out-dir'] ?? 'bench-results');
  const backends = values.backends?.split(',').map((s) => s.trim()) as BackendName[] | undefined;
  for (const b of backends ?? []) {
    if (!['webgpu', 'wasm', 'cpu'].includes(b))
      throw new UsageError(`--backends: unknown backend "${b}" (expected webgpu, wasm, cpu)`);
  }
  const maxCaseSeconds =
    values['max-case-seconds'] === undefined
      ? undefined
      : numberArg('max-case-seconds', values['max-case-seconds'], 'a number of seconds > 0', (n) => n > 0);
  const wasmThreads =
    values['wasm-threads'] === undefined ? undefined : intArg('wasm-threads', values['wasm-threads'], 1);
  /** Writes `<out-dir>/<name>.json` and returns its path. */
  const writeReport = (name: string, report: unknown): string => {
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `${name}.json`);
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    return file;
  };
  switch (command) {
    case 'kernels': {
      const started = new Date().toISOString();
      const { kernelsMarkdown, numpyReference, runKernels } = await import('./kernels.js');
      const { peakRssMb } = await import('./measure.js');
      const run = await runKernels({
        backends,
        wasmThreads,
        only: values.only,
        maxCaseSeconds,
      });
      const log = (l: string) => process.stderr.write(`${l}\n`);
      const numpy = values['no-numpy'] ? [] : numpyReference(log);
      const wasm = run.backends.find((b) => b.name === 'wasm');
      const single = values['no-single-thread'] || !wasm || wasm.threads === 1 ? [] : singleThreadWasm(log);
      const results = [...run.results, ...single, ...numpy];
      const report = {
        command: 'kernels',
        started,
        machine: { ...machine(), platform: `${process.platform}-${process.arch}` },
        backends: run.backends,
        unavailable: run.unavailable,
        peakRssMb: peakRssMb(),
        results,
      };
      if (values.json) {
        // the same report as the file, single-thread and numpy rows included
        process.stdout.write(`${JSON.stringify(report)}\n`);
        return 0;
      }
      const file = writeReport('kernels', report);
      const backendLine = run.backends
        .map(
          (b) =>
            `${b.name}${b.threads ? ` (${b.threads} threads, simd=${b.simd})` : ''}${b.adapter ? ` (${b.adapter.vendor} ${b.adapter.description})` : ''}`,
        )
        .join(', ');
      process.stdout.write(
        `\n## fiber-bench kernels\n\nbackends: ${backendLine}; machine: ${report.machine.cpu}, ${report.machine.cores} cores, Node ${report.machine.node}\n\n`,
      );
      process.stdout.write(`${kernelsMarkdown(results)}\n\nwritten: ${file}\n`);
      return 0;
    }
    case 'backbones': {
      const { runBackbones } = await import('./backbones.js');
      const results = await runBackbones({ backends, maxCaseSeconds, wasmThreads });
      const report = { command: 'backbones', machine: machine(), results };
      if (values.json) {
        process.stdout.write(`${JSON.stringify(report)}\n`);
        return 0;
      }
      const file = writeReport('backbones', report);
      process.stdout.write(
        `\n## fiber-bench backbones\n\n| backend | model | input | ms | GFLOP/s | peak RSS MB |\n|---|---|---|---|---|---|\n` +
          results
            .map(
              (r) =>
                `| ${r.backend} | ${r.model} | ${r.input} | ${r.skipped ? `skipped (${r.skipped})` : r.ms!.toFixed(0)} | ${r.gflops?.toFixed(1) ?? ''} | ${r.peakRssMb} |`,
            )
            .join('\n') +
          `\n\nwritten: ${file}\n`,
      );
      return 0;
    }
    case 'coarse':
    case 'train-speed': {
      if (values.reference !== undefined && values.reference !== 'torch')
        throw new UsageError(`--reference: only "torch" is supported, got "${values.reference}"`);
      const reference = values.reference
        ? { script: values['reference-script'], python: values['reference-python'] }
        : undefined;
      const { runCoarse, runTrain, TRAIN_SPEED_MODELS } = await import('./coarse.js');
      const ratio = (r: { ratio?: number }) => (r.ratio !== undefined ? `${r.ratio.toFixed(2)}x` : '');
      const ref = (r: { referenceMs?: number }) => r.referenceMs?.toFixed(0) ?? '';
      if (command === 'train-speed') {
        const models = values.models?.split(',').map((s) => s.trim());
        const unknown = models?.find((m) => !TRAIN_SPEED_MODELS.includes(m));
        if (unknown !== undefined)
          throw new UsageError(`--models: unknown model "${unknown}" (one of ${TRAIN_SPEED_MODELS.join(', ')})`);
        const results = await runTrain({
          backends,
          reference,
          wasmThreads,
          models,
        });
        const report = { command: 'train-speed', machine: machine(), results };
        if (values.json) {
          process.stdout.write(`${JSON.stringify(report)}\n`);
          return 0;
        }
        const file = writeReport('train-speed', report);
        process.stdout.write(
          `\n## fiber-bench train-speed (forward + backward + AdamW, batch 1)\n\n| backend | model | ms | PyTorch ms | ratio | peak RSS MB |\n|---|---|---|---|---|---|\n` +
            results
              .map(
                (r) =>
                  `| ${r.backend} | ${r.model} | ${r.skipped ? `not run (${r.skipped})` : r.ms!.toFixed(0)} | ${ref(r)} | ${ratio(r)} | ${r.peakRssMb} |`,
              )
              .join('\n') +
            `\n\nwritten: ${file}\n`,
        );
        return 0;
      }
      const run = await runCoarse({ backends, maxCaseSeconds, profile: values.profile, reference, wasmThreads });
      const report = { command: 'coarse', machine: machine(), ...run };
      if (values.json) {
        process.stdout.write(`${JSON.stringify(report)}\n`);
        return 0;
      }
      const file = writeReport('coarse', report);
      let text =
        `\n## fiber-bench coarse (FIBER-B/384)\n\n| backend | job | ms | per second | PyTorch ms | ratio | peak RSS MB |\n|---|---|---|---|---|---|---|\n` +
        run.results
          .map(
            (r) =>
              `| ${r.backend} | ${r.job} | ${r.skipped ? `skipped (${r.skipped})` : r.ms!.toFixed(0)} | ${r.perSecond?.toFixed(2) ?? ''} | ${ref(r)} | ${ratio(r)} | ${r.peakRssMb} |`,
          )
          .join('\n');
      for (const [backend, rows] of Object.entries(run.profiles)) {
        const total = rows.reduce((s, r) => s + r.ms, 0);
        text += `\n\n### kernel profile of one fused forward: ${backend} (${total.toFixed(0)} ms in kernels)\n\n| kernel | calls | ms | share |\n|---|---|---|---|\n`;
        text += rows
          .slice(0, 20)
          .map((r) => `| ${r.kernel} | ${r.calls} | ${r.ms.toFixed(1)} | ${((100 * r.ms) / total).toFixed(1)}% |`)
          .join('\n');
      }
      process.stdout.write(`${text}\n\nwritten: ${file}\n`);
      return 0;
    }
    case 'parity': {
      const dir = positionals[1];
      if (!dir) throw new UsageError('parity: a fixture folder is required: fiber-bench parity DIR [--backends LIST]');
      const { availableBackends } = await import('@fiber-vl/tensor-core');
      const { parityMarkdown, runParity } = await import('./parity.js');
      const names = backends ?? (await availableBackends()).available.map((b) => b.name);
      const reports = await runParity(resolve(dir), { backends: names });
      const ok = reports.every((r) => r.ok);
      if (values.json) {
        process.stdout.write(`${JSON.stringify({ command: 'parity', dir, ok, reports })}\n`);
        return ok ? 0 : 1;
      }
      process.stdout.write(`${parityMarkdown(dir, reports)}\n`);
      writeReport('parity', { dir, reports });
      process.stdout.write(`\n${ok ? 'parity OK' : 'parity FAILED'} on ${reports.map((r) => r.backend).join(', ')}\n`);
      return ok ? 0 : 1;
    }
    case 'fine': {
      const { runFine } = await import('./fine.js');
      const results = await runFine({ backends, maxCaseSeconds: maxCaseSeconds ?? 300, wasmThreads });
      const report = { command: 'fine', machine: machine(), results };
      if (values.json) {
        process.stdout.write(`${JSON.stringify(report)}\n`);
        return 0;
      }
      const file = writeReport('fine', report);
      const s = (ms?: number) => (ms === undefined ? '' : (ms / 1000).toFixed(1));
      process.stdout.write(
        `\n## fiber-bench fine (fine-grained FIBER-B, full size)\n\n| backend | input | forward s | backbone s | head s | peak RSS MB |\n|---|---|---|---|---|---|\n` +
          results
            .map(
              (r) =>
                `| ${r.backend} | ${r.input} | ${r.skipped ? `skipped (${r.skipped})` : s(r.ms)} | ${s(r.backboneMs)} | ${s(r.headMs)} | ${r.peakRssMb} |`,
            )
            .join('\n') +
          `\n\nwritten: ${file}\n`,
      );
      return 0;
    }
    case 'sizes': {
      const root = resolve(fileURLToPath(import.meta.url), '../../../..');
      const { runSizes, sizesMarkdown } = await import('./sizes.js');
      const r = runSizes(root, { install: !values['no-install'] });
      if (values.json) {
        process.stdout.write(`${JSON.stringify({ command: 'sizes', machine: machine(), ...r })}\n`);
        return r.installs.some((i) => i.error) ? 1 : 0;
      }
      const file = writeReport('sizes', { command: 'sizes', machine: machine(), ...r });
      process.stdout.write(`\n## fiber-bench sizes\n\n${sizesMarkdown(r)}\n\nwritten: ${file}\n`);
      return r.installs.some((i) => i.error) ? 1 : 0;
    }
    case 'bundle-sizes': {
      const { runBundleSizes, bundleSizesMarkdown } = await import('./bundle-sizes.js');
      const root = resolve(fileURLToPath(import.meta.url), '../../../..');
      const report = { command: 'bundle-sizes', machine: machine(), ...(await runBundleSizes(root)) };
      if (values.json) {
        process.stdout.write(`${JSON.stringify(report)}\n`);
        return 0;
      }
      const file = writeReport('bundle-sizes', report);
      process.stdout.write(`\n## fiber-bench bundle-sizes\n\n${bundleSizesMarkdown(report)}\n\nwritten: ${file}\n`);
      return 0;
    }
    case 'metrics': {
      const { metricsMarkdown, runMetricsBench } = await import('./metrics.js');
      const r = runMetricsBench({
        images: values.images === undefined ? undefined : intArg('images', values.images, 1),
        repeat: values.repeat === undefined ? undefined : intArg('repeat', values.repeat, 1),
        exportCaptions: values['export-captions'],
      });
      if (values.json) {
        process.stdout.write(`${JSON.stringify(r)}\n`);
        return 0;
      }
      const file = writeReport('metrics', r);
      process.stdout.write(`\n${metricsMarkdown(r)}; written: ${file}\n`);
      return 0;
    }
    case 'inspect': {
      const { runInspect } = await import('./inspect.js');
      return runInspect(positionals.slice(1), { verify: values.verify, json: values.json, all: values.all });
    }
    default:
      process.stderr.write(`fiber-bench: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

/**
 * process.exit once stdout and stderr have flushed. Node writes to a pipe asynchronously on Linux,
 * and process.exit drops what is still queued: a slow reader lost the last lines of a report.
 */
function exitWhenFlushed(code: number): void {
  let open = 2;
  const done = () => {
    open -= 1;
    if (open === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

main(process.argv.slice(2)).then(
  (code) => exitWhenFlushed(code),
  (e) => {
    // bad usage (node's parseArgs: unknown option, missing value; a bad option value): one line and exit 2, as the subcommands
    const usage = e instanceof UsageError || String((e as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS');
    const message = (e as Error).message;
    process.stderr.write(`fiber-bench: ${usage ? `${oneLine(message)} (fiber-bench --help)` : message}\n`);
    exitWhenFlushed(usage ? 2 : 1);
  },
);
