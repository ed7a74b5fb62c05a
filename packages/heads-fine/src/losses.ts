// Training losses of the fine-grained detector (`ATSSLossComputation.__call__` with the
// dot-product token loss): token sigmoid focal loss, GIoU weighted by centerness targets x
// REG_LOSS_WEIGHT, centerness BCE, and the class-logit focal loss x 0. Differentiable in the head
// outputs; the targets come from `atssTargets` (plain arrays).
import { bceWithLogits, sigmoidFocalLoss, tf, tidyOutput } from '@fiber-vl/tensor-core';
import { type AtssConfig, type AtssTargets, type FineTarget, FIBER_ATSS, atssTargets, concatLevels } from './atss.js';
import { decodeBoxesTensor } from './box-coder.js';

export interface AtssLossConfig extends AtssConfig {
  /** Token focal loss (`FUSE_CONFIG.TOKEN_ALPHA`, `TOKEN_GAMMA`). */
  tokenAlpha: number;
  tokenGamma: number;
  /** Class-logit focal loss (`FOCAL.LOSS_ALPHA`, `LOSS_GAMMA`); its weight is 0 in FIBER. */
  clsAlpha: number;
  clsGamma: number;
  /** `ATSS.REG_LOSS_WEIGHT`. */
  regLossWeight: number;
  /** `FUSE_CONFIG.DOT_PRODUCT_TOKEN_LOSS_WEIGHT`. */
  tokenLossWeight: number;
  /** 0: `USE_CLASSIFICATION_LOSS False` keeps the class-logit loss in the graph at weight 0. */
  clsLossWeight: number;
  /**
   * Not in FIBER: the weight of an image-level label's positive (`FineTarget.imageLabels`) in the
   * token loss, where a box's positives weigh 1. Unused without image labels.
   */
  imageLabelWeight: number;
}

export const FIBER_ATSS_LOSS: Readonly<AtssLossConfig> = Object.freeze({
  ...FIBER_ATSS,
  tokenAlpha: 0.25,
  tokenGamma: 2,
  clsAlpha: 0.25,
  clsGamma: 2,
  regLossWeight: 2,
  tokenLossWeight: 1,
  clsLossWeight: 0,
  imageLabelWeight: 1,
});

/**
 * Token sigmoid focal loss (`token_sigmoid_binary_focal_loss`, summed): BCE(logits, targets) *
 * (1 - p_t)^gamma * alpha_t over the elements whose text mask is 1. logits, targets [B, A, T];
 * textMask [B, T]; `weight` [B, A, T] (not in FIBER) multiplies each element.
 */
export function tokenSigmoidFocalLoss(
  logits: tf.Tensor,
  targets: tf.Tensor,
  textMask: tf.Tensor,
  { alpha = 0.25, gamma = 2, weight }: { alpha?: number; gamma?: number; weight?: tf.Tensor } = {},
): tf.Tensor {
  if (
    logits.rank !== 3 ||
    targets.shape.join() !== logits.shape.join() ||
    textMask.shape.join() !== [logits.shape[0], logits.shape[2]].join() ||
    (weight && weight.shape.join() !== logits.shape.join())
  ) {
    throw new RangeError(
      `tokenSigmoidFocalLoss: logits [${logits.shape.join(', ')}] and targets [${targets.shape.join(', ')}] ` +
        `must be [B, A, T]${weight ? `, as the weight [${weight.shape.join(', ')}],` : ''} and the text mask [${textMask.shape.join(', ')}] [B, T]`,
    );
  }
  return tf.tidy(() => {
    const loss = sigmoidFocalLoss(logits, targets, { alpha, gamma, reduction: 'none' });
    const mask = tf.expandDims(tf.cast(tf.greater(textMask, 0), 'float32'), 1);
    return tf.sum(tf.mul(weight ? tf.mul(loss, weight) : loss, mask));
  });
}

/**
 * `ATSSLossComputation.GIoULoss`, summed and weighted: pred and target regression codes [P, 4] are
 * decoded against anchors [P, 4]; pred x2/y2 are lifted to x1/y1; areas without +1; intersection 0
 * unless strictly positive; 1e-7 in union and enclosure. With `weight` [P] summing to > 0 the
 * result is sum(loss * weight), else sum(loss).
 */
