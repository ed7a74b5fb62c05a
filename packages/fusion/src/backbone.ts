// The composed FIBER backbone (coarse-grained, fiber-spec §1.5-1.6): Swin (`vit_model`) and RoBERTa
// (`text_transformer`) with fusion blocks in their top layers, the cross-modal transforms and the
// poolers, in the order of the official FIBERTransformerSS so that keys and their order match.
//   fused(): both streams run in parallel through the fused pairs, each reading the other's state
//            from before the step; the last text layer skips its output LayerNorm; no Swin norm.
//            It drives the backbones' own steps (Swin's `steps`, RoBERTa's `layer`).
//   encodeImage() / encodeText(): the same weights as two independent encoders (ITC / retrieval):
//            Swin with its final norm, 12 plain text layers, the `_itc` transforms and poolers,
//            L2-normalised.
import {
  DropPath,
  Dropout,
  Linear,
  Module,
  defaultGenerator,
  initWeights,
  l2Normalize,
  tf,
  tidyOutput,
  type Generator,
} from '@fiber-vl/tensor-core';
import { RobertaModel, RobertaPooler, type LayerOptions, type RobertaState } from '@fiber-vl/roberta';
import { SwinTransformer, type SwinState, type SwinStep } from '@fiber-vl/swin';
import { FiberRobertaLayer, FusedWindowAttention, type ImageContext, type TextContext } from './blocks.js';
import {
  fusionSchedule,
  initializerStd,
  validateFiberConfig,
  type FiberCoarseConfig,
  type FusedPair,
} from './config.js';

/** The fused pass (fusion on). */
export interface FusedOutput {
  /** [B, L, H] after cross_modal_text_transform. */
  textFeats: tf.Tensor;
  /** [B, N, H] after cross_modal_image_transform. */
  imageFeats: tf.Tensor;
  /** [B, 2H] = [text pooled | image pooled]. */
  clsFeats: tf.Tensor;
  /** Raw backbone outputs (text without its last LayerNorm, image without the Swin norm). */
  text: tf.Tensor;
  image: tf.Tensor;
}

export interface DualImageOutput {
  imageFeats: tf.Tensor; // [B, N, H]
  imageCls: tf.Tensor; // [B, H], L2-normalised
}
export interface DualTextOutput {
  textFeats: tf.Tensor; // [B, L, H]
  textCls: tf.Tensor; // [B, H], L2-normalised
}

const shapeOf = (t: tf.Tensor) => `[${t.shape.join(', ')}]`;

/**
 * Checks that an image batch and a text batch pair up (same batch size) before any compute; the
 * backbones' own first steps check each input's shape.
 */
export function checkPairedBatch(pixels: tf.Tensor, inputIds: tf.Tensor, attentionMask?: tf.Tensor): void {
  if (pixels.rank === 4 && inputIds.rank === 2 && pixels.shape[0] !== inputIds.shape[0]) {
    throw new RangeError(
      `FIBER: pixels ${shapeOf(pixels)} hold ${pixels.shape[0]} images but inputIds ${shapeOf(inputIds)} hold ${inputIds.shape[0]} texts`,
    );
  }
  if (attentionMask && attentionMask.shape.join() !== inputIds.shape.join()) {
    throw new RangeError(`FIBER: attentionMask ${shapeOf(attentionMask)} does not match inputIds ${shapeOf(inputIds)}`);
  }
}

