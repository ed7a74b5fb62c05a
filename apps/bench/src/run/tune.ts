// `fiber-bench tune`: chooses the settings of a stage of the main job on the world's val scenes, so
// that the test scenes the run reports on are not the ones its settings were chosen on. Each
// training seed trains what the stage starts from as the run does (the unimodal pre-training, and
// for the fine stage the coarse pre-training), then every point of the grid trains the stage from
// it and evaluates it on val.
import { accessSync, constants, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { BackendName } from '@fiber-vl/tensor-core';
import { oneLine } from '../one-line.js';
import { outFolderProblem } from '../out-folder.js';
import { intArg } from '../train/args.js';
import type { RunContext } from './context.js';
import { backendArg } from './main.js';
import { REQUIRED_MARGIN } from './report.js';
import { type RunPreset, type RunPresetName, type StageSettings, runPreset, validateRunPreset } from './presets.js';
import {
  MAX_SEED,
  encodeSeedResult,
  jobsOption,
  runSeedProcesses,
  seedOptions,
  trainingSeeds,
} from './seed-processes.js';

export const TUNE_USAGE = `usage: fiber-bench tune fine|fusion [--set FIELD=V1,V2,...]... [--preset micro|small|base] [--seed S] [--seeds N] [--backend wasm|cpu|webgpu] [--jobs J] [--out FILE]

Chooses a stage's settings on the val scenes of the main job's world (fiber-bench run evaluates on
the test scenes). For each training seed it trains what the stage starts from, as the run does,
then trains and evaluates the stage once per point of the grid (every combination of the --set
values; the preset's value where a field is not set), and prints a table: each point's val metrics
(mean over seeds, and per seed), its score and its seconds per seed, best first. The seconds are
for you to weigh: the tool does not know the run's time budget.

  fine     the fine-grained stage (from the coarse pre-training). Fields: steps, batchSize, lr,
           lrMultOutputs, imageLabelWeight (0: no image-level labels, the prompts list the seen
           classes only; not a zero weight), fineImageSize. Ranked by how many of the run's seven rows of the stage
           (REC accuracy, grounding R@1 and R@5, detection AP and AP50 on the seen and on the
           held-out classes) clear their baseline by the run's margin (${REQUIRED_MARGIN}), then by the mean
           of the seven margins (the score).
  fusion   ablation (b), both architectures (from the unimodal pre-training). Fields: steps,
           batchSize, lr, lrMultHead. Score: the two architectures' mean VQA accuracy (the same
           settings serve both, so they are not chosen for the gap between them).

  --set F=V,... values of one field, positive decimal numbers, or 0 for imageLabelWeight
                (repeatable; at most 256 points in all),
                e.g. --set steps=300,450 --set lrMultOutputs=50,100
  --preset P    micro, small (default) or base
  --seed S      world seed, at most 2^32 - 1 (default 0); training seeds are S, S+1, ...
  --seeds N     training seeds, at most 64 (default 2)
  --backend B   wasm (default), cpu or webgpu
  --jobs J      seeds trained at once, each in a process of its own with one wasm thread
                (default min(N, cores))
  --out FILE    also write the rows as JSON (checked before anything trains)

With the small preset the upstream stages take about 6 minutes per seed, and each point 2-4
minutes per seed (one core each). Stopped by SIGINT, SIGTERM or SIGHUP, it stops its seed
processes and exits 130, 143 or 129; a seed that fails stops the others.
`;

export type TuneStage = 'fine' | 'fusion';

/** The most grid points one tune trains (each takes minutes per seed with the small preset). */
export const MAX_POINTS = 256;

/** The settings `--set` may vary, per stage. */
export const TUNE_FIELDS: Readonly<Record<TuneStage, readonly string[]>> = {
  fine: ['steps', 'batchSize', 'lr', 'lrMultOutputs', 'imageLabelWeight', 'fineImageSize'],
  fusion: ['steps', 'batchSize', 'lr', 'lrMultHead'],
};

export type Settings = Record<string, number>;

export interface TuneRow {
  settings: Settings;
  /** Val metrics, mean over seeds. */
  metrics: Record<string, number>;
  /** The same, per seed (in `seeds` order). */
  perSeed: Record<string, number>[];
  /** Rows that clear their baseline by the run's margin (fine: of its seven; fusion: 0), ranked first. */
  cleared: number;
  /** What the points are ranked by next (higher is better). */
  score: number;
  /** Seconds per seed of the point's training and evaluation (mean over seeds). */
  seconds: number;
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
  const { fineImageSize, imageLabelWeight, ...rest } = settings;
  const stageSettings: StageSettings = { ...preset[key], ...rest };
  if (imageLabelWeight === 0) delete stageSettings.imageLabelWeight;
  else if (imageLabelWeight !== undefined) stageSettings.imageLabelWeight = imageLabelWeight;
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
    // imageLabelWeight=0 is the fine stage without image-level labels (the preset field left out)
    const zero = field === 'imageLabelWeight';
    const values = list.split(',').map((v) => {
      const n = /^(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(v) ? Number(v) : Number.NaN;
      if (!Number.isFinite(n) || n < 0 || (n === 0 && !zero))
        throw new RangeError(`--set ${set}: "${v}" is not a ${zero ? 'non-negative' : 'positive'} decimal number`);
      return n;
    });
    if (new Set(values).size !== values.length) throw new RangeError(`--set ${set}: a value is repeated`);
    out[field] = values;
  }
  return out;
}

/** A stage's ranking: how many rows clear the margin, then a score (higher is better). */
export interface TuneScoring {
  cleared(m: Record<string, number>): number;
  score(m: Record<string, number>): number;
}

/**
 * The points with their metrics' means over seeds, ranked by the rows they clear, then the score,
 * best first. `perSeed[s][k]` holds point k's metrics on seed s (`seconds` among them, kept apart).
 */
export function rankRows(points: Settings[], perSeed: Record<string, number>[][], scoring: TuneScoring): TuneRow[] {
  const rows = points.map((settings, k) => {
    const seeds = perSeed.map((s) => s[k]);
    const mean = (name: string) => seeds.reduce((a, s) => a + s[name], 0) / seeds.length;
    const metrics = Object.fromEntries(
      Object.keys(seeds[0])
        .filter((name) => name !== 'seconds')
        .map((name) => [name, mean(name)]),
    );
    return {
      settings,
      metrics,
      perSeed: seeds.map(({ seconds: _, ...m }) => m),
      cleared: scoring.cleared(metrics),
      score: scoring.score(metrics),
      seconds: mean('seconds'),
    };
  });
  return rows.sort((a, b) => b.cleared - a.cleared || b.score - a.score);
}

/** The suffix of a row's baseline among a tune point's metrics. */
export const BASELINE = ' baseline';

/** The margin over its baseline of every row that has one (the fine stage's rows, all higher-is-better). */
const margins = (m: Record<string, number>) =>
  Object.keys(m)
    .filter((k) => Object.hasOwn(m, `${k}${BASELINE}`))
    .map((k) => m[k] - m[`${k}${BASELINE}`]);

/** The fine stage: its rows (the run's) that clear the run's margin, then their mean margin. */
export const FINE_SCORING: TuneScoring = {
  cleared: (m) => margins(m).filter((v) => v >= REQUIRED_MARGIN).length,
  score: (m) => {
    const all = margins(m);
    return all.reduce((a, b) => a + b, 0) / all.length;
  },
};

/** Ablation (b): both architectures' VQA accuracy, averaged (no row is judged by a margin here). */
export const FUSION_SCORING: TuneScoring = {
  cleared: () => 0,
  score: (m) => (m['VQA fusion in backbone'] + m['VQA late fusion']) / 2,
};

/** What a tune trains: a stage, its grid over the preset, and the training seeds. */
export interface TuneOptions {
  stage: TuneStage;
  preset: RunPreset;
  /** World seed; the training seeds are seed, seed + 1, ... */
  seed: number;
  seeds: number;
  grid: Settings[];
}

/**
 * One training seed of a tune (what each of its seed processes runs): trains what the stage starts
 * from, then every grid point from it, and evaluates each on val. Each point's val metrics and its
 * seconds, in grid order.
 */
export async function tuneSeed(
  opts: TuneOptions,
  seed: number,
  log: (line: string) => void,
): Promise<Record<string, number>[]> {
  const [{ tf }, { seedContext, pretrainUnimodal }, { runModelConfig, pretrainCoarse }, fine, fusion] =
    await Promise.all([
      import('@fiber-vl/tensor-core'),
      import('./seed.js'),
      import('./coarse-model.js'),
      import('./fine-stage.js'),
      import('./fusion-ablation.js'),
    ]);
  // every point checked before anything trains
  const presets = opts.grid.map((s) => withSettings(opts.preset, opts.stage, s));
  // what the run's seed process does before the stage (seed.ts)
  const ctx = await seedContext(opts.preset, opts.seed, seed, log);
  const config = runModelConfig(opts.preset, ctx.tokenizer.vocabSize);
  const unimodal = await pretrainUnimodal(ctx, config);
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
      const pctx: RunContext = { ...ctx, preset, stages: [] };
      let row: Record<string, number>;
      if (opts.stage === 'fine') {
        const model = await fine.trainFine(pctx, config, start, `${point} fine-grained pre-training`);
        try {
          const r = await fine.evaluateFine(pctx, model, `${point} val eval`, { split: 'val' });
          // the run's rows of the stage, each with its baseline (`<row> baseline`)
          row = {};
          for (const t of fine.fineTasks(r)) {
            if (!t.higherIsBetter) throw new Error(`tune: ${t.task} ${t.metric} is not higher-is-better`);
            row[`${t.task} ${t.metric}`] = t.value;
            row[`${t.task} ${t.metric}${BASELINE}`] = t.baseline;
          }
        } finally {
          model.dispose();
        }
      } else {
        const r = await fusion.fusionAblation(pctx, config, start, 'val');
        row = {
          'VQA fusion in backbone': r.fiber.vqa,
          'VQA late fusion': r.late.vqa,
          'ITM R@1 fusion in backbone': r.fiber.itmR1,
          'ITM R@1 late fusion': r.late.itmR1,
        };
      }
      row.seconds = pctx.stages.reduce((a, st) => a + st.seconds, 0);
      log(`[seed ${seed}] ${point}: ${metricsText(row)}`);
      rows.push(row);
    }
    return rows;
  } finally {
    tf.dispose([...unimodal.values(), ...(start === unimodal ? [] : start.values())]);
  }
}