export function giouLoss(pred: tf.Tensor, target: tf.Tensor, anchors: tf.Tensor, weight?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [px1, py1, px2r, py2r] = tf.unstack(decodeBoxesTensor(pred, anchors), -1);
    const px2 = tf.maximum(px1, px2r);
    const py2 = tf.maximum(py1, py2r);
    const [tx1, ty1, tx2, ty2] = tf.unstack(decodeBoxesTensor(target, anchors), -1);
    const predArea = tf.mul(tf.sub(px2, px1), tf.sub(py2, py1));
    const targetArea = tf.mul(tf.sub(tx2, tx1), tf.sub(ty2, ty1));
    const ix1 = tf.maximum(px1, tx1);
    const iy1 = tf.maximum(py1, ty1);
    const ix2 = tf.minimum(px2, tx2);
    const iy2 = tf.minimum(py2, ty2);
    // the official area is 0 unless both sides are > 0: relu(w) * relu(h) is the same value and gradient
    const inter = tf.mul(tf.relu(tf.sub(ix2, ix1)), tf.relu(tf.sub(iy2, iy1)));
    const enclosing = tf.add(
      tf.mul(tf.sub(tf.maximum(px2, tx2), tf.minimum(px1, tx1)), tf.sub(tf.maximum(py2, ty2), tf.minimum(py1, ty1))),
      1e-7,
    );
    const union = tf.add(tf.sub(tf.add(predArea, targetArea), inter), 1e-7);
    const giou = tf.sub(tf.div(inter, union), tf.div(tf.sub(enclosing, union), enclosing));
    const losses = tf.sub(1, giou);
    return weight ? tf.sum(tf.mul(losses, weight)) : tf.sum(losses);
  });
}

/** Head outputs of a batch, flattened over all levels like `concat_box_prediction_layers` (A = all anchors). */
export interface FlatHeadOutputs {
  /** [B, A, T]. */
  dotProductLogits: tf.Tensor;
  /** [B, A, 4]. */
  bboxReg: tf.Tensor;
  /** [B, A]. */
  centerness: tf.Tensor;
  /** [B, A, C] class logits (optional; their loss has weight 0 in FIBER). */
  clsLogits?: tf.Tensor;
}

/** [B, A*C, H, W] -> [B, H*W*A, C] (`permute_and_flatten`). */
function permuteAndFlatten(x: tf.Tensor, A: number): tf.Tensor {
  const [B, AC, H, W] = x.shape;
  const C = AC / A;
  return tf.reshape(tf.transpose(tf.reshape(x, [B, A, C, H, W]), [0, 3, 4, 1, 2]), [B, H * W * A, C]);
}

/**
 * Flattens per-level VLDyHead outputs (bbox_reg [B, 4A, H, W], centerness [B, A, H, W],
 * dot-product logits [B, H*W*A, T], cls_logits [B, C*A, H, W]) and concatenates the levels. Differentiable.
 */
export function flattenHeadOutputs(levels: {
  bboxReg: readonly tf.Tensor[];
  centerness: readonly tf.Tensor[];
  dotProductLogits: readonly tf.Tensor[];
  clsLogits?: readonly tf.Tensor[];
}): FlatHeadOutputs {
  const n = levels.bboxReg.length;
  if (
    n === 0 ||
    levels.centerness.length !== n ||
    levels.dotProductLogits.length !== n ||
    (levels.clsLogits && levels.clsLogits.length !== n)
  ) {
    throw new RangeError(
      `flattenHeadOutputs: need the same number (> 0) of bbox_reg, centerness, dot-product (and cls) levels`,
    );
  }
  const A = (levels.bboxReg[0].shape[1] ?? 0) / 4;
  const B = levels.bboxReg[0].shape[0];
  // every level's shapes checked before anything is computed: a mismatch named, nothing left behind
  const shown = (t: tf.Tensor) => `[${t.shape.join(', ')}]`;
  levels.bboxReg.forEach((reg, i) => {
    const [b, c, h, w] = reg.shape;
    const ctr = levels.centerness[i];
    const dot = levels.dotProductLogits[i];
    const cls = levels.clsLogits?.[i];
    const bad = (what: string) => {
      throw new RangeError(
        `flattenHeadOutputs: level ${i}: ${what} (bbox_reg ${shown(reg)}, centerness ${shown(ctr)}, dot-product ${shown(dot)}${cls ? `, cls ${shown(cls)}` : ''})`,
      );
    };
    if (reg.rank !== 4 || b !== B || c !== 4 * A || !Number.isInteger(A) || A < 1)
      bad(`bbox_reg must be [${B}, 4A, H, W] with the A of level 0 (${A})`);
    if (ctr.rank !== 4 || ctr.shape.join() !== [B, A, h, w].join()) bad(`centerness must be [${B}, ${A}, ${h}, ${w}]`);
    if (dot.rank !== 3 || dot.shape[0] !== B || dot.shape[1] !== h * w * A)
      bad(`dot-product logits must be [${B}, ${h * w * A}, T]`);
    if (dot.shape[2] !== levels.dotProductLogits[0].shape[2]) bad('the levels disagree on the token count T');
    if (
      cls &&
      (cls.rank !== 4 ||
        cls.shape[0] !== B ||
        (cls.shape[1] ?? 0) % A !== 0 ||
        cls.shape[2] !== h ||
        cls.shape[3] !== w)
    )
      bad(`cls logits must be [${B}, C*${A}, ${h}, ${w}]`);
  });
  const flat = (xs: readonly tf.Tensor[]) =>
    tf.concat(
      xs.map((x) => permuteAndFlatten(x, A)),
      1,
    );
  return tidyOutput(() => ({
    bboxReg: flat(levels.bboxReg),
    centerness: tf.squeeze(flat(levels.centerness), [2]),
    dotProductLogits: tf.concat([...levels.dotProductLogits], 1),
    ...(levels.clsLogits ? { clsLogits: flat(levels.clsLogits) } : {}),
  }));
}

