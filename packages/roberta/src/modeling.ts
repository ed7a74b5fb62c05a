// RoBERTa (Liu et al. 2019) with the module tree of HF transformers' modeling_roberta.py, read top to
// bottom in the order data flows: Embeddings -> SelfAttention -> SelfOutput -> Attention ->
// Intermediate -> Output -> Layer -> Encoder -> Pooler -> Model -> LM head. Property names give
// the HF state-dict keys (embeddings.word_embeddings.weight, encoder.layer.3.attention.self.query.weight, ...).
//
// Steps (HF's encoder, opened up): `embed` checks the ids and mask and returns a `RobertaState`,
// `layer(i, state)` runs one layer, `forward` is the one loop over them. The fused FIBER pass and
// the captioning decoder drive the same steps instead of copying the loop.
//
// Extension point for fusion: RobertaLayer.crossAttend(a, context) receives the self-attention
// output after its dense projection and before the residual + LayerNorm (where FIBER adds its
// gated text->image attention); the plain model returns `a`. The model is generic in the context
// type `Ctx` a layer receives. A layer can also skip its final LayerNorm (FIBER's last fused
// layer). A model built without fusion has exactly the HF keys.
import {
  Buffer,
  Dropout,
  Embedding,
  LayerNorm,
  Linear,
  Module,
  ModuleList,
  Parameter,
  defaultGenerator,
  gelu,
  init,
  scaledDotProductAttention,
  tf,
  tidyOutput,
  type Generator,
} from '@fiber-vl/tensor-core';
import { robertaConfig, type RobertaConfig } from './config.js';

export class RobertaEmbeddings extends Module {
  positionIds: Buffer;
  wordEmbeddings: Embedding;
  positionEmbeddings: Embedding;
  tokenTypeEmbeddings: Embedding;
  LayerNorm: LayerNorm;
  dropout: Dropout;
  constructor(
    readonly config: RobertaConfig,
    rng: Generator = defaultGenerator,
  ) {
    super();
    this.positionIds = new Buffer(
      tf.tidy(() => tf.reshape(tf.range(0, config.maxPositionEmbeddings, 1, 'int32'), [1, -1])),
    );
    this.wordEmbeddings = new Embedding(config.vocabSize, config.hiddenSize, { paddingIdx: config.padTokenId, rng });
    this.positionEmbeddings = new Embedding(config.maxPositionEmbeddings, config.hiddenSize, {
      paddingIdx: config.padTokenId,
      rng,
    });
    this.tokenTypeEmbeddings = new Embedding(config.typeVocabSize, config.hiddenSize, { rng });
    this.LayerNorm = new LayerNorm(config.hiddenSize, config.layerNormEps);
    this.dropout = new Dropout(config.hiddenDropoutProb, rng);
  }

  /** ids [B, L] (int32) -> [B, L, H]. Positions count real tokens from padding_idx + 1; pads get padding_idx. */
  forward(inputIds: tf.Tensor, tokenTypeIds?: tf.Tensor): tf.Tensor {
    const pad = this.config.padTokenId;
    const L = inputIds.shape[1]!;
    if (L + pad + 1 > this.config.maxPositionEmbeddings) {
      throw new RangeError(
        `RoBERTa: ${L} tokens need position ids up to ${L + pad}, but maxPositionEmbeddings is ${this.config.maxPositionEmbeddings}`,
      );
    }
    return tf.tidy(() => {
      const ids = tf.cast(inputIds, 'int32');
      const real = tf.cast(tf.notEqual(ids, pad), 'int32');
      const positions = tf.add(tf.mul(tf.cumsum(real, 1), real), pad);
      const types = tokenTypeIds ?? tf.zerosLike(ids);
      const e = tf.add(
        tf.add(this.wordEmbeddings.forward(ids), this.tokenTypeEmbeddings.forward(types)),
        this.positionEmbeddings.forward(positions),
      );
      return this.dropout.forward(this.LayerNorm.forward(e));
    });
  }
}

export class RobertaSelfAttention extends Module {
  query: Linear;
  key: Linear;
  value: Linear;
  dropout: Dropout;
  readonly numHeads: number;
  readonly headDim: number;
  constructor(
    config: RobertaConfig,
    rng: Generator = defaultGenerator,
    { kvDim = config.hiddenSize }: { kvDim?: number } = {},
  ) {
    super();
    this.numHeads = config.numAttentionHeads;
    this.headDim = config.hiddenSize / config.numAttentionHeads;
    this.query = new Linear(config.hiddenSize, config.hiddenSize, { rng });
    this.key = new Linear(kvDim, config.hiddenSize, { rng });
    this.value = new Linear(kvDim, config.hiddenSize, { rng });
    this.dropout = new Dropout(config.attentionProbsDropoutProb, rng);
  }