/** Checks pair indices against the image and text batches: equal lengths, at least one, rows in range. */
function checkPairs(pixels: tf.Tensor, inputIds: tf.Tensor, attentionMask: tf.Tensor, pairs: FusedPairs): void {
  if (attentionMask.shape.join() !== inputIds.shape.join())
    throw new RangeError(`FIBER: attentionMask ${shapeOf(attentionMask)} does not match inputIds ${shapeOf(inputIds)}`);
  const { image, text } = pairs;
  if (image.length !== text.length || !image.length)
    throw new RangeError(
      `FIBER: pairs has ${image.length} image and ${text.length} text indices; they must be equal in number, at least one`,
    );
  const rows = (what: 'image' | 'text', idx: readonly number[], n: number) =>
    idx.forEach((r, k) => {
      if (!(Number.isInteger(r) && r >= 0 && r < n))
        throw new RangeError(`FIBER: pairs.${what}[${k}] = ${r} is outside the ${n} rows of the ${what} batch`);
    });
  rows('image', image, pixels.shape[0]);
  rows('text', text, inputIds.shape[0]);
}

/**
 * The distinct rows `idx` names, ascending (null when that is every row of the batch), and each
 * entry's position among them.
 */
function compactRows(idx: readonly number[], n: number): { rows: number[] | null; index: Int32Array } {
  const rows = [...new Set(idx)].sort((a, b) => a - b);
  const at = new Map(rows.map((r, k) => [r, k]));
  return { rows: rows.length === n ? null : rows, index: Int32Array.from(idx, (r) => at.get(r) ?? -1) };
}

/** The inputs of a fused pass and, with `pairs`, the pairs' index tensors into them. */
interface FusedInputs {
  pixels: tf.Tensor;
  inputIds: tf.Tensor;
  attentionMask: tf.Tensor;
  pairs?: { image: tf.Tensor; text: tf.Tensor };
}

/** The rows some pair names (only these go through the layers below the fusion), and the pairs' index tensors into them. */
function pairedInputs(
  pixels: tf.Tensor,
  inputIds: tf.Tensor,
  attentionMask: tf.Tensor,
  pairs: FusedPairs,
): FusedInputs {
  const images = compactRows(pairs.image, pixels.shape[0]);
  const texts = compactRows(pairs.text, inputIds.shape[0]);
  const rows = (t: tf.Tensor, r: number[] | null) => (r ? tf.gather(t, r) : t);
  return {
    pixels: rows(pixels, images.rows),
    inputIds: rows(inputIds, texts.rows),
    attentionMask: rows(attentionMask, texts.rows),
    pairs: { image: tf.tensor1d(images.index, 'int32'), text: tf.tensor1d(texts.index, 'int32') },
  };
}

/** The inputs gathered into pairs, one row per pair (each pair then draws its own dropout masks). */
function gatheredInputs(
  pixels: tf.Tensor,
  inputIds: tf.Tensor,
  attentionMask: tf.Tensor,
  pairs: FusedPairs,
): FusedInputs {
  const image = tf.tensor1d(Int32Array.from(pairs.image), 'int32');
  const text = tf.tensor1d(Int32Array.from(pairs.text), 'int32');
  return {
    pixels: tf.gather(pixels, image),
    inputIds: tf.gather(inputIds, text),
    attentionMask: tf.gather(attentionMask, text),
  };
}

export interface RunFusedOptions {
  /** Skip the output LayerNorm of the last text layer (the coarse fused pass does, fiber-spec §1.5). */
  skipLastTextNorm?: boolean;
  /** Called at each stage end, before its PatchMerging (the fine-grained backbone reads its features here). */
  onStageEnd?: (stage: number, image: SwinState) => void;
  /** Called after every step with its output: Swin steps, and text layers (`{ kind: 'text' }`). For parity checks. */
  observe?: (
    step: SwinStep | { kind: 'text'; layer: number } | { kind: 'embed' },
    state: SwinState | RobertaState,
  ) => void;
  /**
   * Pair the inputs by index: int32 [P] rows of pixels (`image`) and of the texts (`text`), not
   * checked here (`FiberCoarseBackbone.fused` checks them; an index out of range reads zeros on some
   * backends). The steps before the first fused pair run once per image and once per text, and the
   * states are gathered into the P pairs there (the callbacks see the unpaired states before that
   * point); a dropout or drop-path there draws one mask per image or text, not per pair.
   */
  pairs?: { image: tf.Tensor; text: tf.Tensor };
}

