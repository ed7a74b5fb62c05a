// `fiber-bench tune`: chooses the settings of a stage of the main job on the world's val scenes, so
// that the test scenes the run reports on are not the ones its settings were chosen on. Each
// training seed trains what the stage starts from as the run does (the unimodal pre-training, and
// for the fine stage the coarse pre-training), then every point of the grid trains the stage from
// it and evaluates it on val.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { BackendName } from '@fiber-vl/tensor-core';
import { oneLine } from '../one-line.js';
import { intArg } from '../train/args.js';
import type { RunContext } from './context.js';
import { RUN_PRESETS, type RunPreset, type RunPresetName, type StageSettings, validateRunPreset } from './presets.js';

export const TUNE_USAGE = `usage: fiber-bench tune fine|fusion [--set FIELD=V1,V2,...]... [--preset micro|small|base] [--seed S] [--seeds N] [--backend wasm|cpu|webgpu] [--out FILE]

Chooses a stage's settings on the val scenes of the main job's world (fiber-bench run evaluates on
the test scenes). For each training seed it trains what the stage starts from, as the run does,
then trains and evaluates the stage once per point of the grid (every combination of the --set
values; the preset's value where a field is not set), and prints a table: each point's val metrics
(mean over seeds, and per seed) and its score, best first.

  fine     the fine-grained stage (from the coarse pre-training). Fields: steps, batchSize, lr,
           lrMultOutputs, fineImageSize. Score: the mean margin over the baselines of REC accuracy,
           grounding R@1 and detection AP50 on the seen and the held-out classes.
  fusion   ablation (b), both architectures (from the unimodal pre-training). Fields: steps,
           batchSize, lr, lrMultHead. Score: the two architectures' mean VQA accuracy (the same
           settings serve both, so they are not chosen for the gap between them).

  --set F=V,... values of one field (repeatable), e.g. --set steps=300,450 --set lrMultOutputs=50,100
  --preset P    micro, small (default) or base
  --seed S      world seed (default 0); training seeds are S, S+1, ...
  --seeds N     training seeds (default 2)
  --backend B   wasm (default), cpu or webgpu
  --out FILE    also write the rows as JSON

One process, one seed after another: with the small preset the upstream stages take about 6
minutes per seed, and each point 2-4 minutes per seed (2 cores).
`;

export type TuneStage = 'fine' | 'fusion';

/** The settings `--set` may vary, per stage. */
export const TUNE_FIELDS: Readonly<Record<TuneStage, readonly string[]>> = {
  fine: ['steps', 'batchSize', 'lr', 'lrMultOutputs', 'fineImageSize'],
  fusion: ['steps', 'batchSize', 'lr', 'lrMultHead'],
};

export type Settings = Record<string, number>;

export interface TuneRow {
  settings: Settings;
  /** Val metrics, mean over seeds. */
  metrics: Record<string, number>;
  /** The same, per seed (in `seeds` order). */
  perSeed: Record<string, number>[];
  /** What the points are ranked by (higher is better). */
  score: number;
}

export interface TuneResult {
  stage: TuneStage;
  preset: RunPresetName;
  seed: number;
  seeds: number[];
  split: 'val';
  /** Best first. */
  rows: TuneRow[];
}

/** Every combination of the values of each field, in the order given (the first field slowest). */
export function gridOf(values: Readonly<Record<string, readonly number[]>>): Settings[] {
  return Object.entries(values).reduce<Settings[]>(
    (points, [field, vs]) => points.flatMap((p) => vs.map((v) => ({ ...p, [field]: v }))),
    [{}],
  );
}

/** The preset with one grid point's settings in the stage's place (validated: a RangeError names the field). */
export function withSettings(preset: RunPreset, stage: TuneStage, settings: Settings): RunPreset {
  const key = stage === 'fine' ? 'fine' : 'fusionAblation';
  const { fineImageSize, ...rest } = settings;
  const stageSettings: StageSettings = { ...preset[key], ...rest };
  return validateRunPreset({
    ...preset,
    [key]: stageSettings,
    ...(fineImageSize === undefined ? {} : { fineImageSize }),
  });
}

