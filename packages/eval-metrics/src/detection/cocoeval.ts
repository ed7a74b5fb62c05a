// COCO detection evaluation equal to pycocotools' COCOeval for iouType "bbox" (metrics-spec §9):
// the same matching, accumulation, interpolation and summary, including crowd IoU, inclusive
// area bounds, stable sorts and numpy's threshold values and summation.
import { MetricInputError, show, where } from '../errors.js';
import { linspace, npSum, stableArgsort } from '../numpy.js';

export interface CocoImage {
  id: number;
  [k: string]: unknown;
}
export interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  area: number;
  iscrowd?: number | boolean;
  [k: string]: unknown;
}
export interface CocoCategory {
  id: number;
  name?: string;
  [k: string]: unknown;
}
export interface CocoGroundTruth {
  images: CocoImage[];
  annotations: CocoAnnotation[];
  categories: CocoCategory[];
  [k: string]: unknown;
}
export interface CocoDetection {
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  score: number;
}

export interface CocoEvalParams {
  imgIds: number[];
  catIds: number[];
  iouThrs: number[];
  recThrs: number[];
  maxDets: number[];
  areaRng: [number, number][];
  areaRngLbl: string[];
}

/** pycocotools' default Params for iouType 'bbox'. */
export function defaultCocoParams(gt: CocoGroundTruth): CocoEvalParams {
  return {
    imgIds: [...new Set(gt.images.map((i) => i.id))].sort((a, b) => a - b),
    catIds: [...new Set(gt.categories.map((c) => c.id))].sort((a, b) => a - b),
    iouThrs: linspace(0.5, 0.95, Math.round((0.95 - 0.5) / 0.05) + 1),
    recThrs: linspace(0.0, 1.0, Math.round((1.0 - 0.0) / 0.01) + 1),
    maxDets: [1, 10, 100],
    areaRng: [
      [0, 1e5 ** 2],
      [0, 32 ** 2],
      [32 ** 2, 96 ** 2],
      [96 ** 2, 1e5 ** 2],
    ],
    areaRngLbl: ['all', 'small', 'medium', 'large'],
  };
}

interface Det {
  id: number;
  bbox: number[];
  score: number;
  area: number;
}
interface Gt {
  id: number;
  bbox: number[];
  area: number;
  iscrowd: boolean;
  ignore: boolean;
}
/** evaluateImg's result, kept compact: flat [T x D] flags, scores shared by the area ranges. */
interface EvalImg {
  D: number;
  dtMatched: Uint8Array; // [t * D + d]: matched to a ground truth at threshold t
  dtIgnore: Uint8Array; // [t * D + d]
  dtScores: Float64Array;
  /** Number of ground truths not ignored in this area range. */
  numGt: number;
}

export const COCO_STAT_NAMES = [
  'AP',
  'AP50',
  'AP75',
  'APs',
  'APm',
  'APl',
  'AR1',
  'AR10',
  'AR100',
  'ARs',
  'ARm',
  'ARl',
] as const;
export type CocoStatName = (typeof COCO_STAT_NAMES)[number];

export interface CocoEvalResult {
  params: CocoEvalParams;
  /** The 12 summarize() numbers (-1 = undefined). */
  stats: Record<CocoStatName, number>;
  /** Mean of precision[:, :, k, area all, last maxDet] over entries > -1, per category id (-1 if none). */
  perCategoryAP: Record<string, number>;
  /** precision[T][R][K][A][M], flattened row-major; -1 where undefined. */
  precision: Float64Array;
  /** recall[T][K][A][M], flattened row-major. */
  recall: Float64Array;
}