  private heads(x: tf.Tensor): tf.Tensor {
    const [B, L] = x.shape;
    return tf.transpose(tf.reshape(x, [B, L, this.numHeads, this.headDim]), [0, 2, 1, 3]);
  }

  /** hidden [B, L, H]; keyValue defaults to hidden (self-attention); mask additive, broadcastable to [B, heads, L, Lk]. */
  forward(hidden: tf.Tensor, mask?: tf.Tensor, keyValue: tf.Tensor = hidden): tf.Tensor {
    const [B, L] = hidden.shape;
    return tf.tidy(() => {
      const probsDropout = this.training && this.dropout.p > 0 ? (p: tf.Tensor) => this.dropout.forward(p) : undefined;
      const ctx = scaledDotProductAttention(
        this.heads(this.query.forward(hidden)),
        this.heads(this.key.forward(keyValue)),
        this.heads(this.value.forward(keyValue)),
        {
          mask,
          probsDropout,
        },
      );
      return tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [B, L, this.numHeads * this.headDim]);
    });
  }
}

export class RobertaSelfOutput extends Module {
  dense: Linear;
  LayerNorm: LayerNorm;
  dropout: Dropout;
  constructor(config: RobertaConfig, rng: Generator = defaultGenerator) {
    super();
    this.dense = new Linear(config.hiddenSize, config.hiddenSize, { rng });
    this.LayerNorm = new LayerNorm(config.hiddenSize, config.layerNormEps);
    this.dropout = new Dropout(config.hiddenDropoutProb, rng);
  }
  /** dense -> dropout (the part before the residual). */
  project(hidden: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.dropout.forward(this.dense.forward(hidden)));
  }
  forward(hidden: tf.Tensor, input: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.LayerNorm.forward(tf.add(this.project(hidden), input)));
  }
}

export class RobertaAttention extends Module {
  self: RobertaSelfAttention;
  output: RobertaSelfOutput;
  constructor(config: RobertaConfig, rng: Generator = defaultGenerator) {
    super();
    this.self = new RobertaSelfAttention(config, rng);
    this.output = new RobertaSelfOutput(config, rng);
  }
  forward(hidden: tf.Tensor, mask?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.output.forward(this.self.forward(hidden, mask), hidden));
  }
}

export class RobertaIntermediate extends Module {
  dense: Linear;
  constructor(config: RobertaConfig, rng: Generator = defaultGenerator) {
    super();
    this.dense = new Linear(config.hiddenSize, config.intermediateSize, { rng });
  }
  forward(hidden: tf.Tensor): tf.Tensor {
    return tf.tidy(() => gelu(this.dense.forward(hidden)));
  }
}

export class RobertaOutput extends Module {
  dense: Linear;
  LayerNorm: LayerNorm;
  dropout: Dropout;
  constructor(config: RobertaConfig, rng: Generator = defaultGenerator) {
    super();
    this.dense = new Linear(config.intermediateSize, config.hiddenSize, { rng });
    this.LayerNorm = new LayerNorm(config.hiddenSize, config.layerNormEps);
    this.dropout = new Dropout(config.hiddenDropoutProb, rng);
  }
  forward(hidden: tf.Tensor, input: tf.Tensor, { skipNorm = false } = {}): tf.Tensor {
    return tf.tidy(() => {
      const y = tf.add(this.dropout.forward(this.dense.forward(hidden)), input);
      return skipNorm ? y : this.LayerNorm.forward(y);
    });
  }
}

export interface LayerOptions<Ctx> {
  /** Passed to crossAttend (fusion: the other modality's states). */
  context?: Ctx;
  /** Skip the output LayerNorm (FIBER's last fused text layer). */
  skipOutputNorm?: boolean;
}

export class RobertaLayer<Ctx = never> extends Module {
  attention: RobertaAttention;
  /**
   * Optional extra attention owned by the layer (fusion), placed between `attention` and
   * `intermediate` in the state dict; subclasses name its key through `childNames`.
   */
  crossAttention?: Module;
  intermediate: RobertaIntermediate;
  output: RobertaOutput;
  constructor(
    config: RobertaConfig,
    rng: Generator = defaultGenerator,
    { crossAttention }: { crossAttention?: Module } = {},
  ) {
    super();
    this.attention = new RobertaAttention(config, rng);
    if (crossAttention) this.crossAttention = crossAttention;
    this.intermediate = new RobertaIntermediate(config, rng);
    this.output = new RobertaOutput(config, rng);
  }