/** `--set F=V1,V2` values, checked against the stage's fields (a UsageError-style RangeError names the bad one). */
export function parseSets(stage: TuneStage, sets: readonly string[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const set of sets) {
    const m = /^([A-Za-z]+)=(.+)$/.exec(set);
    if (!m) throw new RangeError(`--set ${set}: expected FIELD=V1,V2,...`);
    const [, field, list] = m;
    if (!TUNE_FIELDS[stage].includes(field))
      throw new RangeError(`--set ${set}: ${stage} has no field "${field}" (fields: ${TUNE_FIELDS[stage].join(', ')})`);
    if (Object.hasOwn(out, field)) throw new RangeError(`--set ${set}: ${field} is set twice`);
    const values = list.split(',').map((v) => {
      const n = v.trim() === '' ? Number.NaN : Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new RangeError(`--set ${set}: "${v}" is not a positive number`);
      return n;
    });
    if (new Set(values).size !== values.length) throw new RangeError(`--set ${set}: a value is repeated`);
    out[field] = values;
  }
  return out;
}

/** Metric -> value over the grid's points and seeds, ranked by the score (mean over seeds), best first. */
export function rankRows(
  points: Settings[],
  perSeed: Record<string, number>[][],
  score: (m: Record<string, number>) => number,
): TuneRow[] {
  const rows = points.map((settings, k) => {
    const seeds = perSeed.map((s) => s[k]);
    const metrics = Object.fromEntries(
      Object.keys(seeds[0]).map((name) => [name, seeds.reduce((a, s) => a + s[name], 0) / seeds.length]),
    );
    return { settings, metrics, perSeed: seeds, score: score(metrics) };
  });
  return rows.sort((a, b) => b.score - a.score);
}

/** The fine stage's score: the mean margin of its four rows over their baselines. */
export function fineScore(m: Record<string, number>): number {
  const margins = [
    m.rec - m['rec floor'],
    m['grounding R@1'] - m['grounding floor'],
    m['AP50 seen'] - m['AP50 seen floor'],
    m['AP50 held-out'] - m['AP50 held-out floor'],
  ];
  return margins.reduce((a, b) => a + b) / margins.length;
}

/** Ablation (b)'s score: both architectures' VQA accuracy, averaged. */
export const fusionScore = (m: Record<string, number>): number =>
  (m['VQA fusion in backbone'] + m['VQA late fusion']) / 2;

/** Trains and evaluates every grid point for every seed (one after another), on val. */
export async function tune(
  opts: { stage: TuneStage; preset: RunPreset; seed: number; seeds: number; grid: Settings[] },
  log: (line: string) => void,
): Promise<TuneResult> {
  const [{ tf }, { worldTokenizer }, { runWorld }, { runModelConfig, pretrainCoarse }, img, txt, fine, fusion] =
    await Promise.all([
      import('@fiber-vl/tensor-core'),
      import('@fiber-vl/trainer'),
      import('./seed.js'),
      import('./coarse-model.js'),
      import('./image-pretrain.js'),
      import('./text-pretrain.js'),
      import('./fine-stage.js'),
      import('./fusion-ablation.js'),
    ]);
  // every point checked before anything trains
  const presets = opts.grid.map((s) => withSettings(opts.preset, opts.stage, s));
  const world = runWorld(opts.preset, opts.seed);
  log(`fiber-bench tune: training a ${opts.preset.vocabSize}-token byte-level BPE on the world's train text`);
  const tokenizer = await worldTokenizer(world, {
    vocabSize: opts.preset.vocabSize,
    scenes: Math.min(500, opts.preset.world.train),
  });
  const config = runModelConfig(opts.preset, tokenizer.vocabSize);
  const seeds = Array.from({ length: opts.seeds }, (_, i) => opts.seed + i);
  const perSeed: Record<string, number>[][] = [];
  for (const seed of seeds) {
    const ctx: RunContext = { world, tokenizer, preset: opts.preset, seed, log, curves: [], stages: [] };
    const unimodal = await img.pretrainImage(ctx, config);
    for (const [k, t] of await txt.pretrainText(ctx, config)) unimodal.set(k, t);
    let start = unimodal;
    try {
      if (opts.stage === 'fine') {
        const coarse = await pretrainCoarse(ctx, config, unimodal);
        coarse.model.dispose();
        start = coarse.snapshot;
      }
      const rows: Record<string, number>[] = [];
      for (const [k, preset] of presets.entries()) {
        const point = `point ${k + 1}/${presets.length} (${settingsText(opts.grid[k])})`;
        log(`[seed ${seed}] ${point}`);
        const pctx: RunContext = { ...ctx, preset };
        if (opts.stage === 'fine') {
          const model = await fine.trainFine(pctx, config, start, `${point} fine-grained pre-training`);
          try {
            const r = await fine.evaluateFine(pctx, model, `${point} val eval`, { split: 'val' });
            rows.push({
              rec: r.rec.accuracy,
              'rec floor': r.rec.baseline,
              'grounding R@1': r.grounding.r1,
              'grounding floor': r.grounding.baselineR1,
              'AP50 seen': r.detection.seen.ap50,
              'AP50 seen floor': r.detection.baseline.seen.ap50,
              'AP50 held-out': r.detection.heldOut.ap50,
              'AP50 held-out floor': r.detection.baseline.heldOut.ap50,
            });
          } finally {
            model.dispose();
          }
        } else {
          const r = await fusion.fusionAblation(pctx, config, start, 'val');
          rows.push({
            'VQA fusion in backbone': r.fiber.vqa,
            'VQA late fusion': r.late.vqa,
            'ITM R@1 fusion in backbone': r.fiber.itmR1,
            'ITM R@1 late fusion': r.late.itmR1,
          });
        }
        log(`[seed ${seed}] ${point}: ${metricsText(rows[rows.length - 1])}`);
      }
      perSeed.push(rows);
    } finally {
      tf.dispose([...unimodal.values(), ...(start === unimodal ? [] : start.values())]);
    }
  }
  return {
    stage: opts.stage,
    preset: opts.preset.name,
    seed: opts.seed,
    seeds,
    split: 'val',
    rows: rankRows(opts.grid, perSeed, opts.stage === 'fine' ? fineScore : fusionScore),
  };
}