/** Box IoU as maskApi.c bbIou: no +1; for a crowd ground truth the union is the detection's area. */
function bboxIou(d: number[], g: number[], crowd: boolean): number {
  const w = Math.min(d[2] + d[0], g[2] + g[0]) - Math.max(d[0], g[0]);
  if (w <= 0) return 0;
  const h = Math.min(d[3] + d[1], g[3] + g[1]) - Math.max(d[1], g[1]);
  if (h <= 0) return 0;
  const i = w * h;
  const da = d[2] * d[3];
  const u = crowd ? da : da + g[2] * g[3] - i;
  return i / u;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Checks the ground truth and detections as pycocotools would use them; errors name the file, entry and field. */
function validate(gt: CocoGroundTruth, dets: CocoDetection[], files: { gt?: string; dets?: string }): void {
  const g = where(files.gt);
  if (!isObject(gt)) throw new MetricInputError(`${g}ground truth must be a COCO instances object, got ${show(gt)}`);
  for (const key of ['images', 'annotations', 'categories'] as const) {
    if (!Array.isArray(gt[key])) throw new MetricInputError(`${g}"${key}" must be a list, got ${show(gt[key])}`);
  }
  const imageIds = new Set<number>();
  gt.images.forEach((im: unknown, i) => {
    if (!isObject(im) || !Number.isFinite(im.id))
      throw new MetricInputError(`${g}images[${i}]: "id" is missing or not a number`);
    if (imageIds.has(im.id as number)) throw new MetricInputError(`${g}images[${i}]: duplicate image id ${im.id}`);
    imageIds.add(im.id as number);
  });
  const catIds = new Set<number>();
  gt.categories.forEach((c: unknown, i) => {
    if (!isObject(c) || !Number.isFinite(c.id))
      throw new MetricInputError(`${g}categories[${i}]: "id" is missing or not a number`);
    if (catIds.has(c.id as number)) throw new MetricInputError(`${g}categories[${i}]: duplicate category id ${c.id}`);
    catIds.add(c.id as number);
  });
  const annIds = new Set<number>();
  gt.annotations.forEach((a: unknown, i) => {
    if (!isObject(a)) throw new MetricInputError(`${g}annotations[${i}]: not an object (${show(a)})`);
    const at = `${g}annotations[${i}] (id ${a.id})`;
    if (!Number.isFinite(a.id) || a.id === 0) {
      throw new MetricInputError(`${at}: "id" must be a non-zero number (0 means "unmatched" in COCOeval)`);
    }
    if (annIds.has(a.id as number)) throw new MetricInputError(`${at}: duplicate annotation id`);
    annIds.add(a.id as number);
    if (!imageIds.has(a.image_id as number))
      throw new MetricInputError(`${at}: image_id ${show(a.image_id)} is not in "images"`);
    if (!Number.isFinite(a.category_id)) throw new MetricInputError(`${at}: "category_id" is missing or not a number`);
    checkBox(a.bbox, at);
    if (!Number.isFinite(a.area) || (a.area as number) < 0) {
      throw new MetricInputError(`${at}: "area" must be a number >= 0, got ${show(a.area)}`);
    }
    if (a.iscrowd !== undefined && typeof a.iscrowd !== 'number' && typeof a.iscrowd !== 'boolean') {
      throw new MetricInputError(`${at}: "iscrowd" must be 0, 1 or a boolean, got ${show(a.iscrowd)}`);
    }
  });
  const d = where(files.dets);
  if (!Array.isArray(dets))
    throw new MetricInputError(`${d}detections must be a list of {image_id, category_id, bbox, score}`);
  dets.forEach((x: unknown, i) => {
    const at = `${d}[${i}]`;
    if (!isObject(x)) throw new MetricInputError(`${at}: not an object (${show(x)})`);
    if (!imageIds.has(x.image_id as number)) {
      throw new MetricInputError(`${at}: image_id ${show(x.image_id)} is not in the ground truth images`);
    }
    if (!Number.isFinite(x.category_id)) throw new MetricInputError(`${at}: "category_id" is missing or not a number`);
    checkBox(x.bbox, at);
    if (!Number.isFinite(x.score)) throw new MetricInputError(`${at}: "score" is missing or not a number`);
  });
}

function checkBox(b: unknown, at: string): void {
  if (!Array.isArray(b) || b.length !== 4 || !b.every(Number.isFinite)) {
    throw new MetricInputError(`${at}: "bbox" must be [x, y, w, h] numbers, got ${show(b)}`);
  }
  if (b[2] < 0 || b[3] < 0) throw new MetricInputError(`${at}: "bbox" has a negative width or height: ${show(b)}`);
}

function checkParams(p: CocoEvalParams): void {
  const list = (name: string, xs: unknown, ok: (x: number) => boolean) => {
    if (!Array.isArray(xs) || xs.length === 0 || !xs.every((x) => typeof x === 'number' && ok(x))) {
      throw new MetricInputError(`params: "${name}" must be a non-empty list of valid numbers, got ${show(xs)}`);
    }
  };
  list('iouThrs', p.iouThrs, (x) => x >= 0 && x <= 1);
  list('recThrs', p.recThrs, (x) => x >= 0 && x <= 1);
  list('maxDets', p.maxDets, (x) => Number.isInteger(x) && x > 0);
  if (
    !Array.isArray(p.areaRng) ||
    p.areaRng.some((r) => !Array.isArray(r) || r.length !== 2 || !r.every(Number.isFinite))
  ) {
    throw new MetricInputError(`params: "areaRng" must be a list of [lo, hi] numbers, got ${show(p.areaRng)}`);
  }
  if (!Array.isArray(p.areaRngLbl) || p.areaRngLbl.length !== p.areaRng.length) {
    throw new MetricInputError(`params: ${p.areaRng.length} area ranges but ${show(p.areaRngLbl)} labels`);
  }
}

/**
 * pycocotools' COCOeval for iouType "bbox", stage by stage as in Python:
 * `const E = new CocoEval(gt, dets); E.evaluate(); E.accumulate(); const r = E.summarize();`.
 * The constructor checks the inputs (MetricInputError naming the file, entry and field) and does
 * loadRes's bookkeeping; `params` overrides the defaults (custom area ranges, maxDets, thresholds).
 */
export class CocoEval {
  readonly params: CocoEvalParams;
  private readonly gt: CocoGroundTruth;
  private readonly dets: CocoDetection[];
  /** evaluateImg results, [category][area range][image] flattened; null where the pair has no data. */
  private evalImgs: (EvalImg | null)[] = [];
  /** Per category, the image indices with data, ascending. */
  private present: number[][] = [];
  private evaluated = false;
  private precision?: Float64Array;
  private recall?: Float64Array;

  constructor(
    gt: CocoGroundTruth,
    dets: CocoDetection[],
    {
      params: overrides = {},
      files = {},
    }: { params?: Partial<CocoEvalParams>; files?: { gt?: string; dets?: string } } = {},
  ) {
    validate(gt, dets, files);
    const p: CocoEvalParams = { ...defaultCocoParams(gt), ...overrides };
    checkParams(p);
    p.imgIds = [...new Set(p.imgIds)].sort((a, b) => a - b);
    p.catIds = [...new Set(p.catIds)].sort((a, b) => a - b);
    p.maxDets = [...p.maxDets].sort((a, b) => a - b);
    this.params = p;
    this.gt = gt;
    this.dets = dets;
  }

  /** Matches detections to ground truths per image, category and area range (COCOeval.evaluate). */
  evaluate(): void {
    const { gt, dets, params: p } = this;
    const T = p.iouThrs.length;
    const K = p.catIds.length;
    const A = p.areaRng.length;
    const I = p.imgIds.length;
    const maxDet = p.maxDets[p.maxDets.length - 1];

    // _prepare: per (category, image) lists in file order, keyed by index (only pairs with data).
    const imgIndex = new Map(p.imgIds.map((id, i) => [id, i]));
    const catIndex = new Map(p.catIds.map((id, k) => [id, k]));
    const cells = new Map<number, { g: Gt[]; d: Det[] }>(); // key k * I + i
    const cell = (k: number, i: number) => {
      const key = k * I + i;
      let c = cells.get(key);
      if (!c) cells.set(key, (c = { g: [], d: [] }));
      return c;
    };
    for (const a of gt.annotations) {
      const i = imgIndex.get(a.image_id);
      const k = catIndex.get(a.category_id);
      if (i === undefined || k === undefined) continue;
      const crowd = !!a.iscrowd;
      cell(k, i).g.push({ id: a.id, bbox: a.bbox, area: a.area, iscrowd: crowd, ignore: crowd });
    }
    dets.forEach((d, n) => {
      const i = imgIndex.get(d.image_id);
      const k = catIndex.get(d.category_id);
      if (i === undefined || k === undefined) return;
      cell(k, i).d.push({ id: n + 1, bbox: d.bbox, score: d.score, area: d.bbox[2] * d.bbox[3] });
    });

    // IoUs once per (image, category), then evaluateImg per area range.
    const evalImgs: (EvalImg | null)[] = new Array(K * A * I).fill(null);
    const present: number[][] = Array.from({ length: K }, () => []);
    for (const key of [...cells.keys()].sort((x, y) => x - y)) {
      const k = Math.floor(key / I);
      const i = key % I;
      present[k].push(i);
      const { g, d: dAll } = cells.get(key)!;
      const d = stableArgsort(dAll.map((x) => -x.score))
        .slice(0, maxDet)
        .map((j) => dAll[j]);
      const ious = d.map((dd) => g.map((gg) => bboxIou(dd.bbox, gg.bbox, gg.iscrowd)));
      const dtScores = Float64Array.from(d, (x) => x.score);
      const D = d.length;
      const G = g.length;
      p.areaRng.forEach(([lo, hi], a) => {
        const gIgnore = g.map((gg) => (gg.ignore || gg.area < lo || gg.area > hi ? 1 : 0));
        // stable argsort of 0/1 flags: the non-ignored first, each group in file order
        const gOrder = [...gIgnore.keys()]
          .filter((j) => gIgnore[j] === 0)
          .concat([...gIgnore.keys()].filter((j) => gIgnore[j] === 1));
        const gs = gOrder.map((j) => g[j]);
        const gtIg = gOrder.map((j) => gIgnore[j]);
        const gtm = new Float64Array(T * G); // matched detection id per (threshold, gt)
        const dtMatched = new Uint8Array(T * D);
        const dtIgnore = new Uint8Array(T * D);
        if (D > 0 && G > 0) {
          for (let ti = 0; ti < T; ti++) {
            const t = p.iouThrs[ti];
            for (let di = 0; di < D; di++) {
              let best = Math.min(t, 1 - 1e-10);
              let m = -1;
              for (let gi = 0; gi < G; gi++) {
                if (gtm[ti * G + gi] > 0 && !gs[gi].iscrowd) continue;
                if (m > -1 && gtIg[m] === 0 && gtIg[gi] === 1) break;
                const iou = ious[di][gOrder[gi]];
                if (iou < best) continue;
                best = iou;
                m = gi;
              }
              if (m === -1) continue;
              dtIgnore[ti * D + di] = gtIg[m];
              dtMatched[ti * D + di] = 1;
              gtm[ti * G + m] = d[di].id;
            }
          }
        }
        for (let di = 0; di < D; di++) {
          if (d[di].area >= lo && d[di].area <= hi) continue;
          for (let ti = 0; ti < T; ti++) if (!dtMatched[ti * D + di]) dtIgnore[ti * D + di] = 1;
        }
        evalImgs[(k * A + a) * I + i] = { D, dtMatched, dtIgnore, dtScores, numGt: gtIg.filter((v) => v === 0).length };
      });
    }
    this.evalImgs = evalImgs;
    this.present = present;
    this.evaluated = true;
  }

  /** Precision at the recall thresholds and the final recall, per threshold, category, area, maxDet (accumulate). */
  accumulate(): void {
    if (!this.evaluated) this.evaluate();
    const { params: p, evalImgs, present } = this;
    const T = p.iouThrs.length;
    const R = p.recThrs.length;
    const K = p.catIds.length;
    const A = p.areaRng.length;
    const M = p.maxDets.length;
    const I = p.imgIds.length;
    const precision = new Float64Array(T * R * K * A * M).fill(-1);
    const recall = new Float64Array(T * K * A * M).fill(-1);
    const pIdx = (t: number, r: number, k: number, a: number, m: number) => (((t * R + r) * K + k) * A + a) * M + m;
    const rIdx = (t: number, k: number, a: number, m: number) => ((t * K + k) * A + a) * M + m;
    const eps = 2.220446049250313e-16; // np.spacing(1)
    for (let k = 0; k < K; k++) {
      for (let a = 0; a < A; a++) {
        p.maxDets.forEach((md, m) => {
          const E: EvalImg[] = [];
          for (const i of present[k]) {
            const e = evalImgs[(k * A + a) * I + i];
            if (e) E.push(e);
          }
          if (E.length === 0) return;
          let nd = 0;
          for (const e of E) nd += Math.min(md, e.D);
          const negScores = new Float64Array(nd);
          const srcImg = new Int32Array(nd);
          const srcDet = new Int32Array(nd);
          let pos = 0;
          E.forEach((e, ei) => {
            const n = Math.min(md, e.D);
            for (let j = 0; j < n; j++, pos++) {
              negScores[pos] = -e.dtScores[j];
              srcImg[pos] = ei;
              srcDet[pos] = j;
            }
          });
          const order = stableArgsort(negScores);
          let npig = 0;
          for (const e of E) npig += e.numGt;
          if (npig === 0) return;
          const rc = new Float64Array(nd);
          const pr = new Float64Array(nd);
          for (let t = 0; t < T; t++) {
            let tp = 0;
            let fp = 0;
            for (let j = 0; j < nd; j++) {
              const e = E[srcImg[order[j]]];
              const at = t * e.D + srcDet[order[j]];
              const matched = e.dtMatched[at] !== 0;
              const ignored = e.dtIgnore[at] !== 0;
              if (matched && !ignored) tp++;
              if (!matched && !ignored) fp++;
              rc[j] = tp / npig;
              pr[j] = tp / (fp + tp + eps);
            }
            recall[rIdx(t, k, a, m)] = nd ? rc[nd - 1] : 0;
            for (let j = nd - 1; j > 0; j--) if (pr[j] > pr[j - 1]) pr[j - 1] = pr[j];
            // searchsorted(rc, recThrs, 'left'); past the end -> precision 0
            let j = 0;
            for (let r = 0; r < R; r++) {
              // rc rises: one forward scan serves sorted thresholds; an unsorted one starts over
              if (r > 0 && p.recThrs[r] < p.recThrs[r - 1]) j = 0;
              while (j < nd && rc[j] < p.recThrs[r]) j++;
              precision[pIdx(t, r, k, a, m)] = j < nd ? pr[j] : 0;
            }
          }
        });
      }
    }
    this.precision = precision;
    this.recall = recall;
  }

  /**
   * The 12 numbers of COCOeval.summarize and the per-category AP: means over the entries > -1, in
   * numpy's element order and pairwise summation, gathered into one reused buffer.
   */
  summarize(): CocoEvalResult {
    if (!this.precision || !this.recall) this.accumulate();
    const precision = this.precision!;
    const recall = this.recall!;
    const p = this.params;
    const T = p.iouThrs.length;
    const R = p.recThrs.length;
    const K = p.catIds.length;
    const A = p.areaRng.length;
    const M = p.maxDets.length;
    const buf = new Float64Array(Math.max(T * R * K, 1));
    const meanValid = (n: number) => (n ? npSum(buf, 0, n) / n : -1);
    // s[s > -1] of precision[t, :, :, a, m] for the chosen t (all when undefined), in C order (t, r, k)
    const stride = A * M; // between neighbouring categories
    // categories k0 .. k1 - 1
    const apMean = (ts: number[], a: number, m: number, k0 = 0, k1 = K) => {
      let n = 0;
      for (const t of ts) {
        for (let r = 0; r < R; r++) {
          const end = ((t * R + r) * K + k1) * stride + a * M + m;
          for (let at = ((t * R + r) * K + k0) * stride + a * M + m; at < end; at += stride) {
            const v = precision[at];
            if (v > -1) buf[n++] = v;
          }
        }
      }
      return meanValid(n);
    };
    const arMean = (ts: number[], a: number, m: number) => {
      let n = 0;
      for (const t of ts) {
        const end = (t * K + K) * stride + a * M + m;
        for (let at = t * K * stride + a * M + m; at < end; at += stride) {
          const v = recall[at];
          if (v > -1) buf[n++] = v;
        }
      }
      return meanValid(n);
    };
    const allT = range(T);
    const stat = (ap: boolean, iouThr: number | undefined, areaLbl: string, md: number): number => {
      const a = p.areaRngLbl.indexOf(areaLbl);
      const m = p.maxDets.indexOf(md);
      if (a < 0 || m < 0) return -1;
      const ts = iouThr === undefined ? allT : allT.filter((t) => p.iouThrs[t] === iouThr);
      return ap ? apMean(ts, a, m) : arMean(ts, a, m);
    };
    const md = p.maxDets;
    const statsArr = [
      stat(true, undefined, 'all', 100),
      stat(true, 0.5, 'all', md[2]),
      stat(true, 0.75, 'all', md[2]),
      stat(true, undefined, 'small', md[2]),
      stat(true, undefined, 'medium', md[2]),
      stat(true, undefined, 'large', md[2]),
      stat(false, undefined, 'all', md[0]),
      stat(false, undefined, 'all', md[1]),
      stat(false, undefined, 'all', md[2]),
      stat(false, undefined, 'small', md[2]),
      stat(false, undefined, 'medium', md[2]),
      stat(false, undefined, 'large', md[2]),
    ];
    const stats = Object.fromEntries(COCO_STAT_NAMES.map((n, i) => [n, statsArr[i] ?? -1])) as Record<
      CocoStatName,
      number
    >;
    const perCategoryAP: Record<string, number> = {};
    const aAll = Math.max(0, p.areaRngLbl.indexOf('all'));
    p.catIds.forEach((catId, k) => {
      perCategoryAP[catId] = apMean(allT, aAll, M - 1, k, k + 1);
    });
    return { params: p, stats, perCategoryAP, precision, recall };
  }
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** COCOeval(cocoGt, cocoGt.loadRes(dets), 'bbox').evaluate(); accumulate(); summarize(). */
export function cocoEvaluate(
  gt: CocoGroundTruth,
  dets: CocoDetection[],
  options: { params?: Partial<CocoEvalParams>; files?: { gt?: string; dets?: string } } = {},
): CocoEvalResult {
  const e = new CocoEval(gt, dets, options);
  e.evaluate();
  e.accumulate();
  return e.summarize();
}