  /** Hook for fusion on the projected self-attention output a [B, L, H], before residual + LayerNorm. */
  crossAttend(a: tf.Tensor, _context: Ctx | undefined): tf.Tensor {
    return a;
  }

  forward(hidden: tf.Tensor, mask?: tf.Tensor, { context, skipOutputNorm = false }: LayerOptions<Ctx> = {}): tf.Tensor {
    return tf.tidy(() => {
      const a = this.crossAttend(this.attention.output.project(this.attention.self.forward(hidden, mask)), context);
      const h1 = this.attention.output.LayerNorm.forward(tf.add(a, hidden));
      return this.output.forward(this.intermediate.forward(h1), h1, { skipNorm: skipOutputNorm });
    });
  }
}

export class RobertaEncoder<Ctx = never> extends Module {
  layer: ModuleList<RobertaLayer<Ctx>>;
  constructor(config: RobertaConfig, rng: Generator = defaultGenerator, layers?: RobertaLayer<Ctx>[]) {
    super();
    this.layer = new ModuleList(
      layers ?? Array.from({ length: config.numHiddenLayers }, () => new RobertaLayer<Ctx>(config, rng)),
    );
  }
}

export class RobertaPooler extends Module {
  dense: Linear;
  constructor(config: Pick<RobertaConfig, 'hiddenSize'>, rng: Generator = defaultGenerator) {
    super();
    this.dense = new Linear(config.hiddenSize, config.hiddenSize, { rng });
  }
  /** tanh(dense(hidden[:, 0])). */
  forward(hidden: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.tanh(this.dense.forward(tf.squeeze(tf.slice(hidden, [0, 0, 0], [-1, 1, -1]), [1]))));
  }
}

/** HF get_extended_attention_mask: [B, L] of 1/0 -> additive [B, 1, 1, L] of 0 / -10000. */
export function extendedAttentionMaskTensor(attentionMask: tf.Tensor): tf.Tensor {
  return tf.tidy(() =>
    tf.mul(tf.sub(1, tf.cast(tf.reshape(attentionMask, [attentionMask.shape[0], 1, 1, -1]), 'float32')), -10000),
  );
}

/** The running state between layers: hidden states [B, L, H] and the additive attention mask. */
export interface RobertaState {
  hidden: tf.Tensor;
  /** Additive mask broadcastable to [B, heads, L, L]: [B, 1, 1, L] (padding) or [B, 1, L, L] (causal). */
  mask: tf.Tensor;
}

export interface EmbedOptions {
  /** A ready additive mask [B or 1, 1, L or 1, L] (e.g. causal + padding) instead of `attentionMask`. */
  additiveMask?: tf.Tensor;
}

export interface RobertaOutputs {
  lastHiddenState: tf.Tensor;
  embeddings?: tf.Tensor;
  /** Output of every layer, when `collect` is set. */
  hiddenStates?: tf.Tensor[];
  pooled?: tf.Tensor;
}

export interface RobertaForwardOptions<Ctx> extends EmbedOptions {
  /** Keep the embeddings and every layer's output. */
  collect?: boolean;
  /** Per-layer options (fusion: the context a layer cross-attends to, its output-norm skip). */
  layerOptions?: (layer: number) => LayerOptions<Ctx> | undefined;
  /** Run the pooler when the model has one (default true). */
  pool?: boolean;
}

const shapeOf = (t: tf.Tensor) => `[${t.shape.join(', ')}]`;

export class RobertaModel<Ctx = never> extends Module {
  embeddings: RobertaEmbeddings;
  encoder: RobertaEncoder<Ctx>;
  pooler?: RobertaPooler;
  readonly config: RobertaConfig;

  /**
   * `layers`: the encoder's layers, built by the caller (fusion passes layers with cross-attention),
   * one per `numHiddenLayers`; they belong to the model once it is built (on an error they stay the
   * caller's). Default: plain RobertaLayers.
   */
  constructor(
    config: Partial<RobertaConfig> = {},
    {
      addPoolingLayer = true,
      rng = defaultGenerator,
      layers,
    }: { addPoolingLayer?: boolean; rng?: Generator; layers?: RobertaLayer<Ctx>[] } = {},
  ) {
    super();
    this.config = robertaConfig(config);
    if (layers !== undefined && (!Array.isArray(layers) || layers.length !== this.config.numHiddenLayers))
      throw new RangeError(
        Array.isArray(layers)
          ? `RobertaModel: layers has ${layers.length} entries for numHiddenLayers ${this.config.numHiddenLayers}`
          : `RobertaModel: layers must be a list of ${this.config.numHiddenLayers} RobertaLayers, got ${typeof layers}`,
      );
    this.embeddings = new RobertaEmbeddings(this.config, rng);
    this.encoder = new RobertaEncoder<Ctx>(this.config, rng, layers);
    if (addPoolingLayer) this.pooler = new RobertaPooler(this.config, rng);
  }

