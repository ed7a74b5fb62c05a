// FIBER's coarse-grained training objectives (fiber-spec §2.2-2.3), differentiable, built on the
// tensor-core losses: ITC with a feature queue, ITM with hard negatives sampled from ITC
// similarities, MLM masking (15%, RoBERTa's 80/10/10), VQA soft-score BCE, captioning CE.
import { type Generator, bceWithLogits, crossEntropy, defaultGenerator, detach, tf } from '@fiber-vl/tensor-core';

/**
 * ITC as FIBER's compute_itc: sim_i2t = img @ [txt.detach(); textQueue]^T / temp, sim_t2i = txt @
 * [img.detach(); imageQueue]^T / temp, one-hot targets on the in-batch diagonal; loss = (CE_i2t +
 * CE_t2i) / 2. Give L2-normalised features (`encodeImage` / `encodeText`'s `imageCls` / `textCls`;
 * they are not normalised here). The image features get their gradient from CE_i2t only and the
 * text features from CE_t2i only: the other side's batch features are detached, as the official
 * code does. Queues [Q, H] (already normalised, no gradient) extend the negatives; the trainer's
 * `itcQueueLoss` takes them as the official buffers, [H, Q].
 * `temp` is used as given. To train the temperature, clamp the parameter in place to [0.001, 1]
 * first and pass its value, as the official code and the trainer's objective do: the gradient of
 * `model.temperature()` (a clip) is 0 outside the bounds, so a temperature that crossed one would
 * never move again. `model.temperature()` is right for inference.
 */
export function itcLoss(
  imageCls: tf.Tensor,
  textCls: tf.Tensor,
  temp: tf.Tensor | number,
  { imageQueue, textQueue }: { imageQueue?: tf.Tensor; textQueue?: tf.Tensor } = {},
): tf.Tensor {
  const [B, H] = imageCls.shape;
  const rows = (t: tf.Tensor, name: string, n?: number) => {
    if (t.rank !== 2 || t.shape[1] !== H || (n !== undefined && t.shape[0] !== n))
      throw new RangeError(
        `itcLoss: ${name} is [${t.shape.join(', ')}], expected [${n ?? 'Q'}, ${H}] as imageCls [${B}, ${H}]`,
      );
  };
  if (imageCls.rank !== 2 || B === 0)
    throw new RangeError(`itcLoss: imageCls is [${imageCls.shape.join(', ')}], expected [B >= 1, hidden]`);
  rows(textCls, 'textCls', B);
  if (imageQueue) rows(imageQueue, 'imageQueue');
  if (textQueue) rows(textQueue, 'textQueue');
  return tf.tidy(() => {
    const t = typeof temp === 'number' ? tf.scalar(temp) : temp;
    // the keys are constants (the other side's batch features, detached, and the queue)
    const txtAll = textQueue ? tf.concat([detach(textCls), textQueue], 0) : detach(textCls);
    const imgAll = imageQueue ? tf.concat([detach(imageCls), imageQueue], 0) : detach(imageCls);
    const simI2t = tf.div(tf.matMul(imageCls, txtAll, false, true), t);
    const simT2i = tf.div(tf.matMul(textCls, imgAll, false, true), t);
    const targets = tf.range(0, B, 1, 'int32');
    return tf.div(tf.add(crossEntropy(simI2t, targets), crossEntropy(simT2i, targets)), 2);
  });
}

function checkSimilarities(fn: string, pairs: readonly (readonly [string, tf.Tensor])[]): [number, number] {
  const [first, ref] = pairs[0];
  const [B, N] = ref.shape;
  for (const [name, sim] of pairs)
    if (sim.rank !== 2 || sim.shape[0] !== B || sim.shape[1] !== N || !(N >= B))
      throw new RangeError(
        `${fn}: ${name} must be [B, N] with N >= B (in-batch columns, then queue columns)` +
          `${sim === ref ? '' : `, as ${first} [${ref.shape.join(', ')}]`}; got [${sim.shape.join(', ')}]`,
      );
  return [B, N];
}