/** Image and text rows that make up the pairs of a fused pass: pair k is (image[k], text[k]). */
export interface FusedPairs {
  image: readonly number[];
  text: readonly number[];
}

/**
 * FIBER's fusion schedule over the backbones' own steps (fiber-spec §1.5, §3.2): the text layers
 * before the first fused pair run alone, then Swin's steps run in order; at a fused pair the Swin
 * block cross-attends to the text state and the paired text layer to the image state, both from
 * before the step (parallel update). Call inside a tidy scope: intermediate states are not freed.
 */
export function runFused(
  swin: SwinTransformer<TextContext>,
  roberta: RobertaModel<ImageContext>,
  schedule: readonly FusedPair[],
  pixels: tf.Tensor,
  inputIds: tf.Tensor,
  attentionMask: tf.Tensor,
  { skipLastTextNorm = false, onStageEnd, observe, pairs }: RunFusedOptions = {},
): { image: SwinState; text: RobertaState } {
  if (!schedule.length) throw new RangeError('runFused: the fusion schedule is empty');
  const pairAt = new Map(schedule.map((p) => [`${p.stage}/${p.block}`, p]));
  const lastText = roberta.numLayers - 1;
  const firstFused = Math.min(...schedule.map((p) => p.textLayer));
  let text = roberta.embed(inputIds, attentionMask);
  observe?.({ kind: 'text', layer: -1 }, text);
  const textLayer = (i: number, options?: LayerOptions<ImageContext>) => {
    text = roberta.layer(i, text, options);
    observe?.({ kind: 'text', layer: i }, text);
  };
  for (let i = 0; i < firstFused; i++) textLayer(i);
  if (pairs) {
    // a [1, ...] mask (one text, or a broadcast one) needs no gather
    const mask = text.mask.shape[0] === 1 ? text.mask : tf.gather(text.mask, pairs.text);
    text = { hidden: tf.gather(text.hidden, pairs.text), mask };
  }
  let image = swin.embed(pixels);
  observe?.({ kind: 'embed' }, image);
  let pendingImages = pairs?.image; // gathered at the first fused pair
  for (const s of swin.steps) {
    if (s.kind === 'stageEnd') onStageEnd?.(s.stage, image);
    const pair = s.kind === 'block' ? pairAt.get(`${s.stage}/${s.block}`) : undefined;
    if (pair && pendingImages) {
      image = { hidden: tf.gather(image.hidden, pendingImages), grid: image.grid };
      pendingImages = undefined;
    }
    const before = image;
    image = swin.step(s, image, pair ? { text: text.hidden, mask: text.mask } : undefined);
    observe?.(s, image);
    // parallel update: the text layer reads the image state from before the paired block
    if (pair)
      textLayer(pair.textLayer, {
        context: { image: before.hidden },
        skipOutputNorm: skipLastTextNorm && pair.textLayer === lastText,
      });
  }
  if (pendingImages) throw new RangeError('runFused: pairs given, but the schedule names no block of the Swin');
  return { image, text };
}

export class FiberCoarseBackbone extends Module {
  crossModalTextTransform: Linear;
  crossModalImageTransform: Linear;
  crossModalTextTransformItc: Linear;
  crossModalImageTransformItc: Linear;
  vitModel: SwinTransformer<TextContext>;
  textTransformer: RobertaModel<ImageContext>;
  crossModalImagePooler: RobertaPooler;
  crossModalTextPooler: RobertaPooler;
  crossModalImagePoolerItc: RobertaPooler;
  crossModalTextPoolerItc: RobertaPooler;
  readonly schedule: FusedPair[];
  /** The dropouts and drop-paths with a rate above 0 below the fusion (found on first use). */
  #stochasticBelowFusion?: (Dropout | DropPath)[];

