// Box operations of maskrcnn_benchmark on plain xyxy arrays ([N, 4] flattened), with its +1 pixel
// convention: a box [x1, y1, x2, y2] covers (x2 - x1 + 1) x (y2 - y1 + 1) pixels.

/** Area with the +1 convention ((x2 - x1 + 1)(y2 - y1 + 1)); unclamped, as `BoxList.area`. */
export function boxArea(boxes: ArrayLike<number>, i: number): number {
  return (boxes[4 * i + 2] - boxes[4 * i] + 1) * (boxes[4 * i + 3] - boxes[4 * i + 1] + 1);
}

function checkBoxes(what: string, boxes: ArrayLike<number>): number {
  if (boxes.length % 4 !== 0)
    throw new RangeError(`${what}: ${boxes.length} values is not a whole number of boxes (4 each)`);
  return boxes.length / 4;
}

/** IoU of box i of `a` and box j of `b` with the +1 convention (`boxlist_iou`, the GPU ml_nms kernel). */
export function pairIou(a: ArrayLike<number>, i: number, b: ArrayLike<number>, j: number): number {
  const w = Math.max(Math.min(a[4 * i + 2], b[4 * j + 2]) - Math.max(a[4 * i], b[4 * j]) + 1, 0);
  const h = Math.max(Math.min(a[4 * i + 3], b[4 * j + 3]) - Math.max(a[4 * i + 1], b[4 * j + 1]) + 1, 0);
  const inter = w * h;
  return inter / (boxArea(a, i) + boxArea(b, j) - inter);
}

const f = Math.fround;

/** `devIoU` of the GPU ml_nms kernel: the same IoU, every step rounded to float32 as the kernel computes it. */
export function pairIouFloat32(a: ArrayLike<number>, i: number, b: ArrayLike<number>, j: number): number {
  const w = Math.max(f(f(Math.min(a[4 * i + 2], b[4 * j + 2]) - Math.max(a[4 * i], b[4 * j])) + 1), 0);
  const h = Math.max(f(f(Math.min(a[4 * i + 3], b[4 * j + 3]) - Math.max(a[4 * i + 1], b[4 * j + 1])) + 1), 0);
  const inter = f(w * h);
  const sa = f(f(f(a[4 * i + 2] - a[4 * i]) + 1) * f(f(a[4 * i + 3] - a[4 * i + 1]) + 1));
  const sb = f(f(f(b[4 * j + 2] - b[4 * j]) + 1) * f(f(b[4 * j + 3] - b[4 * j + 1]) + 1));
  return f(inter / f(f(sa + sb) - inter));
}

/** `boxlist_iou`: the [N, M] IoU matrix, row-major. */
export function boxIou(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const n = checkBoxes('boxIou', a);
  const m = checkBoxes('boxIou', b);
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) out[i * m + j] = pairIou(a, i, b, j);
  return out;
}

/** `BoxList.clip_to_image(remove_empty=False)`: every coordinate into [0, W - 1] x [0, H - 1]. */
export function clipBoxes(boxes: ArrayLike<number>, width: number, height: number): Float32Array {
  checkBoxes('clipBoxes', boxes);
  if (!(width > 0 && height > 0)) throw new RangeError(`clipBoxes: image size ${width}x${height} must be positive`);
  const out = Float32Array.from(boxes);
  for (let i = 0; i < out.length; i++) {
    const max = (i % 2 === 0 ? width : height) - 1;
    out[i] = Math.min(Math.max(out[i], 0), max);
  }
  return out;
}

/**
 * `remove_small_boxes`: indices of the boxes whose xywh width and height (x2 - x1 + 1, y2 - y1 + 1)
 * are both >= minSize. NaN boxes fail the comparison and are dropped, as in torch.
 */
export function keepLargeBoxes(boxes: ArrayLike<number>, minSize: number): number[] {
  const n = checkBoxes('keepLargeBoxes', boxes);
  const keep: number[] = [];
  for (let i = 0; i < n; i++) {
    if (boxes[4 * i + 2] - boxes[4 * i] + 1 >= minSize && boxes[4 * i + 3] - boxes[4 * i + 1] + 1 >= minSize)
      keep.push(i);
  }
  return keep;
}

/** Indices sorting `scores` descending; equal scores keep their input order (a stable sort). */
export function argsortDescending(scores: ArrayLike<number>): number[] {
  return Array.from(scores, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
}

/**
 * The GPU `ml_nms` (maskrcnn_benchmark `csrc/cuda/ml_nms.cu`): greedy NMS in descending score order
 * where a box suppresses later boxes of the same label whose IoU (+1 areas, float32 arithmetic) is
 * strictly greater than `threshold` (as float32). Returns the kept indices in ascending index order,
 * as the kernel's final sort does. Equal scores are visited in input order (the CUDA sort leaves
 * their order unspecified). `threshold <= 0` keeps everything (`boxlist_ml_nms` returns early).
 */
export function multiLabelNms(
  boxes: ArrayLike<number>,
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  threshold: number,
): number[] {
  const n = checkBoxes('multiLabelNms', boxes);
  if (scores.length !== n || labels.length !== n) {
    throw new RangeError(`multiLabelNms: ${n} boxes but ${scores.length} scores and ${labels.length} labels`);
  }
  if (typeof threshold !== 'number' || Number.isNaN(threshold))
    throw new RangeError(`multiLabelNms: threshold must be a number (<= 0 keeps all), got ${String(threshold)}`);
  if (threshold <= 0) return Array.from({ length: n }, (_, i) => i);
  const thr = f(threshold);
  const order = argsortDescending(scores);
  const removed = new Uint8Array(n);
  const keep: number[] = [];
  for (let a = 0; a < n; a++) {
    const i = order[a];
    if (removed[i]) continue;
    keep.push(i);
    for (let b = a + 1; b < n; b++) {
      const j = order[b];
      if (!removed[j] && labels[j] === labels[i] && pairIouFloat32(boxes, i, boxes, j) > thr) removed[j] = 1;
    }
  }
  return keep.sort((x, y) => x - y);
}

/**
 * `select_over_all_levels`' cap on detections per image: when more than `max` remain, keep every
 * detection whose score is >= the (n - max + 1)-th smallest score (torch.kthvalue). Ties at that
 * score are all kept, so the result can hold more than `max`. Returns indices in input order.
 * `max <= 0` keeps everything.
 */
export function keepTopScores(scores: ArrayLike<number>, max: number): number[] {
  if (!Number.isInteger(max))
    throw new RangeError(`keepTopScores: max must be an integer (<= 0 keeps all), got ${String(max)}`);
  const n = scores.length;
  const all = Array.from({ length: n }, (_, i) => i);
  if (!(n > max && max > 0)) return all;
  const sorted = Float64Array.from(scores).sort();
  const kth = sorted[n - max];
  return all.filter((i) => scores[i] >= kth);
}