/**
 * compute_itc's hard-negative weights: softmax over each row of a [B, N] similarity matrix (the B
 * in-batch columns first, then N - B queue columns) with the positive, the diagonal, zeroed.
 */
export function hardNegativeWeights(sim: tf.Tensor): tf.Tensor {
  return offDiagonalSoftmax(sim, ...checkSimilarities('hardNegativeWeights', [['sim', sim]]));
}

/** hardNegativeWeights on a [B, N] already checked. */
function offDiagonalSoftmax(sim: tf.Tensor, B: number, N: number): tf.Tensor {
  return tf.tidy(() => {
    const offDiagonal = tf.sub(
      1,
      tf.pad(tf.eye(B), [
        [0, 0],
        [0, N - B],
      ]),
    );
    return tf.mul(tf.softmax(sim), offDiagonal);
  });
}

/** The rows of a weight matrix, checked as torch.multinomial checks them ("inf, nan or element < 0"). */
async function weightRows(fn: string, name: string, w: tf.Tensor): Promise<number[][]> {
  const rows = (await w.array()) as number[][];
  rows.forEach((row, i) => {
    if (!row.every((v) => Number.isFinite(v) && v >= 0))
      throw new RangeError(`${fn}: ${name} row ${i} is not finite and non-negative (NaN or Inf in the features?)`);
  });
  return rows;
}

/** torch.multinomial(row + 1e-9, 1) for each row, with the project's generator. */
function drawRows(rows: number[][], rng: Generator): number[] {
  return rows.map((row) => {
    const w = row.map((v) => v + 1e-9);
    let u = rng.nextDouble() * w.reduce((a, b) => a + b, 0);
    for (let j = 0; j < w.length; j++) {
      u -= w[j];
      if (u < 0) return j;
    }
    return w.length - 1;
  });
}

/** Reads and checks both matrices, then draws the image negatives (t2i rows) before the text ones. */
async function drawBoth(
  fn: string,
  [nameI2t, i2t]: [string, tf.Tensor],
  [nameT2i, t2i]: [string, tf.Tensor],
  rng: Generator,
): Promise<{ negTextForImage: number[]; negImageForText: number[] }> {
  const rowsI2t = await weightRows(fn, nameI2t, i2t);
  const rowsT2i = await weightRows(fn, nameT2i, t2i);
  const negImageForText = drawRows(rowsT2i, rng);
  return { negTextForImage: drawRows(rowsI2t, rng), negImageForText };
}

/**
 * ITM hard negatives from weight matrices ([B, N], see `hardNegativeWeights`) as compute_itc draws
 * them: for each text one image (rows of `weightsT2i`, drawn first), then for each image one text
 * (rows of `weightsI2t`), each from the row + 1e-9 by torch.multinomial's rule. Both matrices are
 * read and checked before the first draw (a refused call draws nothing); the indices are into the
 * N columns (batch, then queue).
 */
export async function drawHardNegatives(
  weightsI2t: tf.Tensor,
  weightsT2i: tf.Tensor,
  rng: Generator = defaultGenerator,
): Promise<{ negTextForImage: number[]; negImageForText: number[] }> {
  const fn = 'drawHardNegatives';
  checkSimilarities(fn, [
    ['weightsI2t', weightsI2t],
    ['weightsT2i', weightsT2i],
  ]);
  return drawBoth(fn, ['weightsI2t', weightsI2t], ['weightsT2i', weightsT2i], rng);
}

/**
 * ITM hard negatives from ITC similarities, as FIBER's compute_itc draws them: the weights of
 * `hardNegativeWeights`, drawn by `drawHardNegatives`. `simI2t` / `simT2i` are [B, N] with the B
 * in-batch columns first and N - B queue columns after them (N = B without a queue); the indices
 * returned are into those N columns.
 */
export async function sampleHardNegatives(
  simI2t: tf.Tensor,
  simT2i: tf.Tensor,
  rng: Generator = defaultGenerator,
): Promise<{ negTextForImage: number[]; negImageForText: number[] }> {
  const fn = 'sampleHardNegatives';
  const [B, N] = checkSimilarities(fn, [
    ['simI2t', simI2t],
    ['simT2i', simT2i],
  ]);
  if (N < 2) throw new RangeError('ITM hard negatives need at least 2 candidates (batch and queue columns)');
  const wI2t = offDiagonalSoftmax(simI2t, B, N);
  const wT2i = offDiagonalSoftmax(simT2i, B, N);
  try {
    return await drawBoth(fn, ['simI2t', wI2t], ['simT2i', wT2i], rng);
  } finally {
    tf.dispose([wI2t, wT2i]);
  }
}