export interface AtssLosses {
  /** Weighted sum of the terms below: what the trainer minimises. */
  total: tf.Tensor;
  /** Token focal loss / max(#positives, 1), x DOT_PRODUCT_TOKEN_LOSS_WEIGHT. */
  dotProductToken: tf.Tensor;
  /** GIoU weighted by centerness targets / their sum, x REG_LOSS_WEIGHT. */
  reg: tf.Tensor;
  /** Centerness BCE (sum) / max(#positives, 1). */
  centerness: tf.Tensor;
  /** Class-logit focal loss / max(#positives, 1) x clsLossWeight (0 in FIBER). */
  cls: tf.Tensor;
  numPositives: number;
  /** Per image: the ATSS assignment and targets. */
  targets: AtssTargets[];
}

/**
 * The ATSS grounding loss of a batch (single process: the official per-GPU averages reduce to the
 * batch's own counts). `anchorsPerLevel` are the anchors of one image (`generateAnchors`), shared by
 * the batch; `targets[b]` the GT of image b; `textMask` [B, T] the attention mask of the prompt.
 * `labels[b]` (1-based class per GT) are only needed with `clsLogits`.
 *
 * Image-level labels (`targets[b].imageLabels`, not in FIBER; Detic's weak supervision on an
 * anchor detector): for each label, of the anchors no box took (ATSS negatives) on the levels that
 * hold the image's positives (every level when it has none) whose centre lies outside every box,
 * the one whose mean logit over the label's tokens is highest becomes a positive of those tokens
 * (weight `imageLabelWeight`, no box or centerness target); the label's tokens keep their negatives
 * on the boxes' positives (another object) and are left out of the loss at every other anchor no
 * box took, where the unboxed object may be.
 */
