// `fiber-bench metrics`: @fiber-vl/eval-metrics at COCO scale on synthetic data (seeded):
// captioning on 5,000 images x 5 references (PTB tokenisation, BLEU, ROUGE-L, CIDEr-D, METEOR) and
// COCOeval on 5,000 images with ~7 ground-truth boxes and 100 detections each, timed stage by stage
// (wall and CPU seconds, peak memory). The report's shape is documented in apps/bench/README.md.
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import {
  bleu,
  ciderD,
  CocoEval,
  evaluateCaptions,
  Meteor,
  ptbTokenize,
  rougeL,
  type CocoDetection,
  type CocoGroundTruth,
} from '@fiber-vl/eval-metrics';
import { loadMeteorResources } from '@fiber-vl/eval-metrics/node';
import { Generator } from '@fiber-vl/tensor-core';
import { peakRssMb } from './measure.js';

const words = (s: string) => s.split(' ');
const SUBJECTS = words(
  'man woman person child boy girl dog cat horse bird giraffe elephant zebra bear cow sheep surfer skier player ' +
    'couple group',
);
const ATTRS = words(
  'young old small large brown black white red blue green yellow little big tall wooden grassy snowy busy',
);
const VERBS = words(
  'riding holding standing sitting walking playing eating looking carrying throwing catching flying jumping lying',
);
const PREPS = 'on in near next to under behind beside with at across over'.split(' ');
const OBJECTS = (
  'wave surfboard frisbee ball street field table bench beach road plate pizza kite umbrella skateboard bus train ' +
  'clock sign tree water snow grass fence'
).split(' ');

function caption(rng: Generator): string {
  const pick = <T>(xs: T[]) => xs[rng.nextInt(xs.length)];
  const words = ['A', pick(ATTRS), pick(SUBJECTS), pick(VERBS), 'a', pick(OBJECTS)];
  if (rng.nextDouble() < 0.7) words.push(pick(PREPS), 'the', pick(ATTRS), pick(OBJECTS));
  if (rng.nextDouble() < 0.3) words.push('while', pick(VERBS), 'a', pick(OBJECTS));
  let s = words.join(' ');
  if (rng.nextDouble() < 0.2) s = s.replace(' a ', ', a ');
  return `${s}${rng.nextDouble() < 0.8 ? '.' : ''}`;
}

/** The stages, in run order; names are part of the report format. */
export const METRICS_STAGES = [
  'tokenize',
  'BLEU',
  'ROUGE-L',
  'CIDEr-D',
  'METEOR load',
  'METEOR',
  'evaluateCaptions',
  'COCOeval evaluate',
  'COCOeval accumulate',
  'COCOeval summarize',
] as const;
export type MetricsStage = (typeof METRICS_STAGES)[number];

export interface StageResult {
  name: MetricsStage;
  /** Median wall-clock seconds over the runs. */
  seconds: number;
  /** Median CPU seconds (user + system, all threads) over the runs: steadier than wall time on a busy machine. */
  cpuSeconds: number;
  /** Wall-clock seconds of each run. */
  runs: number[];
  /** Peak resident memory during the stage (MB; see MetricsBenchResult.memory), the largest over the runs. */
  peakRssMb: number;
}

export interface MetricsBenchResult {
  command: 'metrics';
  /** Bumped when a field changes meaning or disappears. */
  schemaVersion: 1;
  machine: {
    cpu: string | undefined;
    cores: number;
    node: string;
    platform: string;
    release: string;
    totalMemoryMb: number;
    /** 1, 5 and 15 minute load averages when the run started (timings on a loaded machine are noisy). */
    loadAverage: number[];
  };
  config: { images: number; refsPerImage: number; repeat: number };
  /**
   * What `peakRssMb` of a stage measures: "stage" = the peak during the stage (Linux: VmHWM after
   * resetting it through /proc/self/clear_refs); "process" = the process peak so far (elsewhere).
   */
  memory: 'stage' | 'process';
  stages: StageResult[];
  captioning: { images: number; refsPerImage: number; corpus: Record<string, number> };
  cocoeval: { images: number; gt: number; detections: number; stats: Record<string, number> };
  /** Peak resident memory of the whole run, MB. */
  peakRssMb: number;
}

