// `fiber-bench eval`: an official (or project-trained) FIBER checkpoint on a benchmark in its public
// layout. Runs the task in batches with progress and resumable partial results, computes the
// official metrics with @fiber-vl/eval-metrics, writes the official result files and a metrics JSON,
// and prints a Markdown summary (or only the JSON with --json).
// The models, tfjs and the task code load after the arguments are checked (--help and bad usage
// answer at once).
import type { EvalContext, TaskReport } from './context.js';
import { EvalInputError, fail } from './errors.js';
import { EVAL_USAGE, parseEvalArgs, type EvalOptions, type EvalTask } from './options.js';
import { outFolderProblem } from '../out-folder.js';

export { EVAL_USAGE, EVAL_TASKS, parseEvalArgs, type EvalOptions, type EvalTask } from './options.js';
export type { TaskReport } from './context.js';

const TASKS: Record<EvalTask, (ctx: EvalContext) => Promise<TaskReport>> = {
  vqa: async (ctx) => (await import('./tasks/vqa.js')).evalVqa(ctx),
  caption: async (ctx) => (await import('./tasks/caption.js')).evalCaption(ctx),
  retrieval: async (ctx) => (await import('./tasks/retrieval.js')).evalRetrieval(ctx),
  nlvr2: async (ctx) => (await import('./tasks/nlvr2.js')).evalNlvr2(ctx),
  refcoco: async (ctx) => (await import('./tasks/refcoco.js')).evalRefcoco(ctx),
  'flickr30k-entities': async (ctx) => (await import('./tasks/flickr30k.js')).evalFlickr30kEntities(ctx),
  'coco-det': async (ctx) => (await import('./tasks/coco-det.js')).evalCocoDetection(ctx),
};

/** The metrics JSON of a run (`<out>/<name>_metrics.json`; printed alone with --json). */
export interface EvalSummary extends Omit<TaskReport, 'rows' | 'notes'> {
  command: 'eval';
  schemaVersion: 1;
  task: EvalTask;
  checkpoint: string;
  backend: string;
  seconds: number;
  counts: TaskReport['counts'] & { skipped: number };
  skipped: Record<string, number>;
  /** `id`: the file's id of an entry its reader could not read, where it had one. */
  skippedSamples: { key: string; reason: string; detail: string; id?: string }[];
  notes: string[];
}

export interface EvalIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean };
}

function markdown(s: EvalSummary, rows: [string, string][]): string {
  const skipped = s.counts.skipped
    ? ` (${Object.entries(s.skipped)
        .map(([r, n]) => `${n} ${r}`)
        .join(', ')})`
    : '';
  const info = [
    `checkpoint: ${s.checkpoint} (${s.model})`,
    ...Object.entries(s.data).map(([k, v]) => `${k}: ${v}`),
    `protocol: ${s.protocol}`,
    `samples: ${s.counts.samples} read, ${s.counts.evaluated} evaluated, ${s.counts.skipped} skipped${skipped}`,
    `backend: ${s.backend}, ${s.seconds.toFixed(1)} s`,
  ];
  const title = `## fiber-bench eval: ${s.task}${s.dataset ? ` (${s.dataset})` : ''}, ${s.split}`;
  const table = [
    '| metric | value |',
    '|---|---|',
    ...rows.map(([a, b]) => `| ${a.replaceAll('|', '\\|')} | ${b} |`),
  ].join('\n');
  const list = (items: string[]) => items.map((t) => `- ${t}`).join('\n');
  const files = Object.entries(s.files).map(([k, v]) => `${k}: ${v}`);
  return [
    title,
    list(info),
    table,
    ...(s.notes.length ? [`notes:\n${list(s.notes)}`] : []),
    `files:\n${list(files)}`,
  ].join('\n\n');
}

/** Runs `fiber-bench eval` with these arguments; returns the exit code (2: bad input, one line on stderr). */
export async function evalMain(
  argv: string[],
  io: EvalIO = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const started = performance.now();
  let ctx: EvalContext | undefined;
  try {
    const opts: EvalOptions | undefined = parseEvalArgs(argv);
    if (!opts) {
      io.stdout.write(EVAL_USAGE);
      return 0;
    }
    const outProblem = outFolderProblem(opts.out);
    if (outProblem) fail(outProblem);
    const log = (line: string) => io.stderr.write(`${line}\n`);
    const [{ initBackend }, { nodeImageDecoder }, { EvalContext }, { SkipLog }] = await Promise.all([
      import('@fiber-vl/tensor-core'),
      import('@fiber-vl/trainer/node'),
      import('./context.js'),
      import('./data.js'),
    ]);
    const backend = await initBackend({ backend: opts.backend, threads: opts.threads }).catch((e: Error) =>
      fail(`--backend ${opts.backend}: ${e.message}`),
    );
    const decoder = await nodeImageDecoder(opts.decoder).catch((e: Error) =>
      fail(`--decoder ${opts.decoder}: ${e.message}`),
    );
    ctx = new EvalContext(
      opts,
      log,
      { write: (t) => io.stderr.write(t), isTTY: io.stderr.isTTY },
      new SkipLog(log),
      decoder,
    );
    const report = await TASKS[opts.task](ctx);
    const skippedSamples = ctx.skips.items.map(({ key, reason, detail, id }) => ({
      key,
      reason,
      detail,
      ...(id === undefined ? {} : { id }),
    }));
    const { rows, ...rest } = report;
    if (skippedSamples.length) {
      rest.notes = [
        ...rest.notes,
        `metrics over the evaluated samples only; the ${skippedSamples.length} skipped are listed in the metrics JSON`,
      ];
    }
    const summary: EvalSummary = {
      command: 'eval',
      schemaVersion: 1,
      ...rest,
      task: opts.task,
      checkpoint: opts.checkpoint,
      backend: backend.name,
      seconds: (performance.now() - started) / 1000,
      counts: { ...report.counts, skipped: skippedSamples.length },
      skipped: ctx.skips.counts(),
      skippedSamples,
      files: {
        ...report.files,
        metrics: ctx.outFile(`${report.name}_metrics.json`),
        partial: ctx.outFile(`${report.name}.partial.jsonl`),
      },
    };
    ctx.writeJson(`${report.name}_metrics.json`, summary, true);
    if (ctx.skips.items.length)
      log(`skipped ${ctx.skips.items.length} sample(s): ${ctx.skips.summary()} (listed in ${summary.files.metrics})`);
    io.stdout.write(opts.json ? `${JSON.stringify(summary)}\n` : `\n${markdown(summary, rows)}\n`);
    return 0;
  } catch (e) {
    if (e instanceof EvalInputError || e instanceof (await import('@fiber-vl/eval-metrics')).MetricInputError) {
      io.stderr.write(`fiber-bench eval: ${e.message}\n`);
      return 2;
    }
    throw e;
  } finally {
    ctx?.close();
  }
}
