// The coarse-grained FIBER model (FIBERTransformerSS, fiber-spec §2.1): the composed backbone of
// @fiber-vl/fusion plus the task heads, in the official module order so that the official
// checkpoints (.ckpt / safetensors) load by name. Which heads exist depends on the task, as in the
// official checkpoints (FIBER_TASK_HEADS); their settings come from one CoarseHeadsConfig.
//
// Every head has a method that takes a FusedOutput (`itmHead`, `vqaHead`, `mlmHead`, `nlvr2Head`),
// so one fused pass can serve several heads; `itm`, `vqa`, `mlm`, `nlvr2` run the fused pass and
// one head.
import {
  GELU,
  LayerNorm,
  Linear,
  Module,
  ModuleList,
  Parameter,
  Sequential,
  defaultGenerator,
  disposeOutput,
  initWeights,
  gelu,
  tf,
  tidyOutput,
  type Generator,
} from '@fiber-vl/tensor-core';
import {
  FiberCoarseBackbone,
  initializerStd,
  type FiberCoarseConfig,
  type FusedOutput,
  type FusedPairs,
} from '@fiber-vl/fusion';
import { coarseHeadsConfig, type CoarseHeadsConfig, type CoarseHeadsSelection, type FiberTask } from './config.js';

/** BertPredictionHeadTransform: dense -> GELU -> LayerNorm (eps 1e-12, BertConfig's default). */
export class PredictionHeadTransform extends Module {
  dense: Linear;
  LayerNorm: LayerNorm;
  constructor(hidden: number, eps = 1e-12, rng: Generator = defaultGenerator) {
    super();
    this.dense = new Linear(hidden, hidden, { rng });
    this.LayerNorm = new LayerNorm(hidden, eps);
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.LayerNorm.forward(gelu(this.dense.forward(x))));
  }
}

/** mlm_score: transform -> decoder (no bias, not tied to the word embeddings) + bias. */
export class MLMHead extends Module {
  bias: Parameter;
  transform: PredictionHeadTransform;
  decoder: Linear;
  constructor(hidden: number, vocab: number, eps = 1e-12, rng: Generator = defaultGenerator) {
    super();
    this.bias = new Parameter(tf.zeros([vocab]));
    this.transform = new PredictionHeadTransform(hidden, eps, rng);
    this.decoder = new Linear(hidden, vocab, { bias: false, rng });
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.add(this.decoder.forward(this.transform.forward(x)), this.bias.value));
  }
}

/** itm_score: fc on cls_feats -> [B, 2] (index 1 = match). */
export class ITMHead extends Module {
  fc: Linear;
  constructor(hidden2: number, rng: Generator = defaultGenerator) {
    super();
    this.fc = new Linear(hidden2, 2, { rng });
  }
  forward(x: tf.Tensor): tf.Tensor {
    return this.fc.forward(x);
  }
}

/** Linear -> LayerNorm -> GELU -> Linear, keys .0 .1 .3 (VQA and NLVR2 classifiers). */
export function classifier(
  inDim: number,
  hidden: number,
  out: number,
  { eps = 1e-5, rng = defaultGenerator }: { eps?: number; rng?: Generator } = {},
): Sequential {
  return new Sequential(
    new Linear(inDim, hidden, { rng }),
    new LayerNorm(hidden, eps),
    new GELU(),
    new Linear(hidden, out, { rng }),
  );
}

/** ITM head output: logits [B, 2] (index 1 = match) and the retrieval rank score [B] (rank_output). */
export interface ItmOutput {
  logits: tf.Tensor;
  rankScore: tf.Tensor;
}

/** NLVR2 head output: logits [B, 2] and the concatenated cls_feats of the two images [B, 4H]. */
export interface Nlvr2Output {
  logits: tf.Tensor;
  clsFeats: tf.Tensor;
}

/** MLM head output: logits [B, L, V] and the fused text features they were computed from. */
export interface MlmOutput {
  logits: tf.Tensor;
  textFeats: tf.Tensor;
}