  constructor(
    readonly config: FiberCoarseConfig,
    rng: Generator = defaultGenerator,
  ) {
    super();
    validateFiberConfig(config);
    const { swin, roberta, hiddenSize } = config;
    const imageWidth = swin.embedDim * 2 ** (swin.depths.length - 1);
    const textWidth = roberta.hiddenSize;
    this.schedule = fusionSchedule(config);
    const initStd = initializerStd(config);
    const fused = new Set(this.schedule.map((p) => `${p.stage}/${p.block}`));
    const stageOfLayer = new Map(this.schedule.map((p) => [p.textLayer, p.stage]));
    this.crossModalTextTransform = new Linear(textWidth, hiddenSize, { rng });
    this.crossModalImageTransform = new Linear(imageWidth, hiddenSize, { rng });
    this.crossModalTextTransformItc = new Linear(textWidth, hiddenSize, { rng });
    this.crossModalImageTransformItc = new Linear(imageWidth, hiddenSize, { rng });
    this.vitModel = new SwinTransformer<TextContext>(swin, {
      rng,
      attentionFactory: (stage, block, dim, windowSize, heads) =>
        fused.has(`${stage}/${block}`)
          ? new FusedWindowAttention(dim, windowSize, heads, textWidth, {
              qkvBias: swin.qkvBias,
              eps: swin.layerNormEps,
              initStd,
              rng,
            })
          : undefined,
    });
    const layers = Array.from({ length: roberta.numHiddenLayers }, (_, i) => {
      const stage = stageOfLayer.get(i);
      return new FiberRobertaLayer(roberta, {
        kvDim: stage === undefined ? undefined : swin.embedDim * 2 ** stage,
        initStd,
        rng,
      });
    });
    this.textTransformer = new RobertaModel<ImageContext>(roberta, { rng, layers });
    this.crossModalImagePooler = new RobertaPooler({ hiddenSize }, rng);
    this.crossModalTextPooler = new RobertaPooler({ hiddenSize }, rng);
    this.crossModalImagePoolerItc = new RobertaPooler({ hiddenSize }, rng);
    this.crossModalTextPoolerItc = new RobertaPooler({ hiddenSize }, rng);
    // FIBER: each `.apply(objectives.init_weights)`, N(0, 0.02); the text pooler, which roberta-base
    // lacks, at transformers' N(0, 0.02) (unused by FIBER). config.initializerRange sets the std.
    const added = [
      this.textTransformer.pooler,
      this.crossModalTextTransform,
      this.crossModalImageTransform,
      this.crossModalTextTransformItc,
      this.crossModalImageTransformItc,
      this.crossModalImagePooler,
      this.crossModalTextPooler,
      this.crossModalImagePoolerItc,
      this.crossModalTextPoolerItc,
    ];
    if (initStd !== null) for (const m of added) if (m) initWeights(m, { std: initStd, rng });
  }

  /**
   * The fusion-on pass: pixels [B, 3, S, S], inputIds / attentionMask [B, L], row b with row b.
   * With `pairs`, the batches may differ in size and pair k is (pixels[image[k]], text[text[k]]):
   * the layers below the fusion run once per image and per text that a pair names (rows no pair
   * names are skipped), e.g. once for a text re-ranked against many images; the values are those of
   * gathering the inputs into pairs first. In training, where a dropout or drop-path below the
   * fusion has a rate above 0, the inputs are gathered into pairs first, so that each pair draws its
   * own masks as it would without `pairs` (and nothing is saved).
   */
  fused(pixels: tf.Tensor, inputIds: tf.Tensor, attentionMask: tf.Tensor, pairs?: FusedPairs): FusedOutput {
    if (pairs) checkPairs(pixels, inputIds, attentionMask, pairs);
    else checkPairedBatch(pixels, inputIds, attentionMask);
    return tidyOutput(() => {
      let inputs: FusedInputs = { pixels, inputIds, attentionMask };
      if (pairs)
        inputs = this.drawsBelowFusion()
          ? gatheredInputs(pixels, inputIds, attentionMask, pairs)
          : pairedInputs(pixels, inputIds, attentionMask, pairs);
      // the last text layer skips its output LayerNorm in the coarse fused pass (fiber-spec §1.5)
      const { image, text } = runFused(
        this.vitModel,
        this.textTransformer,
        this.schedule,
        inputs.pixels,
        inputs.inputIds,
        inputs.attentionMask,
        { skipLastTextNorm: true, pairs: inputs.pairs },
      );
      const textFeats = this.crossModalTextTransform.forward(text.hidden);
      const imageFeats = this.crossModalImageTransform.forward(image.hidden);
      const clsText = this.crossModalTextPooler.forward(textFeats);
      const clsImage = this.crossModalImagePooler.forward(tf.mean(imageFeats, 1, true));
      return {
        textFeats,
        imageFeats,
        clsFeats: tf.concat([clsText, clsImage], -1),
        text: text.hidden,
        image: image.hidden,
      };
    });
  }