/** The training seeds of a tune. */
export const tuneSeeds = (opts: TuneOptions) => trainingSeeds(opts.seed, opts.seeds);

/** The rows of a seed process, checked: one per grid point, every value a number (NaN too). */
export function decodeSeedRows(seed: number, value: unknown, points: number): Record<string, number>[] {
  const bad = (what: string) => new Error(`seed ${seed}: the seed process's result ${what}`);
  if (!Array.isArray(value) || value.length !== points) throw bad(`is not a list of ${points} rows`);
  return value.map((row: unknown, k) => {
    if (typeof row !== 'object' || row === null || Array.isArray(row)) throw bad(`row ${k} is not an object`);
    return Object.fromEntries(
      Object.entries(row).map(([name, v]) => {
        if (typeof v !== 'number') throw bad(`row ${k}: "${name}" is not a number`);
        return [name, v];
      }),
    );
  });
}

/** The tune's result from every seed's rows (`perSeed[s]`: seed s's, in grid order), ranked. */
export function tuneResult(opts: TuneOptions, perSeed: Record<string, number>[][]): TuneResult {
  return {
    stage: opts.stage,
    preset: opts.preset.name,
    seed: opts.seed,
    seeds: tuneSeeds(opts),
    split: 'val',
    rows: rankRows(opts.grid, perSeed, opts.stage === 'fine' ? FINE_SCORING : FUSION_SCORING),
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
  // the rows judged by the margin: those with a baseline among the metrics
  const judged = metrics.filter((m) => metrics.includes(`${m}${BASELINE}`)).length;
  const head = [...fields, ...(r.stage === 'fine' ? ['rows cleared'] : []), 'score', 'seconds', ...metrics];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const row of r.rows)
    lines.push(
      `| ${[
        ...fields.map((f) => String(row.settings[f])),
        ...(r.stage === 'fine' ? [`${row.cleared}/${judged}`] : []),
        row.score.toFixed(3),
        row.seconds.toFixed(0),
        ...metrics.map(
          (m) =>
            `${row.metrics[m].toFixed(3)}${r.seeds.length > 1 ? ` (${row.perSeed.map((s) => s[m].toFixed(3)).join(' / ')})` : ''}`,
        ),
      ].join(' | ')} |`,
    );
  return lines.join('\n');
}

