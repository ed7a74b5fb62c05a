// `fiber-bench run --preset micro`: the main job end to end at test size (two seeds in child
// processes), its results.json checked against the documented schema, the report files, and the
// same seed giving the same values again; the first seed's models written for the demo page.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { FiberFineModel } from '@fiber-vl/heads-fine';
import { ByteLevelBpeTokenizer } from '@fiber-vl/roberta';
import { SafetensorsFile, initBackend, loadSafetensors, tf } from '@fiber-vl/tensor-core';
import { EXPORTED_IMAGES, type ExportedModels, MODEL_METADATA } from '../src/run/export-models.js';
import { validateResults } from '../src/run/schema.js';
import { type MainJobResults, strictFailure } from '../src/run/report.js';
import { STRICT_EXIT } from '../src/run/main.js';
import { stopWhileSeedsRun } from './stop-seeds.js';

const cli = resolve(__dirname, '../dist/cli.js');
let work: string;

function run(args: string[]) {
  const r = spawnSync(process.execPath, [cli, 'run', '--preset', 'micro', '--backend', 'wasm', ...args], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('fiber-bench run --preset micro', () => {
  let first: ReturnType<typeof run>;
  let results: MainJobResults;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'fiber-run-'));
    first = run(['--seeds', '2', '--out', join(work, 'a')]);
    if (first.code === 0) results = JSON.parse(readFileSync(join(work, 'a', 'results.json'), 'utf8'));
  }, 300_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('exits 0 with progress on stderr and the Markdown table on stdout', () => {
    expect(first.code, first.stderr.slice(-2000)).toBe(0);
    expect(first.stderr).toMatch(/\[seed 0\] coarse pre-training: \d+\/\d+ .*ETA/);
    expect(first.stderr).toMatch(/\[seed 1\] fine-grained pre-training/);
    expect(first.stdout).toMatch(/^\| task \| metric \| value \| per seed \| baseline \| margin \|$/m);
    expect(first.stdout).toMatch(/^\| ablation \| task \| metric \| with \| without \|/m);
    expect(first.stdout).toMatch(/^\| after coarse pre-training \| 16 \| \d\.\d\d \(\d\.\d\d\) \|/m);
    expect(first.stdout).toMatch(
      /^\| after coarse pre-training: shape \| \d+ \| \d\.\d\d \| \d\.\d\d \| \d\.\d\d \|$/m,
    );
    expect(first.stdout).toMatch(/^\| shape \| \d+ \| \d\.\d\d \| \d\.\d\d \| \d\.\d\d \("\w+"\) \|$/m);
    // the single-object chance is one in the world's six classes
    expect(first.stdout).toContain('| by fine detector (chance 0.17) |');
    expect(first.stdout).toMatch(
      /^\| star \| yes \| \d+ \| \d\.\d\d \| \d\.\d\d \| \d\.\d\d \| \d\.\d\d \| (\d+ \| \d\.\d\d \| \d\.\d\d|0 \| - \| -) \|$/m,
    );
    expect(first.stderr).toMatch(
      /\[seed 1\] VQA by type, own image \/ another \(train majority\): colour \d\.\d\d \/ /,
    );
  });

  it('writes a results.json that follows the documented schema', () => {
    expect(validateResults(results)).toEqual([]);
    expect(results.seeds).toEqual([0, 1]);
    expect(results.preset).toBe('micro');
    expect(new Set(results.ablations.map((a) => a.name.slice(0, 3)))).toEqual(new Set(['(a)', '(b)', '(c)']));
    // the Swin probed after both pre-training stages, at strides 8 and 16, on every attribute
    expect(results.probes.map((p) => `${p.model}/${p.stride}/${p.attribute}`)).toEqual(
      ['image pre-training', 'coarse pre-training'].flatMap((m) =>
        [8, 16].flatMap((s) => ['shape', 'colour', 'texture', 'size'].map((a) => `${m}/${s}/${a}`)),
      ),
    );
    // features and labels line up: colour (linear in the pixels, so readable from any Swin) reads far above chance
    for (const p of results.probes.filter((p) => p.attribute === 'colour' && p.stride === 8))
      expect(Math.min(...p.seeds), `${p.model}: ${p.seeds} vs chance ${p.chance}`).toBeGreaterThan(p.chance + 0.2);
    // the coarse model's MLM asked for the test captions' colour and shape words, the same words on every seed
    expect(results.mlmProbes.map((p) => `${p.model}/${p.attribute}`)).toEqual([
      'coarse pre-training/shape',
      'coarse pre-training/colour',
    ]);
    for (const p of results.mlmProbes) expect(p.seeds).toHaveLength(2);
    // the class probe: every detection class, seen and held out, ranked by the coarse ITC and the fine detector
    expect(results.classProbes.map((c) => `${c.class}/${c.heldOut}`)).toEqual(
      (results.world.classes as { name: string; heldOut: boolean }[]).map((c) => `${c.name}/${c.heldOut}`),
    );
    for (const c of results.classProbes) expect(c.seeds).toHaveLength(2);
    // VQA per question type: every question of the VQA row counted once, the types in the world's order
    const vqa = results.tasks.find((t) => t.task === 'vqa')!;
    expect(results.vqaTypes.map((t) => t.type)).toEqual(['colour', 'shape', 'count', 'relation', 'yesno', 'exists']);
    expect(`${results.vqaTypes.reduce((n, t) => n + t.questions, 0)} questions`).toBe(vqa.note!.split(';')[0]);
    for (const t of results.vqaTypes) expect(t.seeds).toHaveLength(2);
    const fusion = results.ablations.find((a) => a.name.startsWith('(b)'))!;
    for (const side of [fusion.cost!.with, fusion.cost!.without])
      expect([side.parameters, side.fusionParameters, side.gflops, side.ms].every((v) => v > 0)).toBe(true);
  });

  it('the schema check names what is wrong', () => {
    const broken: {
      tasks: Record<string, unknown>[];
      ablations: unknown[];
      probes: Record<string, unknown>[];
      mlmProbes: Record<string, unknown>[];
      classProbes: Record<string, unknown>[];
      vqaTypes: Record<string, unknown>[];
    } = JSON.parse(JSON.stringify(results));
    broken.tasks = broken.tasks.filter((t) => t.task !== 'nlvr2');
    broken.tasks[0].value = null;
    broken.ablations = [];
    broken.probes[1].accuracy = 1.5;
    broken.probes[2].attribute = 'weight';
    broken.mlmProbes[0].seeds = [{ ownImage: 0.5 }, { ownImage: 0.5, otherImage: 0.4 }];
    broken.classProbes[0].heldOut = 'no';
    broken.vqaTypes[2].majority = 2;
    broken.vqaTypes[3].type = 'why';
    expect(validateResults(broken)).toEqual([
      'tasks[0].value: must be a finite number, got null',
      'tasks: no entry for task "nlvr2"',
      'ablations: must be a non-empty list',
      'probes[1].accuracy: must be a number in [0, 1], got 1.5',
      'probes[2].attribute: must be one of shape, colour, texture, size',
      'mlmProbes[0].seeds: must hold 2 { ownImage, otherImage } entries in [0, 1]',
      'classProbes[0].heldOut: must be a boolean',
      'vqaTypes[2].majority: must be a number in [0, 1], got 2',
      'vqaTypes[3].type: must be one of colour, shape, count, relation, yesno, exists',
    ]);
  });

  it('writes a self-contained report.html (no external URL)', () => {
    const html = readFileSync(join(work, 'a', 'report.html'), 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/(?:src|href)="(?!data:|#)/);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).toContain('<polyline'); // loss curves
    expect(html).toMatch(
      /<h2>Backbone probes<\/h2>.*<td>coarse pre-training<\/td><td>16<\/td><td>\d\.\d\d \(\d\.\d\d\)<\/td>/,
    );
    expect(html).toMatch(/<h2>Class probe<\/h2>.*<td>diamond<\/td><td>yes<\/td><td>\d+<\/td><td>\d\.\d\d<\/td>/);
    expect(html).toMatch(/<h2>VQA by question type<\/h2>.*<td>relation<\/td><td>\d+<\/td><td>\d\.\d\d<\/td>/);
    expect(html).toMatch(/<h2>MLM probe<\/h2>.*<td>coarse pre-training<\/td><td>colour<\/td><td>\d+<\/td>/);
    expect(html).toContain('data:image/png;base64,'); // gallery
    expect(existsSync(join(work, 'a', 'results.json'))).toBe(true);
  });

  it("writes the first seed's models, tokenizer and test images for the demo, each model loadable from its file alone", async () => {
    await initBackend({ backend: 'cpu' });
    const dir = join(work, 'a', 'models');
    const index: ExportedModels = JSON.parse(readFileSync(join(dir, 'models.json'), 'utf8'));
    expect(index.models.map((m) => [m.file, m.kind])).toEqual([
      ['coarse-pretrain.safetensors', 'coarse'],
      ['fine.safetensors', 'fine'],
      ['coarse-vqa.safetensors', 'coarse'],
      ['coarse-caption.safetensors', 'coarse'],
    ]);
    expect(index.images).toHaveLength(EXPORTED_IMAGES);
    for (const img of index.images) expect(readFileSync(join(dir, img.file)).subarray(1, 4).toString()).toBe('PNG');
    const tokenizer = ByteLevelBpeTokenizer.fromVocabAndMerges(
      readFileSync(join(dir, index.tokenizer.vocab), 'utf8'),
      readFileSync(join(dir, index.tokenizer.merges), 'utf8'),
    );
    expect(tokenizer.decode(tokenizer.encode(index.images[0].caption).ids)).toBe(index.images[0].caption);
    for (const m of index.models) {
      const file = await SafetensorsFile.open(join(dir, m.file));
      const meta = file.metadata;
      await file.close();
      expect(meta[MODEL_METADATA.kind]).toBe(m.kind);
      const state = await loadSafetensors(join(dir, m.file));
      try {
        const config = JSON.parse(meta[MODEL_METADATA.config]);
        const model =
          m.kind === 'fine'
            ? new FiberFineModel(config)
            : new FiberCoarseModel(config, JSON.parse(meta[MODEL_METADATA.heads]));
        try {
          // every tensor of the model is in the file and nothing else
          model.loadStateDict(state, { strict: true });
        } finally {
          model.dispose();
        }
        const roberta = m.kind === 'fine' ? config.backbone.roberta : config.roberta;
        expect(roberta.vocabSize).toBe(tokenizer.vocabSize);
      } finally {
        tf.dispose([...state.values()]);
      }
    }
    const vqa = await SafetensorsFile.open(join(dir, 'coarse-vqa.safetensors'));
    expect(JSON.parse(vqa.metadata[MODEL_METADATA.answers])).toContain(index.images[0].answer);
    await vqa.close();
  });

  it('the same seed on the same backend gives the same values; --strict exits 3 for rows under the margin', () => {
    const again = run(['--seeds', '1', '--out', join(work, 'b'), '--strict']);
    const b: MainJobResults = JSON.parse(readFileSync(join(work, 'b', 'results.json'), 'utf8'));
    // micro trains a few steps: some rows are under the margin, and --strict makes that exit 3 (STRICT_EXIT)
    // after writing the outputs
    const failure = strictFailure(b.tasks);
    expect(failure).toBeDefined();
    expect(again.code, again.stderr.slice(-2000)).toBe(STRICT_EXIT);
    expect(again.stderr.trim().split('\n').at(-1)).toBe(`fiber-bench run: ${failure}`);
    expect(existsSync(join(work, 'b', 'report.html'))).toBe(true);
    expect(b.tasks.map((t) => [t.task, t.metric, t.value])).toEqual(
      results.tasks.map((t) => [t.task, t.metric, t.seeds[0]]),
    );
    expect(b.ablations.map((a) => [a.with, a.without])).toEqual(
      results.ablations.map((a) => [a.seeds[0].with, a.seeds[0].without]),
    );
    expect(b.probes.map((p) => p.accuracy)).toEqual(results.probes.map((p) => p.seeds[0]));
  }, 300_000);
});