export function atssLoss(
  outputs: FlatHeadOutputs,
  anchorsPerLevel: readonly Float32Array[],
  targets: readonly (FineTarget & { labels?: readonly number[] })[],
  textMask: tf.Tensor,
  config: Partial<AtssLossConfig> = {},
): AtssLosses {
  const cfg = { ...FIBER_ATSS_LOSS, ...config };
  const { dotProductLogits, bboxReg, centerness, clsLogits } = outputs;
  const [B = 0, A = 0, T = 0] = dotProductLogits.shape;
  const anchorCount = anchorsPerLevel.reduce((s, l) => s + l.length / 4, 0);
  if (
    A !== anchorCount ||
    bboxReg.shape.join() !== [B, A, 4].join() ||
    centerness.shape.join() !== [B, A].join() ||
    targets.length !== B
  ) {
    throw new RangeError(
      `atssLoss: dot-product logits [${dotProductLogits.shape.join(', ')}], ` +
        `bbox_reg [${bboxReg.shape.join(', ')}], centerness [${centerness.shape.join(', ')}], ` +
        `${anchorCount} anchors and ${targets.length} targets do not describe one batch`,
    );
  }
  const per = targets.map((t, b) => {
    try {
      checkImageLabels(t.imageLabels, T, cfg.imageLabelWeight);
      return atssTargets(anchorsPerLevel, t, T, cfg);
    } catch (e) {
      throw new RangeError(`atssLoss: image ${b}: ${(e as Error).message}`);
    }
  });
  // flat indices (image-major) of the positives and their targets
  const posIdx: number[] = [];
  const regT: number[] = [];
  const anc: number[] = [];
  const ctrT: number[] = [];
  per.forEach((p, b) => {
    p.positives.forEach((a, i) => {
      posIdx.push(b * A + a);
      ctrT.push(p.centernessTargets[i]);
    });
    regT.push(...p.regTargets);
    anc.push(...p.positiveAnchors);
  });
  const P = posIdx.length;
  const numPosAvg = Math.max(P, 1);
  const losses = tf.tidy(() => {
    let tokenTargets: tf.Tensor = tf.tensor3d(concatArrays(per.map((p) => p.tokenTargets)), [B, A, T]);
    let weight: tf.Tensor | undefined;
    if (targets.some((t) => t.imageLabels?.length)) {
      const labels = imageLabelTargets(dotProductLogits, anchorsPerLevel, targets, per, cfg.imageLabelWeight);
      [tokenTargets, weight] = [labels.targets, labels.weight];
    }
    const dotProductToken = tf.mul(
      tokenSigmoidFocalLoss(dotProductLogits, tokenTargets, textMask, {
        alpha: cfg.tokenAlpha,
        gamma: cfg.tokenGamma,
        weight,
      }),
      cfg.tokenLossWeight / numPosAvg,
    );
    let reg: tf.Tensor;
    let ctrLoss: tf.Tensor;
    if (P > 0) {
      const idx = tf.tensor1d(posIdx, 'int32');
      const pred = tf.gather(tf.reshape(bboxReg, [B * A, 4]), idx);
      const weight = tf.tensor1d(ctrT);
      const sumWeight = ctrT.reduce((s, v) => s + v, 0);
      const g = giouLoss(pred, tf.tensor2d(regT, [P, 4]), tf.tensor2d(anc, [P, 4]), sumWeight > 0 ? weight : undefined);
      reg = tf.mul(g, cfg.regLossWeight / sumWeight);
      const ctrPred = tf.gather(tf.reshape(centerness, [B * A]), idx);
      ctrLoss = tf.div(bceWithLogits(ctrPred, weight, { reduction: 'sum' }), numPosAvg);
    } else {
      // no positive in the batch: zero, but still a function of the outputs (as the official sum over nothing)
      reg = zeroOf(bboxReg);
      ctrLoss = zeroOf(centerness);
    }
    let cls = zeroOf(dotProductLogits);
    if (clsLogits) {
      const C = clsLogits.shape[2] ?? 0;
      const oneHot = new Float32Array(B * A * C);
      per.forEach((p, b) => {
        const labels = targets[b].labels;
        p.gtIndex.forEach((g, a) => {
          if (g < 0) return;
          if (!labels) throw new RangeError(`atssLoss: image ${b} has no labels, needed for the class logits`);
          const label = labels[g];
          if (label >= 1 && label <= C) oneHot[(b * A + a) * C + label - 1] = 1;
        });
      });
      const focal = sigmoidFocalLoss(clsLogits, tf.tensor3d(oneHot, [B, A, C]), {
        alpha: cfg.clsAlpha,
        gamma: cfg.clsGamma,
        reduction: 'sum',
      });
      cls = tf.mul(focal, cfg.clsLossWeight / numPosAvg);
    }
    const total = tf.addN([dotProductToken, reg, ctrLoss, cls]);
    return { total, dotProductToken, reg, centerness: ctrLoss, cls };
  });
  return { ...losses, numPositives: P, targets: per };
}

/** 0 as a function of x (gradient 0, not undefined); + 0 turns the -0 of a negative sum into +0. */
function zeroOf(x: tf.Tensor): tf.Tensor {
  return tf.add(tf.mul(tf.sum(x), 0), 0);
}

function checkImageLabels(labels: FineTarget['imageLabels'], T: number, weight: number): void {
  if (labels === undefined) return;
  if (!Array.isArray(labels)) throw new RangeError('imageLabels: must be an array of token index arrays');
  if (labels.length && !(Number.isFinite(weight) && weight >= 0))
    throw new RangeError(`imageLabelWeight: must be a finite number >= 0, got ${weight}`);
  labels.forEach((tokens, k) => {
    if (!Array.isArray(tokens) || tokens.length === 0)
      throw new RangeError(`imageLabels[${k}]: must be a non-empty array of prompt token indices`);
    for (const t of tokens)
      if (!(Number.isInteger(t) && t >= 0 && t < T - 1))
        throw new RangeError(
          `imageLabels[${k}]: token ${t} is not an index of the prompt's first ${T - 1} tokens (the last, ${T - 1}, is "no object")`,
        );
  });
}