const settingsText = (s: Settings) =>
  Object.entries(s)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || 'the preset';
const metricsText = (m: Record<string, number>) =>
  Object.entries(m)
    .map(([k, v]) => `${k} ${v.toFixed(3)}`)
    .join(', ');

/** The ranked rows as a Markdown table: settings, score, each metric's mean (per seed). */
export function tuneMarkdown(r: TuneResult): string {
  const fields = Object.keys(r.rows[0]?.settings ?? {});
  const metrics = Object.keys(r.rows[0]?.metrics ?? {});
  const head = [...fields, 'score', ...metrics];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const row of r.rows)
    lines.push(
      `| ${[
        ...fields.map((f) => String(row.settings[f])),
        row.score.toFixed(3),
        ...metrics.map(
          (m) =>
            `${row.metrics[m].toFixed(3)}${r.seeds.length > 1 ? ` (${row.perSeed.map((s) => s[m].toFixed(3)).join(' / ')})` : ''}`,
        ),
      ].join(' | ')} |`,
    );
  return lines.join('\n');
}

export async function tuneMain(argv: string[]): Promise<number> {
  let opts: { stage: TuneStage; preset: RunPreset; seed: number; seeds: number; grid: Settings[] };
  let backend: BackendName;
  let out: string | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        set: { type: 'string', multiple: true, default: [] },
        preset: { type: 'string', default: 'small' },
        seed: { type: 'string', default: '0' },
        seeds: { type: 'string', default: '2' },
        backend: { type: 'string', default: 'wasm' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(TUNE_USAGE);
      return 0;
    }
    const [stage, ...extra] = positionals;
    if (stage !== 'fine' && stage !== 'fusion')
      throw new RangeError(
        stage === undefined ? 'which stage: fine or fusion' : `unknown stage "${stage}" (expected fine or fusion)`,
      );
    if (extra.length) throw new RangeError(`unexpected argument "${extra[0]}"`);
    if (!Object.hasOwn(RUN_PRESETS, values.preset))
      throw new RangeError(
        `--preset: unknown preset "${values.preset}" (expected ${Object.keys(RUN_PRESETS).join(', ')})`,
      );
    if (!['wasm', 'cpu', 'webgpu'].includes(values.backend))
      throw new RangeError(`--backend: unknown backend "${values.backend}" (expected wasm, cpu, webgpu)`);
    backend = values.backend as BackendName;
    out = values.out;
    const preset = RUN_PRESETS[values.preset as RunPresetName];
    const grid = gridOf(parseSets(stage, values.set));
    // every point checked here, so that a bad value is bad usage
    for (const s of grid) withSettings(preset, stage, s);
    opts = { stage, preset, seed: intArg('seed', values.seed, 0), seeds: intArg('seeds', values.seeds, 1), grid };
  } catch (e) {
    process.stderr.write(`fiber-bench tune: ${oneLine((e as Error).message)} (fiber-bench tune --help)\n`);
    return 2;
  }
  const { initBackend } = await import('@fiber-vl/tensor-core');
  await initBackend({ backend, threads: 1 });
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(
    `fiber-bench tune ${opts.stage}: preset ${opts.preset.name}, world seed ${opts.seed}, ${opts.seeds} training seed(s), ${opts.grid.length} point(s), on val`,
  );
  const result = await tune(opts, log);
  if (out) writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${tuneMarkdown(result)}\n`);
  return 0;
}