/** ITM: CE on itm_score logits [N, 2] with labels 1 (match) / 0. */
export function itmLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Tensor {
  return crossEntropy(logits, labels);
}

export interface MlmMaskingOptions {
  vocabSize: number;
  maskId: number;
  /** Ids never masked (<s>, </s>, <pad>, ...). */
  specialIds: number[];
  probability?: number;
  rng?: Generator;
}

/**
 * DataCollatorForLanguageModeling: each non-special token is selected with probability 0.15; of
 * the selected, 80% become <mask>, 10% a random token, 10% stay. Labels are the original ids at
 * selected positions and -100 elsewhere.
 */
export function maskTokens(
  ids: number[][],
  { vocabSize, maskId, specialIds, probability = 0.15, rng = defaultGenerator }: MlmMaskingOptions,
): { inputIds: number[][]; labels: number[][] } {
  if (!(probability >= 0 && probability <= 1))
    throw new RangeError(`maskTokens: probability must be in [0, 1], got ${probability}`);
  if (!Number.isInteger(vocabSize) || vocabSize < 1)
    throw new RangeError(`maskTokens: vocabSize must be a positive integer, got ${vocabSize}`);
  if (!Number.isInteger(maskId) || maskId < 0 || maskId >= vocabSize)
    throw new RangeError(`maskTokens: maskId must be a token id in [0, ${vocabSize}), got ${maskId}`);
  const special = new Set(specialIds);
  const inputIds = ids.map((r) => [...r]);
  const labels = ids.map((r) => r.map(() => -100));
  ids.forEach((row, b) =>
    row.forEach((id, i) => {
      if (special.has(id) || rng.nextDouble() >= probability) return;
      labels[b][i] = id;
      const u = rng.nextDouble();
      if (u < 0.8) inputIds[b][i] = maskId;
      else if (u < 0.9) inputIds[b][i] = rng.nextInt(vocabSize);
    }),
  );
  return { inputIds, labels };
}

/** MLM: CE over [B, L, V] logits with -100 ignored. */
export function mlmLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Tensor {
  return crossEntropy(logits, labels, { ignoreIndex: -100 });
}

/** VQA soft-score targets from annotator counts: min(1, 0.3 * count) (0.3 / 0.6 / 0.9 / 1.0). */
export function vqaSoftScore(count: number): number {
  return Math.min(1, 0.3 * count);
}

/**
 * VQA: BCE-with-logits (mean) x number of answers, as the official objective. `logits` and
 * `targets` are both [B, answers]; other shapes are refused (they would broadcast into a wrong loss).
 */
export function vqaLoss(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  if (logits.rank !== 2 || targets.rank !== 2 || logits.shape.some((n, i) => n !== targets.shape[i]))
    throw new RangeError(
      `vqaLoss: logits [${logits.shape.join(', ')}] and targets [${targets.shape.join(', ')}] must both be [B, answers]`,
    );
  return tf.tidy(() => tf.mul(bceWithLogits(logits, targets), logits.shape[logits.rank - 1]));
}

/** Captioning MLE: position t predicts token t + 1; labels = ids shifted left, padding ignored. */
export function captionLoss(logits: tf.Tensor, inputIds: tf.Tensor, padId = 1): tf.Tensor {
  return tf.tidy(() => {
    const [B, L] = inputIds.shape;
    const shifted = tf.concat([tf.slice(inputIds, [0, 1], [B, L - 1]), tf.fill([B, 1], padId, 'int32')], 1);
    const labels = tf.where(tf.equal(shifted, padId), tf.fill([B, L], -100, 'int32'), tf.cast(shifted, 'int32'));
    return crossEntropy(logits, labels, { ignoreIndex: -100 });
  });
}
