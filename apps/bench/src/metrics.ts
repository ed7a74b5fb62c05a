// `fiber-bench metrics`: @fiber-vl/eval-metrics at COCO scale on synthetic data (seeded):
// captioning on 5,000 images x 5 references (PTB tokenisation, BLEU, ROUGE-L, CIDEr-D, METEOR) and
// COCOeval on 5,000 images with ~7 ground-truth boxes and 100 detections each.
import { cocoEvaluate, evaluateCaptions, type CocoDetection, type CocoGroundTruth } from '@fiber-vl/eval-metrics';
import { loadMeteorResources } from '@fiber-vl/eval-metrics/node';
import { Generator } from '@fiber-vl/tensor-core';
import { peakRssMb } from './measure.js';

const SUBJECTS = 'man woman person child boy girl dog cat horse bird giraffe elephant zebra bear cow sheep surfer skier player couple group'.split(' ');
const ATTRS = 'young old small large brown black white red blue green yellow little big tall wooden grassy snowy busy'.split(' ');
const VERBS = 'riding holding standing sitting walking playing eating looking carrying throwing catching flying jumping lying'.split(' ');
const PREPS = 'on in near next to under behind beside with at across over'.split(' ');
const OBJECTS = 'wave surfboard frisbee ball street field table bench beach road plate pizza kite umbrella skateboard bus train clock sign tree water snow grass fence'.split(' ');

function caption(rng: Generator): string {
  const pick = <T>(xs: T[]) => xs[rng.nextInt(xs.length)];
  const words = ['A', pick(ATTRS), pick(SUBJECTS), pick(VERBS), 'a', pick(OBJECTS)];
  if (rng.nextDouble() < 0.7) words.push(pick(PREPS), 'the', pick(ATTRS), pick(OBJECTS));
  if (rng.nextDouble() < 0.3) words.push('while', pick(VERBS), 'a', pick(OBJECTS));
  let s = words.join(' ');
  if (rng.nextDouble() < 0.2) s = s.replace(' a ', ', a ');
  return `${s}${rng.nextDouble() < 0.8 ? '.' : ''}`;
}

export interface MetricsBenchResult {
  captioning: { images: number; refsPerImage: number; seconds: Record<string, number>; totalSeconds: number; corpus: Record<string, number> };
  cocoeval: { images: number; gt: number; detections: number; seconds: number; AP: number };
  peakRssMb: number;
}

export function runMetricsBench({ images = 5000, log = (l: string) => process.stderr.write(`${l}\n`) } = {}): MetricsBenchResult {
  const rng = new Generator(2022);
  log(`generating ${images} images x 5 references + 1 candidate ...`);
  const refs = new Map<number, string[]>();
  const cands = new Map<number, string>();
  for (let i = 0; i < images; i++) {
    refs.set(i, Array.from({ length: 5 }, () => caption(rng)));
    cands.set(i, caption(rng));
  }
  const seconds: Record<string, number> = {};
  const time = <T>(name: string, f: () => T): T => {
    const t = performance.now();
    const out = f();
    seconds[name] = (performance.now() - t) / 1000;
    log(`  ${name}: ${seconds[name].toFixed(2)} s`);
    return out;
  };
  log('captioning ...');
  const meteor = time('load Meteor resources', () => loadMeteorResources());
  const base = time('tokenize + BLEU + ROUGE-L + CIDEr-D', () => evaluateCaptions({ references: refs, candidates: cands }));
  const tokenized = base.tokenized;
  const withMeteor = time('METEOR (on tokenized)', () =>
    evaluateCaptions({
      references: new Map([...tokenized].map(([k, v]) => [k, v.references])),
      candidates: new Map([...tokenized].map(([k, v]) => [k, v.candidate])),
      tokenized: true,
      meteor,
    }),
  );
  const totalSeconds = Object.values(seconds).reduce((a, b) => a + b, 0);

  log('COCOeval ...');
  const gt: CocoGroundTruth = { images: [], annotations: [], categories: Array.from({ length: 80 }, (_, i) => ({ id: i + 1 })) };
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
      gt.annotations.push({ id: annId++, image_id: img, category_id: cat, bbox: box, area: w * h * (0.6 + 0.3 * rng.nextDouble()), iscrowd: rng.nextDouble() < 0.02 ? 1 : 0 });
    }
    for (let d = 0; d < 100; d++) {
      const src = boxes[rng.nextInt(boxes.length)];
      const near = rng.nextDouble() < 0.5;
      const j = () => (rng.nextDouble() - 0.5) * 30;
      const bbox: [number, number, number, number] = near ? [src[0] + j(), src[1] + j(), Math.max(1, src[2] + j()), Math.max(1, src[3] + j())] : [rng.nextDouble() * 600, rng.nextDouble() * 440, 5 + rng.nextDouble() * 200, 5 + rng.nextDouble() * 200];
      dets.push({ image_id: img, category_id: near && rng.nextDouble() < 0.8 ? src[4] : 1 + rng.nextInt(80), bbox, score: rng.nextDouble() });
    }
  }
  const t = performance.now();
  const coco = cocoEvaluate(gt, dets);
  const cocoSeconds = (performance.now() - t) / 1000;
  log(`  COCOeval: ${cocoSeconds.toFixed(2)} s (AP ${coco.stats.AP.toFixed(4)})`);
  return {
    captioning: { images, refsPerImage: 5, seconds, totalSeconds, corpus: { ...base.corpus, METEOR_no_paraphrase: withMeteor.corpus.METEOR_no_paraphrase! } },
    cocoeval: { images, gt: gt.annotations.length, detections: dets.length, seconds: cocoSeconds, AP: coco.stats.AP },
    peakRssMb: peakRssMb(),
  };
}