// ps --ppid: Linux's ps
describe.skipIf(process.platform !== 'linux')('fiber-bench run: stopped', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
    ['SIGHUP', 129],
  ] as const)(
    'stops its seed processes on %s and exits %i',
    async (signal, code) => {
      const out = mkdtempSync(join(tmpdir(), 'fiber-run-stop-'));
      try {
        const args = ['run', '--preset', 'micro', '--seed', '4242', '--seeds', '2', '--jobs', '2', '--out', out];
        const r = await stopWhileSeedsRun(args, [4242, 4243], signal);
        expect(r.children).toHaveLength(2);
        expect(r.code).toBe(code);
        expect(r.stderr).toContain(`fiber-bench run: ${signal}: stopped the seed processes`);
        expect(r.alive).toEqual([]);
        expect(existsSync(join(out, 'results.json'))).toBe(false);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
    120_000,
  );
});

describe('fiber-bench run: bad usage is one line on stderr and exit 2', () => {
  it.each([
    ['unknown preset', ['--preset', 'huge'], /--preset: unknown preset "huge"/],
    ['a value that starts with a dash', ['--seed', '-1'], /'--seed' argument is ambiguous\. Did you forget/],
    ['unknown option', ['--gpus', '8'], /Unknown option '--gpus'/],
    ['an exponent for a count', ['--seeds', '1e1'], /--seeds: expected an integer in \[1, 64\], got "1e1"/],
    ['a hexadecimal seed', ['--seed', '0x10'], /--seed: expected an integer in \[0, 4294967295\], got "0x10"/],
    [
      'training seeds past 2^32 - 1',
      ['--seed', '4294967290', '--seeds', '8'],
      /--seed 4294967290 with --seeds 8: the training seeds run to 4294967297, past the largest seed/,
    ],
    ['an empty job count', ['--jobs', ''], /--jobs: expected an integer in \[1, 64\], got ""/],
    [
      'more seeds than it starts processes for',
      ['--seeds', '99999999999'],
      /--seeds: expected an integer in \[1, 64\]/,
    ],
  ])('%s', (_, args, message) => {
    const r = spawnSync(process.execPath, [cli, 'run', ...args], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/\(fiber-bench run --help\)$/m);
  });
});

