// The coarse-grained FIBER model (FIBERTransformerSS, fiber-spec §2.1): the composed backbone of
// @fiber-vl/fusion plus the task heads, in the official module order so that the official
// checkpoints (.ckpt / safetensors) load by name. Which heads exist depends on the task, as in the
// official checkpoints (FIBER_TASK_HEADS).
import { GELU, LayerNorm, Linear, Module, ModuleList, Parameter, Sequential, defaultGenerator, gelu, tf, type Generator } from '@fiber-vl/tensor-core';
import { FiberCoarseBackbone, type FiberCoarseConfig, type FusedOutput } from '@fiber-vl/fusion';

export interface CoarseHeads {
  /** `temp` (ITC temperature). */
  itc: boolean;
  /** `itm_score` and `rank_output`. */
  itm: boolean;
  /** `mlm_score` (also the captioning LM head). */
  mlm: boolean;
  /** `vqa_classifier` with this many answers (0 = none). */
  vqaLabels: number;
  nlvr2: boolean;
  /** `cross_modal_att_layers` (captioning adapters). */
  caption: boolean;
}

/** The heads of each official task checkpoint (state_dict_keys_coarse.tsv, column in_task_models). */
export const FIBER_TASK_HEADS = {
  pretrain: { itc: true, itm: true, mlm: true, vqaLabels: 0, nlvr2: false, caption: false },
  vqa: { itc: false, itm: false, mlm: false, vqaLabels: 3129, nlvr2: false, caption: false },
  nlvr2: { itc: false, itm: false, mlm: false, vqaLabels: 0, nlvr2: true, caption: false },
  caption: { itc: false, itm: false, mlm: true, vqaLabels: 0, nlvr2: false, caption: true },
  irtr_itc: { itc: true, itm: false, mlm: false, vqaLabels: 0, nlvr2: false, caption: false },
  irtr_itm: { itc: false, itm: true, mlm: false, vqaLabels: 0, nlvr2: false, caption: false },
} satisfies Record<string, CoarseHeads>;
export type FiberTask = keyof typeof FIBER_TASK_HEADS;

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
  constructor(hidden: number, vocab: number, rng: Generator = defaultGenerator) {
    super();
    this.bias = new Parameter(tf.zeros([vocab]));
    this.transform = new PredictionHeadTransform(hidden, 1e-12, rng);
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
export function classifier(inDim: number, hidden: number, out: number, rng: Generator = defaultGenerator): Sequential {
  return new Sequential(new Linear(inDim, hidden, { rng }), new LayerNorm(hidden), new GELU(), new Linear(hidden, out, { rng }));
}

export class FiberCoarseModel extends FiberCoarseBackbone {
  temp?: Parameter;
  mlmScore?: MLMHead;
  itmScore?: ITMHead;
  /** Official: a Linear(2H, 1) whose weight and bias are views of itm_score.fc row 1. Loaded as stored. */
  rankOutput?: Linear;
  vqaClassifier?: Sequential;
  nlvr2Classifier?: Sequential;
  crossModalAttLayers?: ModuleList<Linear>;
  readonly heads: CoarseHeads;

  constructor(config: FiberCoarseConfig, heads: CoarseHeads | FiberTask = 'pretrain', rng: Generator = defaultGenerator) {
    super(config, rng);
    this.heads = typeof heads === 'string' ? FIBER_TASK_HEADS[heads] : heads;
    const H = config.hiddenSize;
    const { swin, roberta } = config;
    if (this.heads.itc) this.temp = new Parameter(tf.scalar(0.07));
    if (this.heads.mlm) this.mlmScore = new MLMHead(H, roberta.vocabSize, rng);
    if (this.heads.itm) {
      this.itmScore = new ITMHead(2 * H, rng);
      this.rankOutput = new Linear(2 * H, 1, { rng });
      // start as the official alias: rank_output = itm_score.fc row 1
      const [itm, rank] = [this.itmScore, this.rankOutput];
      tf.tidy(() => {
        rank.weight.value.assign(tf.slice(itm.fc.weight.value, [1, 0], [1, 2 * H]));
        rank.bias!.value.assign(tf.slice(itm.fc.bias!.value, [1], [1]));
      });
    }
    if (this.heads.vqaLabels > 0) this.vqaClassifier = classifier(2 * H, 2 * H, this.heads.vqaLabels, rng);
    if (this.heads.nlvr2) this.nlvr2Classifier = classifier(4 * H, 2 * H, 2, rng);
    if (this.heads.caption) {
      const last = swin.embedDim * 2 ** (swin.depths.length - 1);
      this.crossModalAttLayers = new ModuleList(Array.from({ length: roberta.numHiddenLayers - 2 }, () => new Linear(last, last / 2, { rng })));
    }
  }

  /** As Module.loadStateDict; also accepts `temp` stored as [1] (some exporters) for the scalar parameter. */
  override loadStateDict(dict: Map<string, tf.Tensor> | Record<string, tf.Tensor>, options?: Parameters<Module['loadStateDict']>[1]) {
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
    if (!head) throw new Error(`FiberCoarseModel: this model was built without the ${name} head (heads: ${JSON.stringify(this.heads)})`);
    return head;
  }

  /** ITM logits [B, 2] and the retrieval rank score [B] of image-text pairs (fused). */
  itm(pixels: tf.Tensor, inputIds: tf.Tensor, attentionMask: tf.Tensor): { logits: tf.Tensor; rankScore: tf.Tensor } {
    const itm = this.need(this.itmScore, 'ITM');
    const rank = this.need(this.rankOutput, 'rank_output');
    const f = this.fused(pixels, inputIds, attentionMask);
    const out = tf.tidy(() => ({ logits: itm.forward(f.clsFeats), rankScore: tf.reshape(rank.forward(f.clsFeats), [-1]) }));
    disposeFused(f);
    return out;
  }

  /** VQA answer logits [B, labels]. */
  vqa(pixels: tf.Tensor, inputIds: tf.Tensor, attentionMask: tf.Tensor): tf.Tensor {
    const head = this.need(this.vqaClassifier, 'VQA');
    const f = this.fused(pixels, inputIds, attentionMask);
    const logits = head.forward(f.clsFeats);
    disposeFused(f);
    return logits;
  }

  /** NLVR2: two fused passes with the same text; logits [B, 2] and the concatenated cls_feats [B, 4H]. */
  nlvr2(pixels0: tf.Tensor, pixels1: tf.Tensor, inputIds: tf.Tensor, attentionMask: tf.Tensor): { logits: tf.Tensor; clsFeats: tf.Tensor } {
    const head = this.need(this.nlvr2Classifier, 'NLVR2');
    const a = this.fused(pixels0, inputIds, attentionMask);
    const b = this.fused(pixels1, inputIds, attentionMask);
    const out = tf.tidy(() => {
      const clsFeats = tf.concat([a.clsFeats, b.clsFeats], -1);
      return { clsFeats, logits: head.forward(clsFeats) };
    });
    disposeFused(a);
    disposeFused(b);
    return out;
  }

  /** MLM logits [B, L, V] of (masked) ids, and the fused text features. */
  mlm(pixels: tf.Tensor, inputIds: tf.Tensor, attentionMask: tf.Tensor): { logits: tf.Tensor; textFeats: tf.Tensor } {
    const head = this.need(this.mlmScore, 'MLM');
    const f = this.fused(pixels, inputIds, attentionMask);
    const logits = head.forward(f.textFeats);
    const textFeats = f.textFeats;
    tf.dispose([f.imageFeats, f.clsFeats, f.text, f.image]);
    return { logits, textFeats };
  }

  /** ITC similarities image_cls @ text_cls^T / temp (the temperature clamped to [0.001, 1] as in training). */
  itcLogits(imageCls: tf.Tensor, textCls: tf.Tensor): tf.Tensor {
    const temp = this.need(this.temp, 'ITC temperature');
    return tf.tidy(() => tf.div(tf.matMul(imageCls, textCls, false, true), tf.clipByValue(temp.value, 0.001, 1)));
  }
}

export function disposeFused(f: FusedOutput): void {
  tf.dispose([f.textFeats, f.imageFeats, f.clsFeats, f.text, f.image]);
}