export class FiberCoarseModel extends FiberCoarseBackbone {
  temp?: Parameter;
  mlmScore?: MLMHead;
  itmScore?: ITMHead;
  /**
   * Official: a Linear(2H, 1) whose weight and bias are set to views of itm_score.fc row 1. Here it
   * is its own parameter, initialised (and re-synced by `syncRankOutput`) from that row.
   */
  rankOutput?: Linear;
  vqaClassifier?: Sequential;
  nlvr2Classifier?: Sequential;
  crossModalAttLayers?: ModuleList<Linear>;
  readonly heads: CoarseHeadsConfig;

  constructor(
    config: FiberCoarseConfig,
    heads: FiberTask | (CoarseHeadsSelection & Partial<CoarseHeadsConfig>) = 'pretrain',
    rng: Generator = defaultGenerator,
  ) {
    // the heads are checked before the backbone allocates anything
    const headsConfig = coarseHeadsConfig(heads);
    super(config, rng);
    this.heads = headsConfig;
    const H = config.hiddenSize;
    const { swin, roberta } = config;
    const eps = this.heads.classifierLayerNormEps;
    if (this.heads.itc) this.temp = new Parameter(tf.scalar(this.heads.itcTemperature.init));
    if (this.heads.mlm) this.mlmScore = new MLMHead(H, roberta.vocabSize, this.heads.mlmLayerNormEps, rng);
    if (this.heads.itm) {
      this.itmScore = new ITMHead(2 * H, rng);
      this.rankOutput = new Linear(2 * H, 1, { rng });
    }
    if (this.heads.vqaLabels > 0) this.vqaClassifier = classifier(2 * H, 2 * H, this.heads.vqaLabels, { eps, rng });
    if (this.heads.nlvr2) this.nlvr2Classifier = classifier(4 * H, 2 * H, 2, { eps, rng });
    if (this.heads.caption) {
      const last = swin.embedDim * 2 ** (swin.depths.length - 1);
      this.crossModalAttLayers = new ModuleList(
        Array.from({ length: roberta.numHiddenLayers - 2 }, () => new Linear(last, last / 2, { rng })),
      );
    }
    // FIBER: every head `.apply(objectives.init_weights)`, N(0, 0.02) (config.initializerRange);
    // rank_output is itm row 1
    const std = initializerStd(config);
    if (std !== null)
      for (const m of [
        this.mlmScore,
        this.itmScore,
        this.vqaClassifier,
        this.nlvr2Classifier,
        this.crossModalAttLayers,
      ])
        if (m) initWeights(m, { std, rng });
    if (this.itmScore) this.syncRankOutput();
  }

  /** As Module.loadStateDict; also accepts `temp` stored as [1] (some exporters) for the scalar parameter. */
  override loadStateDict(
    dict: Map<string, tf.Tensor> | Record<string, tf.Tensor>,
    options?: Parameters<Module['loadStateDict']>[1],
  ) {
    const given = dict instanceof Map ? new Map(dict) : new Map(Object.entries(dict));
    const temp = given.get('temp');
    if (temp && temp.size === 1 && temp.rank === 1) {
      const scalar = tf.reshape(temp, []);
      given.set('temp', scalar);
      try {
        return super.loadStateDict(given, options);
      } finally {
        scalar.dispose();
      }
    }
    return super.loadStateDict(given, options);
  }

  private need<T>(head: T | undefined, name: string): T {
    if (!head)
      throw new Error(
        `FiberCoarseModel: this model was built without the ${name} head (heads: ${JSON.stringify(this.heads)})`,
      );
    return head;
  }

  /** Sets rank_output to itm_score.fc row 1 (the official alias: the ITM "match" logit). */
  syncRankOutput(): void {
    const itm = this.need(this.itmScore, 'ITM');
    const rank = this.need(this.rankOutput, 'rank_output');
    const H2 = itm.fc.inFeatures;
    tf.tidy(() => {
      rank.weight.value.assign(tf.slice(itm.fc.weight.value, [1, 0], [1, H2]));
      rank.bias?.value.assign(tf.slice(this.need(itm.fc.bias, 'itm_score.fc.bias').value, [1], [1]));
    });
  }