describe('fiber-bench run: an output folder that cannot be written', () => {
  it('is one line naming --out and exit 2, before any seed starts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fiber-run-out-'));
    try {
      const file = join(dir, 'a-file');
      writeFileSync(file, 'not a folder\n');
      const out = join(file, 'results');
      const r = spawnSync(process.execPath, [cli, 'run', '--preset', 'micro', '--out', out], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toEqual([
        `fiber-bench run: --out ${out}: ${file} is a file, not a folder (fiber-bench run --help)`,
      ]);
      expect(r.stdout).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fiber-bench: bad usage of the other commands is one line on stderr and exit 2', () => {
  it.each([
    ['an unknown option', ['kernels', '--bogus'], /Unknown option '--bogus'/],
    [
      'a value that starts with a dash',
      ['coarse', '--repeat', '-1'],
      /'--repeat' argument is ambiguous\. Did you forget/,
    ],
    ['an unknown backend', ['kernels', '--backends', 'wasm,tpu'], /--backends: unknown backend "tpu"/],
    [
      'a thread count that is not one',
      ['kernels', '--wasm-threads', 'two'],
      /--wasm-threads: expected an integer >= 1, got "two"/,
    ],
    ['no threads', ['train-speed', '--wasm-threads', '0'], /--wasm-threads: expected an integer >= 1, got "0"/],
    ['a repeat count in words', ['metrics', '--repeat', 'two'], /--repeat: expected an integer >= 1, got "two"/],
    ['a fractional image count', ['metrics', '--images', '2.5'], /--images: expected an integer >= 1, got "2\.5"/],
    ['an unknown reference', ['coarse', '--reference', 'jax'], /--reference: only "torch" is supported, got "jax"/],
    [
      'a time limit that is no number',
      ['kernels', '--max-case-seconds', 'soon'],
      /--max-case-seconds: expected a number of seconds > 0, got "soon"/,
    ],
    [
      'a time limit in hexadecimal',
      ['kernels', '--max-case-seconds', '0x10'],
      /--max-case-seconds: expected a number of seconds > 0, got "0x10"/,
    ],
  ])('%s', (_, args, message) => {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/\(fiber-bench --help\)$/m);
  });
});