  /**
   * Freezes the layers below the fusion, the ones `fused` with `pairs` runs once per image and text:
   * Swin's patch embedding and its stages and blocks before the first fused block, RoBERTa's
   * embeddings and its layers before the first fused one. What stays trainable is the fusion and
   * everything after it (e.g. a retrieval ITM fine-tune of the fused layers and the heads).
   */
  freezeBelowFusion(): this {
    for (const m of this.belowFusion()) m.freeze();
    return this;
  }

  /** The modules that run before the first fused pair (Swin's posDrop has no parameters). */
  private belowFusion(): Module[] {
    const first = this.schedule.reduce((a, p) =>
      p.stage < a.stage || (p.stage === a.stage && p.block < a.block) ? p : a,
    );
    const firstText = Math.min(...this.schedule.map((p) => p.textLayer));
    const swin = this.vitModel;
    return [
      swin.patchEmbed,
      swin.posDrop,
      ...Array.from({ length: first.stage }, (_, s) => swin.layers.at(s)),
      ...Array.from({ length: first.block }, (_, b) => swin.layers.at(first.stage).blocks.at(b)),
      this.textTransformer.embeddings,
      ...Array.from({ length: firstText }, (_, i) => this.textTransformer.encoder.layer.at(i)),
    ];
  }

  /** Whether a dropout or drop-path below the fusion would draw a mask now (training, rate > 0). */
  private drawsBelowFusion(): boolean {
    // the modules and their rates are fixed once built; only the training flags change
    this.#stochasticBelowFusion ??= this.belowFusion().flatMap((top) =>
      Array.from(top.namedModules(), ([, m]) => m).filter(
        (m): m is Dropout | DropPath => (m instanceof Dropout || m instanceof DropPath) && m.p > 0,
      ),
    );
    return this.#stochasticBelowFusion.some((m) => m.training);
  }

  /** Image encoder of the dual mode (ITC, retrieval). */
  encodeImage(pixels: tf.Tensor): DualImageOutput {
    return tidyOutput(() => {
      const out = this.vitModel.forward(pixels);
      if (!out.lastHiddenState) throw new Error('FiberCoarseBackbone: the Swin gave no final norm output');
      const imageFeats = this.crossModalImageTransformItc.forward(out.lastHiddenState);
      const imageCls = l2Normalize(this.crossModalImagePoolerItc.forward(tf.mean(imageFeats, 1, true)));
      return { imageFeats, imageCls };
    });
  }

  /** Text encoder of the dual mode. */
  encodeText(inputIds: tf.Tensor, attentionMask: tf.Tensor): DualTextOutput {
    return tidyOutput(() => {
      const { lastHiddenState } = this.textTransformer.forward(inputIds, attentionMask, { pool: false });
      const textFeats = this.crossModalTextTransformItc.forward(lastHiddenState);
      const textCls = l2Normalize(this.crossModalTextPoolerItc.forward(textFeats));
      return { textFeats, textCls };
    });
  }
}