export async function tuneMain(argv: string[]): Promise<number> {
  let opts: TuneOptions;
  let backend: BackendName;
  let jobs: number;
  let sets: string[];
  let child: { seed: number; result: string } | undefined;
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
        jobs: { type: 'string' },
        out: { type: 'string' },
        // a seed process of this command (seed-processes.ts): its training seed and result file
        'child-seed': { type: 'string' },
        'child-result': { type: 'string' },
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
    const preset = runPreset(values.preset);
    backend = backendArg(values.backend);
    if (values.out !== undefined) {
      out = resolve(values.out);
      if (existsSync(out)) {
        if (statSync(out).isDirectory()) throw new RangeError(`--out ${values.out} is a folder, not a file`);
        try {
          accessSync(out, constants.W_OK);
        } catch (e) {
          throw new RangeError(`--out ${values.out}: cannot write it (${oneLine((e as Error).message)})`);
        }
      } else {
        const problem = outFolderProblem(dirname(out));
        if (problem) throw new RangeError(problem.replace(/^--out [^:]*/, `--out ${values.out}`));
      }
    }
    sets = values.set;
    const parsed = parseSets(stage, sets);
    const points = Object.values(parsed).reduce((n, vs) => n * vs.length, 1);
    if (points > MAX_POINTS) throw new RangeError(`--set: ${points} points, more than ${MAX_POINTS}`);
    const grid = gridOf(parsed);
    // every point checked here, so that a bad value is bad usage
    for (const s of grid)
      try {
        withSettings(preset, stage, s);
      } catch (e) {
        throw new RangeError(`--set: ${(e as Error).message}`);
      }
    const { seed, seeds } = seedOptions(values.seed, values.seeds);
    opts = { stage, preset, seed, seeds, grid };
    jobs = jobsOption(values.jobs, seeds);
    // a seed process of this command: both or neither
    if ((values['child-seed'] === undefined) !== (values['child-result'] === undefined))
      throw new RangeError('--child-seed and --child-result (a seed process of tune) go together');
    if (values['child-result'] !== undefined)
      child = { seed: intArg('child-seed', values['child-seed'] ?? '', 0, MAX_SEED), result: values['child-result'] };
  } catch (e) {
    process.stderr.write(`fiber-bench tune: ${oneLine((e as Error).message)} (fiber-bench tune --help)\n`);
    return 2;
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  if (child) {
    const { initBackend } = await import('@fiber-vl/tensor-core');
    await initBackend({ backend, threads: 1 });
    writeFileSync(child.result, encodeSeedResult(await tuneSeed(opts, child.seed, log)));
    return 0;
  }
  const seeds = tuneSeeds(opts);
  log(
    `fiber-bench tune ${opts.stage}: preset ${opts.preset.name}, world seed ${opts.seed}, training seeds ${seeds.join(', ')}, ${backend}, ${jobs} at once, ${opts.grid.length} point(s), on val`,
  );
  const results = await runSeedProcesses<unknown>('tune', seeds, jobs, (seed, file) => [
    'tune',
    opts.stage,
    ...sets.flatMap((s) => ['--set', s]),
    '--preset',
    opts.preset.name,
    '--seed',
    String(opts.seed),
    '--backend',
    backend,
    '--child-seed',
    String(seed),
    '--child-result',
    file,
  ]);
  const perSeed = results.map((rows, k) => decodeSeedRows(seeds[k], rows, opts.grid.length));
  const result = tuneResult(opts, perSeed);
  // the table first: it is what the hours of training were for, whatever happens to the file
  process.stdout.write(`${tuneMarkdown(result)}\n`);
  if (out) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  }
  return 0;
}