/**
 * The token targets and weights [B, A, T] with image-level labels (the rule is `atssLoss`'s), on
 * the device: each label's anchor is the argmax of its tokens' mean logit over the candidates, a
 * choice that carries no gradient.
 */
function imageLabelTargets(
  logits: tf.Tensor,
  anchorsPerLevel: readonly Float32Array[],
  targets: readonly FineTarget[],
  per: readonly AtssTargets[],
  labelWeight: number,
): { targets: tf.Tensor; weight: tf.Tensor } {
  const [, A = 0, T = 0] = logits.shape;
  const anchors = concatLevels(anchorsPerLevel);
  const levelOf = new Int32Array(A);
  let start = 0;
  anchorsPerLevel.forEach((l, level) => {
    levelOf.fill(level, start, start + l.length / 4);
    start += l.length / 4;
  });
  const images = targets.map((t, b) => {
    const { gtIndex, tokenTargets } = per[b];
    const labels = t.imageLabels ?? [];
    // without labels the image keeps its targets, weight 1
    if (!labels.length) return { targets: tf.tensor2d(tokenTargets, [A, T]), weight: tf.ones([A, T]) };
    const weight = new Float32Array(A * T).fill(1);
    const levels = new Set<number>();
    gtIndex.forEach((g, a) => g >= 0 && levels.add(levelOf[a]));
    // candidates: on those levels, taken by no box and centred outside every box (a boxed object is not the unboxed one)
    const boxes = t.boxes;
    const inBox = (x: number, y: number) => {
      for (let g = 0; g < boxes.length; g += 4)
        if (x >= boxes[g] && x <= boxes[g + 2] && y >= boxes[g + 1] && y <= boxes[g + 3]) return true;
      return false;
    };
    const free = Float32Array.from(gtIndex, (g, a) =>
      g < 0 &&
      (levels.size === 0 || levels.has(levelOf[a])) &&
      !inBox((anchors[4 * a] + anchors[4 * a + 2]) / 2, (anchors[4 * a + 1] + anchors[4 * a + 3]) / 2)
        ? 1
        : 0,
    );
    // the labels' tokens leave the loss at every free anchor (boxes' positives keep their negatives)
    for (const tokens of labels)
      for (let j = 0; j < A; j++) if (gtIndex[j] < 0) for (const k of tokens) weight[j * T + k] = 0;
    const row = tf.reshape(tf.slice(logits, [b, 0, 0], [1, A, T]), [A, T]);
    const candidate = tf.greater(tf.tensor1d(free), 0);
    const chosen = (free.some((f) => f > 0) ? labels : []).map((tokens) => {
      const onTokens = new Float32Array(T);
      for (const k of tokens) onTokens[k] = 1 / tokens.length;
      // [A] mean logit over the label's tokens; the other anchors under the lowest (finite, for every backend)
      const score = tf.reshape(tf.matMul(row, tf.tensor2d(onTokens, [T, 1])), [A]);
      const masked = tf.where(candidate, score, tf.broadcastTo(tf.sub(tf.min(score), 1), [A]));
      const anchor = tf.cast(tf.oneHot(tf.argMax(masked), A), 'float32'); // [A]
      const mark = new Float32Array(T);
      for (const k of tokens) mark[k] = 1;
      return { anchor, mark: tf.tensor1d(mark) };
    });
    let imageTargets: tf.Tensor = tf.tensor2d(tokenTargets, [A, T]);
    let imageWeight: tf.Tensor = tf.tensor2d(weight, [A, T]);
    if (chosen.length) {
      const outer = (x: tf.Tensor, m: tf.Tensor) => tf.mul(tf.reshape(x, [A, 1]), tf.reshape(m, [1, T]));
      // [A, T] 1 on (a label's anchor, its tokens); [A] 1 on any label's anchor
      const positive = tf.minimum(tf.addN(chosen.map((c) => outer(c.anchor, c.mark))), 1);
      const anyLabel = tf.minimum(tf.addN(chosen.map((c) => c.anchor)), 1);
      const noObject = tf.tensor1d(Array.from({ length: T }, (_, k) => (k === T - 1 ? 1 : 0)));
      // the chosen anchors are objects: their "no object" token is cleared
      imageTargets = tf.maximum(tf.mul(imageTargets, tf.sub(1, outer(anyLabel, noObject))), positive);
      imageWeight = tf.add(imageWeight, tf.mul(positive, labelWeight));
    }
    return { targets: imageTargets, weight: imageWeight };
  });
  return {
    targets: tf.stack(images.map((i) => i.targets)),
    weight: tf.stack(images.map((i) => i.weight)),
  };
}

function concatArrays(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