  /**
   * First step: checks `inputIds` [B, L] (int32) and `attentionMask` [B, L] of 1 (token) / 0
   * (padding; default all ones) or a ready `additiveMask`, and embeds the tokens.
   */
  embed(inputIds: tf.Tensor, attentionMask?: tf.Tensor, { additiveMask }: EmbedOptions = {}): RobertaState {
    const [B, L]: number[] = inputIds.shape;
    if (inputIds.rank !== 2 || B < 1 || L < 1)
      throw new RangeError(`RoBERTa: inputIds must be [B, L] with B, L >= 1, got ${shapeOf(inputIds)}`);
    if (inputIds.dtype !== 'int32')
      throw new TypeError(`RoBERTa: inputIds must be int32 token ids, got ${inputIds.dtype}`);
    if (attentionMask && (attentionMask.rank !== 2 || attentionMask.shape[0] !== B || attentionMask.shape[1] !== L)) {
      throw new RangeError(
        `RoBERTa: attentionMask ${shapeOf(attentionMask)} does not match inputIds ${shapeOf(inputIds)}`,
      );
    }
    if (additiveMask) {
      const [mb, mh, mq, mk] = additiveMask.shape;
      if (additiveMask.rank !== 4 || (mb !== B && mb !== 1) || mh !== 1 || (mq !== L && mq !== 1) || mk !== L) {
        throw new RangeError(
          `RoBERTa: additiveMask ${shapeOf(additiveMask)} is not broadcastable to [${B}, heads, ${L}, ${L}] (expected [${B} or 1, 1, ${L} or 1, ${L}])`,
        );
      }
    }
    return tidyOutput(() => ({
      hidden: this.embeddings.forward(inputIds),
      mask: additiveMask ? tf.clone(additiveMask) : extendedAttentionMaskTensor(attentionMask ?? tf.onesLike(inputIds)),
    }));
  }

  /** Runs layer `i`; the input state is not disposed. */
  layer(i: number, state: RobertaState, options?: LayerOptions<Ctx>): RobertaState {
    return { hidden: this.encoder.layer.at(i).forward(state.hidden, state.mask, options), mask: state.mask };
  }

  get numLayers(): number {
    return this.encoder.layer.length;
  }

  /** inputIds [B, L]; attentionMask [B, L] of 1 (token) / 0 (padding), default all ones. */
  forward(
    inputIds: tf.Tensor,
    attentionMask?: tf.Tensor,
    { collect = false, layerOptions, additiveMask, pool = true }: RobertaForwardOptions<Ctx> = {},
  ): RobertaOutputs {
    return tidyOutput(() => {
      let state = this.embed(inputIds, attentionMask, { additiveMask });
      const embeddings = state.hidden;
      const hiddenStates: tf.Tensor[] = [];
      for (let i = 0; i < this.numLayers; i++) {
        state = this.layer(i, state, layerOptions?.(i));
        if (collect) hiddenStates.push(state.hidden);
      }
      const out: RobertaOutputs = { lastHiddenState: state.hidden };
      if (collect) Object.assign(out, { embeddings, hiddenStates });
      if (this.pooler && pool) out.pooled = this.pooler.forward(state.hidden);
      return out;
    });
  }
}

/** HF RobertaLMHead: dense -> GELU -> layer_norm -> decoder (+ bias). */
export class RobertaLMHead extends Module {
  dense: Linear;
  layerNorm: LayerNorm;
  decoder: Linear;
  bias: Parameter;
  constructor(config: RobertaConfig, rng: Generator = defaultGenerator) {
    super();
    this.dense = new Linear(config.hiddenSize, config.hiddenSize, { rng });
    this.layerNorm = new LayerNorm(config.hiddenSize, config.layerNormEps);
    this.decoder = new Linear(config.hiddenSize, config.vocabSize, { bias: false, rng });
    this.bias = new Parameter(init.constant([config.vocabSize], 0));
  }
  forward(hidden: tf.Tensor): tf.Tensor {
    return tf.tidy(() =>
      tf.add(this.decoder.forward(this.layerNorm.forward(gelu(this.dense.forward(hidden)))), this.bias.value),
    );
  }
}
