// `fiber-bench run`: the main job. The parent process runs one child process per training seed
// (in parallel, one wasm thread each), each child runs every stage of its seed (seed.ts) and writes
// its results as JSON; the parent aggregates them over seeds (means, per-seed values, ablation
// differences and spreads) and writes the Markdown table, results.json and report.html.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { oneLine } from '../one-line.js';
import { outFolderProblem } from '../out-folder.js';
import type { BackendName } from '@fiber-vl/tensor-core';
import { runPreset } from './presets.js';
import {
  type AblationResult,
  type ClassProbeSummary,
  type MainJobResults,
  type MlmProbeSummary,
  type ProbeSummary,
  type TaskResult,
  type VqaTypeSummary,
  REQUIRED_MARGIN,
  clearsMargin,
  strictFailure,
  marginVerdict,
  resultsHtml,
  resultsMarkdown,
} from './report.js';
import type { SeedResult } from './seed.js';
import { encodeSeedResult, jobsOption, runSeedProcesses, seedOptions, trainingSeeds } from './seed-processes.js';

export const RUN_USAGE = `usage: fiber-bench run [--preset micro|small|base] [--seed S] [--seeds N] [--backend wasm|cpu|webgpu] [--out DIR] [--jobs J] [--strict]

The main job: builds the procedural world (deterministic by --seed), trains a BPE tokenizer on its
train text, pre-trains a tiny FIBER coarse (ITC + ITM + MLM), then fine-grained (ATSS grounding
losses) from it, fine-tunes and evaluates every task on the test split against its chance /
majority baseline, and runs the ablations over N training seeds (child processes in parallel, one
wasm thread each). Writes DIR/results.json and DIR/report.html, prints a Markdown table, and writes
the first seed's trained models for the demo page to DIR/models/ (models.json, *.safetensors,
tokenizer/, images/).

  --preset P    micro (tests, < 1 min), small (default, ~17 min on 2 cores), base (bigger machines)
  --seed S      world seed, at most 2^32 - 1; training seeds are S, S+1, ... (default 0)
  --seeds N     training seeds, at most 64 (default 2; ablations need >= 2 for a spread)
  --backend B   wasm (default), cpu or webgpu
  --out DIR     output folder (default ./bench-results)
  --jobs J      seeds run at once (default min(N, cores))
  --strict      exit 3 when a task's mean is under its baseline + ${REQUIRED_MARGIN} (the outputs are still
                written; 1 is an error, 2 bad usage); without it the run exits 0 and the verdict
                line names those tasks

Stopped by SIGINT, SIGTERM or SIGHUP, it stops its seed processes and exits 130, 143 or 129; a
seed that fails stops the others.
`;

/** --backend of `run` and `tune`: one of the backends a seed process can start (a RangeError names it). */
export function backendArg(name: string): BackendName {
  if (name !== 'wasm' && name !== 'cpu' && name !== 'webgpu')
    throw new RangeError(`--backend: unknown backend "${name}" (expected wasm, cpu, webgpu)`);
  return name;
}

/** `--strict`'s exit status when a row is under the margin (1 is an error's, 2 bad usage's). */
export const STRICT_EXIT = 3;

interface RunArgs {
  preset: string;
  seed: number;
  seeds: number;
  backend: BackendName;
  out: string;
  jobs: number;
  strict: boolean;
}

function parseRunArgs(argv: string[]): RunArgs | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      preset: { type: 'string', default: 'small' },
      seed: { type: 'string', default: '0' },
      seeds: { type: 'string', default: '2' },
      backend: { type: 'string', default: 'wasm' },
      out: { type: 'string', default: 'bench-results' },
      jobs: { type: 'string' },
      'child-seed': { type: 'string' },
      'child-result': { type: 'string' },
      'child-gallery': { type: 'boolean' },
      'child-models': { type: 'string' },
      strict: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  // a seed process each: a few dozen at most; world and training seeds within the generators' range
  const { seed, seeds } = seedOptions(values.seed, values.seeds);
  return {
    preset: values.preset,
    seed,
    seeds,
    backend: backendArg(values.backend),
    out: resolve(values.out),
    jobs: jobsOption(values.jobs, seeds),
    strict: values.strict,
  };
}