  /** ITM logits and rank score from a fused pass. */
  itmHead(f: FusedOutput): ItmOutput {
    const itm = this.need(this.itmScore, 'ITM');
    const rank = this.need(this.rankOutput, 'rank_output');
    return tidyOutput(() => ({
      logits: itm.forward(f.clsFeats),
      rankScore: tf.reshape(rank.forward(f.clsFeats), [-1]),
    }));
  }

  /** VQA answer logits [B, labels] from a fused pass. */
  vqaHead(f: FusedOutput): tf.Tensor {
    return this.need(this.vqaClassifier, 'VQA').forward(f.clsFeats);
  }

  /** MLM logits [B, L, V] from a fused pass (of masked ids). */
  mlmHead(f: FusedOutput): tf.Tensor {
    return this.need(this.mlmScore, 'MLM').forward(f.textFeats);
  }

  /** NLVR2 logits from the fused passes of the two images with the same text. */
  nlvr2Head(a: FusedOutput, b: FusedOutput): Nlvr2Output {
    const head = this.need(this.nlvr2Classifier, 'NLVR2');
    return tidyOutput(() => {
      const clsFeats = tf.concat([a.clsFeats, b.clsFeats], -1);
      return { clsFeats, logits: head.forward(clsFeats) };
    });
  }

  /**
   * ITM logits [B, 2] and the retrieval rank score [B] of image-text pairs (one fused pass). With
   * `pairs` (as in `fused`), pair k is (pixels[image[k]], text[text[k]]): re-ranking one text against
   * many images, say, runs the layers below the fusion once per image and text.
   */
  itm(pixels: tf.Tensor, inputIds: tf.Tensor, attentionMask: tf.Tensor, pairs?: FusedPairs): ItmOutput {
    return this.withFused(pixels, inputIds, attentionMask, (f) => this.itmHead(f), pairs);
  }

  /** VQA answer logits [B, labels] (one fused pass). */
  vqa(pixels: tf.Tensor, inputIds: tf.Tensor, attentionMask: tf.Tensor): tf.Tensor {
    return this.withFused(pixels, inputIds, attentionMask, (f) => this.vqaHead(f));
  }

  /** MLM logits [B, L, V] of (masked) ids, and the fused text features (one fused pass). */
  mlm(pixels: tf.Tensor, inputIds: tf.Tensor, attentionMask: tf.Tensor): MlmOutput {
    this.need(this.mlmScore, 'MLM');
    return tidyOutput(() => {
      const { textFeats } = this.fused(pixels, inputIds, attentionMask);
      return { logits: this.need(this.mlmScore, 'MLM').forward(textFeats), textFeats };
    });
  }

  /** NLVR2: two fused passes with the same text. */
  nlvr2(pixels0: tf.Tensor, pixels1: tf.Tensor, inputIds: tf.Tensor, attentionMask: tf.Tensor): Nlvr2Output {
    this.need(this.nlvr2Classifier, 'NLVR2');
    return tidyOutput(() =>
      this.nlvr2Head(this.fused(pixels0, inputIds, attentionMask), this.fused(pixels1, inputIds, attentionMask)),
    );
  }

  /** The ITC temperature clamped to the configured range (official: [0.001, 1]), a scalar. */
  temperature(): tf.Tensor {
    const { min, max } = this.heads.itcTemperature;
    return tf.clipByValue(this.need(this.temp, 'ITC temperature').value, min, max);
  }

  /** ITC similarities image_cls @ text_cls^T / temperature. */
  itcLogits(imageCls: tf.Tensor, textCls: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.div(tf.matMul(imageCls, textCls, false, true), this.temperature()));
  }

  /** Runs the fused pass, one head on it, and frees the pass (also when the head throws). */
  private withFused<T>(
    pixels: tf.Tensor,
    inputIds: tf.Tensor,
    attentionMask: tf.Tensor,
    head: (f: FusedOutput) => T,
    pairs?: FusedPairs,
  ): T {
    const f = this.fused(pixels, inputIds, attentionMask, pairs);
    try {
      return head(f);
    } finally {
      disposeOutput(f);
    }
  }
}
