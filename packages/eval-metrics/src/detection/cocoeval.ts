// COCO detection evaluation equal to pycocotools' COCOeval for iouType "bbox" (metrics-spec §9):
// the same matching, accumulation, interpolation and summary, including crowd IoU, inclusive
// area bounds, stable sorts and numpy's threshold values and summation.
import { MetricInputError, where } from '../errors.js';
import { linspace, npMean, stableArgsort } from '../numpy.js';

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
    areaRng: [[0, 1e5 ** 2], [0, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]],
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

export const COCO_STAT_NAMES = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl'] as const;
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

function validate(gt: CocoGroundTruth, dets: CocoDetection[], files: { gt?: string; dets?: string }): void {
  const g = where(files.gt);
  if (!gt || !Array.isArray(gt.images) || !Array.isArray(gt.annotations) || !Array.isArray(gt.categories)) {
    throw new MetricInputError(`${g}ground truth must have "images", "annotations" and "categories" lists`);
  }
  const imageIds = new Set(gt.images.map((i) => i.id));
  const annIds = new Set<number>();
  gt.annotations.forEach((a, i) => {
    const at = `${g}annotations[${i}] (id ${a?.id})`;
    if (!Number.isFinite(a?.id) || a.id === 0) throw new MetricInputError(`${at}: "id" must be a non-zero number (0 means "unmatched" in COCOeval)`);
    if (annIds.has(a.id)) throw new MetricInputError(`${at}: duplicate annotation id`);
    annIds.add(a.id);
    checkBox(a.bbox, at);
    if (!Number.isFinite(a.area)) throw new MetricInputError(`${at}: "area" is missing or not a number`);
    if (!imageIds.has(a.image_id)) throw new MetricInputError(`${at}: image_id ${a.image_id} is not in "images"`);
  });
  const d = where(files.dets);
  if (!Array.isArray(dets)) throw new MetricInputError(`${d}detections must be a list of {image_id, category_id, bbox, score}`);
  dets.forEach((x, i) => {
    const at = `${d}[${i}]`;
    if (!imageIds.has(x?.image_id)) throw new MetricInputError(`${at}: image_id ${x?.image_id} is not in the ground truth images`);
    if (!Number.isFinite(x.category_id)) throw new MetricInputError(`${at}: "category_id" is missing`);
    checkBox(x.bbox, at);
    if (!Number.isFinite(x.score)) throw new MetricInputError(`${at}: "score" is missing or not a number`);
  });
}

function checkBox(b: unknown, at: string): void {
  if (!Array.isArray(b) || b.length !== 4 || !b.every(Number.isFinite)) throw new MetricInputError(`${at}: "bbox" must be [x, y, w, h] numbers, got ${JSON.stringify(b)}`);
  if (b[2] < 0 || b[3] < 0) throw new MetricInputError(`${at}: "bbox" has a negative width or height: ${JSON.stringify(b)}`);
}

/**
 * COCOeval(cocoGt, cocoGt.loadRes(dets), 'bbox').evaluate(); accumulate(); summarize().
 * `params` overrides the defaults (custom area ranges, maxDets, IoU thresholds).
 */