/** The child side: one training seed, results written to a JSON file. */
async function runChild(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      preset: { type: 'string' },
      seed: { type: 'string' },
      backend: { type: 'string' },
      'child-seed': { type: 'string' },
      'child-result': { type: 'string' },
      'child-gallery': { type: 'boolean' },
      'child-models': { type: 'string' },
    },
    strict: false,
  });
  const preset = runPreset(String(values.preset));
  // loaded only now, after the arguments are checked (--help and bad usage answer at once)
  const [{ initBackend }, { modelExporter }, { stderrLog }, { runSeed }] = await Promise.all([
    import('@fiber-vl/tensor-core'),
    import('./export-models.js'),
    import('./progress.js'),
    import('./seed.js'),
  ]);
  await initBackend({ backend: values.backend as BackendName, threads: 1 });
  const result = await runSeed({
    preset,
    worldSeed: Number(values.seed),
    seed: Number(values['child-seed']),
    gallery: values['child-gallery'] === true,
    log: stderrLog,
    onTrained: typeof values['child-models'] === 'string' ? modelExporter(values['child-models']) : undefined,
  });
  writeFileSync(String(values['child-result']), encodeSeedResult(result));
  return 0;
}

/** The child arguments of one seed; the first seed (`gallery`) also writes the report's gallery and the trained models (DIR/models). */
function seedArgs(args: RunArgs, seed: number, gallery: boolean, file: string): string[] {
  return [
    'run',
    '--preset',
    args.preset,
    '--seed',
    String(args.seed),
    '--backend',
    args.backend,
    '--child-seed',
    String(seed),
    '--child-result',
    file,
    ...(gallery ? ['--child-gallery', '--child-models', join(args.out, 'models')] : []),
  ];
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const spreadOf = (xs: number[]) => Math.max(...xs) - Math.min(...xs);

/** Means over seeds of every task metric; the baseline is the world's, the same for every seed. */
export function aggregateTasks(results: SeedResult[]): TaskResult[] {
  return results[0].tasks.map((t, k) => {
    const seeds = results.map((r) => {
      const s = r.tasks[k];
      if (s.task !== t.task || s.metric !== t.metric)
        throw new Error(`seed ${r.seed}: task ${k} is ${s.task}/${s.metric}, expected ${t.task}/${t.metric}`);
      // the baseline is measured on the same test split by every seed: one value, or a bug
      if (!Object.is(s.baseline, t.baseline))
        throw new Error(
          `seed ${r.seed}: ${t.task} ${t.metric}'s baseline is ${s.baseline}, seed ${results[0].seed}'s ${t.baseline}`,
        );
      return s.value;
    });
    return { ...t, value: mean(seeds), seeds };
  });
}

/** Ablation pairs over seeds: mean difference, its spread, and whether it is within seed noise. */
export function aggregateAblations(results: SeedResult[]): AblationResult[] {
  return results[0].ablations.map((a, k) => {
    const seeds = results.map((r) => {
      const s = r.ablations[k];
      if (s?.name !== a.name || s.task !== a.task || s.metric !== a.metric)
        throw new Error(
          `seed ${r.seed}: ablation ${k} is ${s ? `${s.name} ${s.task}/${s.metric}` : 'missing'}, expected ${a.name} ${a.task}/${a.metric}`,
        );
      return { seed: r.seed, with: s.with, without: s.without };
    });
    const diffs = seeds.map((s) => s.with - s.without);
    const difference = mean(diffs);
    const spread = spreadOf(diffs);
    // a claim needs >= 2 seeds, every seed's difference of one sign, and a mean beyond each side's spread
    const oneSign = diffs.every((d) => d > 0) || diffs.every((d) => d < 0);
    const noise = Math.max(spread, spreadOf(seeds.map((s) => s.with)), spreadOf(seeds.map((s) => s.without)));
    return {
      name: a.name,
      task: a.task,
      metric: a.metric,
      with: mean(seeds.map((s) => s.with)),
      without: mean(seeds.map((s) => s.without)),
      seeds,
      difference,
      spread,
      withinNoise: seeds.length < 2 || !oneSign || Math.abs(difference) <= noise,
      ...(a.cost ? { cost: a.cost } : {}),
    };
  });
}

/**
 * Entry k of every seed's list, for each k of the first seed's, checked to be the same entry (by
 * `id`) on every seed: the seeds' lists must line up.
 */
function alignedOverSeeds<T>(
  results: SeedResult[],
  list: (r: SeedResult) => T[],
  id: (t: T) => string,
  what: string,
): T[][] {
  const first = list(results[0]);
  for (const r of results)
    if (list(r).length !== first.length)
      throw new Error(`seed ${r.seed}: ${list(r).length} ${what}s, seed ${results[0].seed} ${first.length}`);
  return first.map((p, k) =>
    results.map((r) => {
      const q = list(r)[k];
      if (id(q) !== id(p)) throw new Error(`seed ${r.seed}: ${what} ${k} is ${id(q)}, expected ${id(p)}`);
      return q;
    }),
  );
}

/** The numeric fields `keys` of each seed's entry, and their means over the seeds. */
function meansOverSeeds<K extends string, T extends Record<K, number>>(
  qs: T[],
  keys: readonly K[],
): { seeds: Record<K, number>[]; means: Record<K, number> } {
  const record = (value: (k: K) => number) => {
    const out = {} as Record<K, number>;
    for (const k of keys) out[k] = value(k);
    return out;
  };
  const seeds = qs.map((q) => record((k) => q[k]));
  return { seeds, means: record((k) => mean(seeds.map((s) => s[k]))) };
}

/** Probe accuracies over seeds (the chance is the world's, the same for every seed). */
export function aggregateProbes(results: SeedResult[]): ProbeSummary[] {
  return alignedOverSeeds(
    results,
    (r) => r.probes,
    (q) => `${q.model}/${q.stride}/${q.attribute}`,
    'probe',
  ).map((qs) => {
    const [p] = qs;
    const seeds = qs.map((q) => q.accuracy);
    return { model: p.model, stride: p.stride, attribute: p.attribute, accuracy: mean(seeds), seeds, chance: p.chance };
  });
}

/** MLM probe accuracies over seeds (the same words for every seed: the world is shared). */
export function aggregateMlmProbes(results: SeedResult[]): MlmProbeSummary[] {
  return alignedOverSeeds(
    results,
    (r) => r.mlmProbes,
    (q) => `${q.model}/${q.attribute}/${q.words} words`,
    'MLM probe',
  ).map((qs) => {
    const [p] = qs;
    const { seeds, means } = meansOverSeeds(qs, ['ownImage', 'otherImage']);
    return { model: p.model, attribute: p.attribute, words: p.words, ...means, seeds, chance: p.chance };
  });
}

/** Class probe APs over seeds (the same classes, images and chance for every seed). */
export function aggregateClassProbes(results: SeedResult[]): ClassProbeSummary[] {
  return alignedOverSeeds(
    results,
    (r) => r.classProbes,
    (q) =>
      `${q.class}${q.heldOut ? ' (held out)' : ''}/${q.images} images/object count ${q.objectCount}/chance ${q.chance}/single-object images ${q.singleObject?.images ?? 0}`,
    'class probe',
  ).map((qs) => {
    const [p] = qs;
    const { seeds, means } = meansOverSeeds(qs, ['coarseItc', 'fineDetector']);
    // every seed has a single-object entry or none: its image count is part of the alignment key
    const single = qs.flatMap((q) => (q.singleObject ? [q.singleObject] : []));
    return {
      class: p.class,
      heldOut: p.heldOut,
      images: p.images,
      ...means,
      seeds,
      objectCount: p.objectCount,
      chance: p.chance,
      singleObject: p.singleObject && {
        images: p.singleObject.images,
        ...meansOverSeeds(single, ['coarseItc', 'fineDetector']).means,
      },
    };
  });
}

/** VQA per-type accuracies over seeds (the same questions and majority baselines for every seed). */
export function aggregateVqaTypes(results: SeedResult[]): VqaTypeSummary[] {
  return alignedOverSeeds(
    results,
    (r) => r.vqaTypes,
    (q) => `${q.type}/${q.questions} questions/majority "${q.majorityAnswer}" ${q.majority}`,
    'VQA type',
  ).map((qs) => {
    const [p] = qs;
    const { seeds, means } = meansOverSeeds(qs, ['ownImage', 'otherImage']);
    return {
      type: p.type,
      questions: p.questions,
      ...means,
      seeds,
      majorityAnswer: p.majorityAnswer,
      majority: p.majority,
    };
  });
}

export async function runMain(argv: string[]): Promise<number> {
  if (argv.includes('--child-result')) return runChild(argv);
  let args: RunArgs | 'help';
  let preset: ReturnType<typeof runPreset>;
  try {
    args = parseRunArgs(argv);
    if (args === 'help') {
      process.stdout.write(RUN_USAGE);
      return 0;
    }
    preset = runPreset(args.preset);
  } catch (e) {
    // bad usage: one line and exit 2, as the other fiber-bench commands
    process.stderr.write(`fiber-bench run: ${oneLine((e as Error).message)} (fiber-bench run --help)\n`);
    return 2;
  }
  const outProblem = outFolderProblem(args.out);
  if (outProblem) {
    process.stderr.write(`fiber-bench run: ${outProblem} (fiber-bench run --help)\n`);
    return 2;
  }
  // models of an earlier run must not be mixed with this run's
  rmSync(join(args.out, 'models'), { recursive: true, force: true });
  const started = performance.now();
  const { stderrLog } = await import('./progress.js');
  const seeds = trainingSeeds(args.seed, args.seeds);
  stderrLog(
    `fiber-bench run: preset ${preset.name}, world seed ${args.seed}, training seeds ${seeds.join(', ')}, ${args.backend}, ${args.jobs} at once`,
  );
  const results = await runSeedProcesses<SeedResult>('run', seeds, args.jobs, (seed, file) =>
    seedArgs(args, seed, seed === args.seed, file),
  );
  const out: MainJobResults = {
    tasks: aggregateTasks(results).map((t) => ({ ...t, clearMargin: clearsMargin(t) })),
    ablations: aggregateAblations(results),
    probes: aggregateProbes(results),
    mlmProbes: aggregateMlmProbes(results),
    classProbes: aggregateClassProbes(results),
    vqaTypes: aggregateVqaTypes(results),
    backend: args.backend,
    seconds: (performance.now() - started) / 1000,
    seeds,
    preset: preset.name,
    world: results[0].world,
    stages: results.flatMap((r) => r.stages.map((s) => ({ ...s, name: `seed ${r.seed}: ${s.name}` }))),
    losses: results.flatMap((r) => r.losses),
  };
  mkdirSync(args.out, { recursive: true });
  const json = join(args.out, 'results.json');
  const html = join(args.out, 'report.html');
  writeFileSync(json, `${JSON.stringify(out, null, 2)}\n`);
  writeFileSync(html, resultsHtml(out, results[0].gallery));
  process.stdout.write(`\n${resultsMarkdown(out)}\n\n`);
  process.stdout.write(`${marginVerdict(out.tasks, out.seeds).join('\n')}\n`);
  process.stdout.write(`written: ${json}, ${html}, ${join(args.out, 'models')}/ (the demo's models)\n`);
  const failure = args.strict ? strictFailure(out.tasks) : undefined;
  if (failure) {
    process.stderr.write(`fiber-bench run: ${failure}\n`);
    return STRICT_EXIT;
  }
  return 0;
}