/** Peak RSS tracking per stage where the OS allows resetting it (Linux), else the process peak. */
function memoryMeter(): { kind: 'stage' | 'process'; reset: () => void; peakMb: () => number } {
  const status = () => readFileSync('/proc/self/status', 'utf8');
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    if (!/VmHWM:/.test(status())) throw new Error('no VmHWM');
    return {
      kind: 'stage',
      reset: () => writeFileSync('/proc/self/clear_refs', '5'),
      peakMb: () => Math.round(Number(/VmHWM:\s+(\d+)/.exec(status())![1]) / 1024),
    };
  } catch {
    return { kind: 'process', reset: () => {}, peakMb: peakRssMb };
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export interface MetricsBenchOptions {
  images?: number;
  /** Runs per stage (the report gives medians and every run). */
  repeat?: number;
  /** Writes the tokenised captions as pycocoevalcap's scorers take them: {"gts": {id: [refs]}, "res": {id: [cand]}}. */
  exportCaptions?: string;
  log?: (line: string) => void;
}

export function runMetricsBench({
  images = 5000,
  repeat = 1,
  exportCaptions,
  log = (l: string) => process.stderr.write(`${l}\n`),
}: MetricsBenchOptions = {}): MetricsBenchResult {
  if (!Number.isInteger(images) || images < 1) throw new Error(`--images must be a positive integer, got ${images}`);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a positive integer, got ${repeat}`);
  const loadAverage = loadavg().map((x) => Math.round(x * 100) / 100);
  const memory = memoryMeter();
  const stages: StageResult[] = [];
  /** Runs `f` `repeat` times as the stage `name`; returns the last result. */
  const stage = <T>(name: MetricsStage, f: () => T): T => {
    const wall: number[] = [];
    const cpu: number[] = [];
    let peak = 0;
    let out: T | undefined;
    for (let r = 0; r < repeat; r++) {
      memory.reset();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      out = f();
      wall.push((performance.now() - t0) / 1000);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1e6);
      peak = Math.max(peak, memory.peakMb());
    }
    const result = { name, seconds: median(wall), cpuSeconds: median(cpu), runs: wall, peakRssMb: peak };
    stages.push(result);
    log(`  ${name}: ${result.seconds.toFixed(3)} s (cpu ${result.cpuSeconds.toFixed(3)} s), peak ${peak} MB`);
    return out as T;
  };

  const rng = new Generator(2022);
  log(`generating ${images} images x 5 references + 1 candidate ...`);
  const refs: string[][] = [];
  const cands: string[] = [];
  for (let i = 0; i < images; i++) {
    refs.push(Array.from({ length: 5 }, () => caption(rng)));
    cands.push(caption(rng));
  }

  log('captioning ...');
  // Two tokenizer calls (references, then candidates), as pycocoevalcap's COCOEvalCap makes.
  const [tokRefs, tokCands] = stage('tokenize', () => {
    const flat = ptbTokenize(refs.flat());
    return [refs.map((_, i) => flat.slice(5 * i, 5 * i + 5)), ptbTokenize(cands)];
  });
  const items = tokCands.map((candidate, i) => ({ candidate, references: tokRefs[i] }));
  if (exportCaptions) {
    const gts = Object.fromEntries(tokRefs.map((r, i) => [i, r]));
    const res = Object.fromEntries(tokCands.map((c, i) => [i, [c]]));
    writeFileSync(exportCaptions, `${JSON.stringify({ gts, res })}\n`);
    log(`  wrote the tokenised captions to ${exportCaptions}`);
  }
  const b = stage('BLEU', () => bleu(items));
  const rouge = stage('ROUGE-L', () => items.map((it) => rougeL(it.candidate, it.references)));
  const cider = stage('CIDEr-D', () => ciderD(items));
  const resources = stage('METEOR load', () => loadMeteorResources());
  const meteor = stage('METEOR', () => new Meteor(resources).evaluate(items));
  const full = stage('evaluateCaptions', () =>
    evaluateCaptions({
      references: new Map(refs.map((r, i) => [i, r])),
      candidates: new Map(cands.map((c, i) => [i, c])),
    }),
  );
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  const corpus = {
    BLEU_1: b.corpus[0],
    BLEU_2: b.corpus[1],
    BLEU_3: b.corpus[2],
    BLEU_4: b.corpus[3],
    ROUGE_L: mean(rouge),
    CIDEr_D: mean(cider),
    METEOR_no_paraphrase: meteor.corpus,
  };
  for (const k of ['BLEU_4', 'ROUGE_L', 'CIDEr_D'] as const) {
    if (full.corpus[k] !== corpus[k])
      throw new Error(`evaluateCaptions gives ${k} ${full.corpus[k]}, the scorers ${corpus[k]}`);
  }

  log('COCOeval ...');
  const gt: CocoGroundTruth = {
    images: [],
    annotations: [],
    categories: Array.from({ length: 80 }, (_, i) => ({ id: i + 1 })),
  };
  const dets: CocoDetection[] = [];
  let annId = 1;
  for (let img = 1; img <= images; img++) {
    gt.images.push({ id: img, width: 640, height: 480 });
    const boxes: [number, number, number, number, number][] = [];
    const n = 4 + rng.nextInt(7);
    for (let k = 0; k < n; k++) {
      const w = 10 + rng.nextDouble() * 300;
      const h = 10 + rng.nextDouble() * 250;
      const box: [number, number, number, number] = [rng.nextDouble() * (640 - w), rng.nextDouble() * (480 - h), w, h];
      const cat = 1 + rng.nextInt(80);
      boxes.push([...box, cat]);
      const area = w * h * (0.6 + 0.3 * rng.nextDouble());
      gt.annotations.push({
        id: annId++,
        image_id: img,
        category_id: cat,
        bbox: box,
        area,
        iscrowd: rng.nextDouble() < 0.02 ? 1 : 0,
      });
    }
    for (let d = 0; d < 100; d++) {
      const src = boxes[rng.nextInt(boxes.length)];
      const near = rng.nextDouble() < 0.5;
      const j = () => (rng.nextDouble() - 0.5) * 30;
      const bbox: [number, number, number, number] = near
        ? [src[0] + j(), src[1] + j(), Math.max(1, src[2] + j()), Math.max(1, src[3] + j())]
        : [rng.nextDouble() * 600, rng.nextDouble() * 440, 5 + rng.nextDouble() * 200, 5 + rng.nextDouble() * 200];
      dets.push({
        image_id: img,
        category_id: near && rng.nextDouble() < 0.8 ? src[4] : 1 + rng.nextInt(80),
        bbox,
        score: rng.nextDouble(),
      });
    }
  }
  // Each repeat of `evaluate` works on a fresh evaluator (only the last is kept: each holds the
  // per-image matches of 500,000 detections); accumulate and summarize repeat on that one.
  let coco: CocoEval | undefined;
  stage('COCOeval evaluate', () => {
    coco = new CocoEval(gt, dets);
    coco.evaluate();
  });
  const evaluated = coco!;
  stage('COCOeval accumulate', () => evaluated.accumulate());
  const summary = stage('COCOeval summarize', () => evaluated.summarize());
  log(`  AP ${summary.stats.AP.toFixed(4)}`);

  return {
    command: 'metrics',
    schemaVersion: 1,
    machine: {
      cpu: cpus()[0]?.model,
      cores: cpus().length,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      release: release(),
      totalMemoryMb: Math.round(totalmem() / 2 ** 20),
      loadAverage,
    },
    config: { images, refsPerImage: 5, repeat },
    memory: memory.kind,
    stages,
    captioning: { images, refsPerImage: 5, corpus },
    cocoeval: { images, gt: gt.annotations.length, detections: dets.length, stats: summary.stats },
    peakRssMb: peakRssMb(),
  };
}

/** The report as a Markdown table (the CLI's default output). */
export function metricsMarkdown(r: MetricsBenchResult): string {
  const rows = r.stages.map(
    (s) => `| ${s.name} | ${s.seconds.toFixed(3)} | ${s.cpuSeconds.toFixed(3)} | ${s.peakRssMb} |`,
  );
  return (
    `## fiber-bench metrics\n\n${r.config.images} images x ${r.config.refsPerImage} references; COCOeval ` +
    `${r.cocoeval.gt} GT boxes, ${r.cocoeval.detections} detections; ${r.machine.cpu}, ${r.machine.cores} cores, ` +
    `load ${r.machine.loadAverage.join(' ')}\n\n` +
    `| stage | seconds | CPU seconds | peak RSS MB (${r.memory}) |\n|---|---|---|---|\n` +
    `${rows.join('\n')}\n\npeak RSS ${r.peakRssMb} MB`
  );
}