export function cocoEvaluate(
  gt: CocoGroundTruth,
  dets: CocoDetection[],
  { params: overrides = {}, files = {} }: { params?: Partial<CocoEvalParams>; files?: { gt?: string; dets?: string } } = {},
): CocoEvalResult {
  validate(gt, dets, files);
  const p: CocoEvalParams = { ...defaultCocoParams(gt), ...overrides };
  p.imgIds = [...new Set(p.imgIds)].sort((a, b) => a - b);
  p.catIds = [...new Set(p.catIds)].sort((a, b) => a - b);
  p.maxDets = [...p.maxDets].sort((a, b) => a - b);
  if (p.areaRngLbl.length !== p.areaRng.length) throw new MetricInputError(`params: ${p.areaRng.length} area ranges but ${p.areaRngLbl.length} labels`);
  const T = p.iouThrs.length;
  const R = p.recThrs.length;
  const K = p.catIds.length;
  const A = p.areaRng.length;
  const M = p.maxDets.length;
  const I = p.imgIds.length;
  const maxDet = p.maxDets[M - 1];

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

  // evaluate(): IoUs once per (image, category), then evaluateImg per area range.
  const evalImgs: (EvalImg | null)[] = new Array(K * A * I).fill(null);
  const present: number[][] = Array.from({ length: K }, () => []); // image indices with data, ascending
  for (const key of [...cells.keys()].sort((x, y) => x - y)) {
    const k = Math.floor(key / I);
    const i = key % I;
    present[k].push(i);
    const { g, d: dAll } = cells.get(key)!;
    const d = stableArgsort(dAll.map((x) => -x.score)).slice(0, maxDet).map((j) => dAll[j]);
    const ious = d.map((dd) => g.map((gg) => bboxIou(dd.bbox, gg.bbox, gg.iscrowd)));
    const dtScores = Float64Array.from(d, (x) => x.score);
    const D = d.length;
    const G = g.length;
    p.areaRng.forEach(([lo, hi], a) => {
      const gIgnore = g.map((gg) => (gg.ignore || gg.area < lo || gg.area > hi ? 1 : 0));
      // stable argsort of 0/1 flags: the non-ignored first, each group in file order
      const gOrder = [...gIgnore.keys()].filter((j) => gIgnore[j] === 0).concat([...gIgnore.keys()].filter((j) => gIgnore[j] === 1));
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

  // accumulate()
  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  const pIdx = (t: number, r: number, k: number, a: number, m: number) => ((((t * R + r) * K + k) * A + a) * M + m);
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
            while (j < nd && rc[j] < p.recThrs[r]) j++;
            precision[pIdx(t, r, k, a, m)] = j < nd ? pr[j] : 0;
          }
        }
      });
    }
  }

  // summarize()
  const aOf = (lbl: string) => p.areaRngLbl.indexOf(lbl);
  const mOf = (md: number) => p.maxDets.indexOf(md);
  const summarize = (ap: boolean, iouThr: number | undefined, areaLbl: string, md: number): number => {
    const a = aOf(areaLbl);
    const m = mOf(md);
    if (a < 0 || m < 0) return -1;
    const ts = iouThr === undefined ? [...p.iouThrs.keys()] : p.iouThrs.flatMap((v, i) => (v === iouThr ? [i] : []));
    const vals: number[] = [];
    for (const t of ts) {
      if (ap) {
        for (let r = 0; r < R; r++) for (let k = 0; k < K; k++) vals.push(precision[pIdx(t, r, k, a, m)]);
      } else {
        for (let k = 0; k < K; k++) vals.push(recall[rIdx(t, k, a, m)]);
      }
    }
    const valid = vals.filter((v) => v > -1);
    return valid.length ? npMean(valid) : -1;
  };
  const md = p.maxDets;
  const statsArr = [
    summarize(true, undefined, 'all', 100),
    summarize(true, 0.5, 'all', md[2]),
    summarize(true, 0.75, 'all', md[2]),
    summarize(true, undefined, 'small', md[2]),
    summarize(true, undefined, 'medium', md[2]),
    summarize(true, undefined, 'large', md[2]),
    summarize(false, undefined, 'all', md[0]),
    summarize(false, undefined, 'all', md[1]),
    summarize(false, undefined, 'all', md[2]),
    summarize(false, undefined, 'small', md[2]),
    summarize(false, undefined, 'medium', md[2]),
    summarize(false, undefined, 'large', md[2]),
  ];
  const stats = Object.fromEntries(COCO_STAT_NAMES.map((n, i) => [n, statsArr[i] ?? -1])) as Record<CocoStatName, number>;

  const perCategoryAP: Record<string, number> = {};
  const aAll = aOf('all') >= 0 ? aOf('all') : 0;
  p.catIds.forEach((catId, k) => {
    const vals: number[] = [];
    for (let t = 0; t < T; t++) for (let r = 0; r < R; r++) vals.push(precision[pIdx(t, r, k, aAll, M - 1)]);
    const valid = vals.filter((v) => v > -1);
    perCategoryAP[catId] = valid.length ? npMean(valid) : -1;
  });
  return { params: p, stats, perCategoryAP, precision, recall };
}
