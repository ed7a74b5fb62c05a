// RoBERTa (Liu et al. 2019) with the module tree of HF transformers' modeling_roberta.py, read top to
// bottom in the order data flows: Embeddings -> SelfAttention -> SelfOutput -> Attention ->
// Intermediate -> Output -> Layer -> Encoder -> Pooler -> Model -> LM head. Property names give
// the HF state-dict keys (embeddings.word_embeddings.weight, encoder.layer.3.attention.self.query.weight, ...).
//
// Extension point for fusion: RobertaLayer.crossAttend(a, context) receives the self-attention
// output after its dense projection and before the residual + LayerNorm (where FIBER adds its
// gated text->image attention); the plain model returns `a`. A layer can also skip its final
// LayerNorm (FIBER's last fused layer). A model built without fusion has exactly the HF keys.
import { Buffer, Dropout, Embedding, LayerNorm, Linear, Module, ModuleList, Parameter, defaultGenerator, gelu, init, scaledDotProductAttention, tf, type Generator } from '@fiber-vl/tensor-core';
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
    this.positionIds = new Buffer(tf.reshape(tf.range(0, config.maxPositionEmbeddings, 1, 'int32'), [1, -1]));
    this.wordEmbeddings = new Embedding(config.vocabSize, config.hiddenSize, { paddingIdx: config.padTokenId, rng });
    this.positionEmbeddings = new Embedding(config.maxPositionEmbeddings, config.hiddenSize, { paddingIdx: config.padTokenId, rng });
    this.tokenTypeEmbeddings = new Embedding(config.typeVocabSize, config.hiddenSize, { rng });
    this.LayerNorm = new LayerNorm(config.hiddenSize, config.layerNormEps);
    this.dropout = new Dropout(config.hiddenDropoutProb, rng);
  }

  /** ids [B, L] (int32) -> [B, L, H]. Positions count real tokens from padding_idx + 1; pads get padding_idx. */
  forward(inputIds: tf.Tensor, tokenTypeIds?: tf.Tensor): tf.Tensor {
    const pad = this.config.padTokenId;
    const L = inputIds.shape[1]!;
    if (L + pad + 1 > this.config.maxPositionEmbeddings) {
      throw new RangeError(`RoBERTa: ${L} tokens need position ids up to ${L + pad}, but maxPositionEmbeddings is ${this.config.maxPositionEmbeddings}`);
    }
    return tf.tidy(() => {
      const ids = tf.cast(inputIds, 'int32');
      const real = tf.cast(tf.notEqual(ids, pad), 'int32');
      const positions = tf.add(tf.mul(tf.cumsum(real, 1), real), pad);
      const types = tokenTypeIds ?? tf.zerosLike(ids);
      const e = tf.add(tf.add(this.wordEmbeddings.forward(ids), this.tokenTypeEmbeddings.forward(types)), this.positionEmbeddings.forward(positions));
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
  constructor(config: RobertaConfig, rng: Generator = defaultGenerator, { kvDim = config.hiddenSize }: { kvDim?: number } = {}) {
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
      const ctx = scaledDotProductAttention(this.heads(this.query.forward(hidden)), this.heads(this.key.forward(keyValue)), this.heads(this.value.forward(keyValue)), { mask });
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

export interface LayerOptions {
  /** Passed to crossAttend (fusion: the other modality's states). */
  context?: unknown;
  /** Skip the output LayerNorm (FIBER's last fused text layer). */
  skipOutputNorm?: boolean;
}

export class RobertaLayer extends Module {
  attention: RobertaAttention;
  /**
   * Optional extra attention owned by the layer (fusion), placed between `attention` and
   * `intermediate` in the state dict; subclasses name its key through `childNames`.
   */
  crossAttention?: Module;
  intermediate: RobertaIntermediate;
  output: RobertaOutput;
  constructor(config: RobertaConfig, rng: Generator = defaultGenerator, { crossAttention }: { crossAttention?: Module } = {}) {
    super();
    this.attention = new RobertaAttention(config, rng);
    if (crossAttention) this.crossAttention = crossAttention;
    this.intermediate = new RobertaIntermediate(config, rng);
    this.output = new RobertaOutput(config, rng);
  }

  /** Hook for fusion on the projected self-attention output a [B, L, H], before residual + LayerNorm. */
  crossAttend(a: tf.Tensor, _context: unknown): tf.Tensor {
    return a;
  }

  forward(hidden: tf.Tensor, mask?: tf.Tensor, { context, skipOutputNorm = false }: LayerOptions = {}): tf.Tensor {
    return tf.tidy(() => {
      const a = this.crossAttend(this.attention.output.project(this.attention.self.forward(hidden, mask)), context);
      const h1 = this.attention.output.LayerNorm.forward(tf.add(a, hidden));
      return this.output.forward(this.intermediate.forward(h1), h1, { skipNorm: skipOutputNorm });
    });
  }
}

export class RobertaEncoder extends Module {
  layer: ModuleList<RobertaLayer>;
  constructor(config: RobertaConfig, rng: Generator = defaultGenerator, layers?: RobertaLayer[]) {
    super();
    this.layer = new ModuleList(layers ?? Array.from({ length: config.numHiddenLayers }, () => new RobertaLayer(config, rng)));
  }
}

export class RobertaPooler extends Module {
  dense: Linear;
  constructor(config: RobertaConfig, rng: Generator = defaultGenerator) {
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
  return tf.tidy(() => tf.mul(tf.sub(1, tf.cast(tf.reshape(attentionMask, [attentionMask.shape[0], 1, 1, -1]), 'float32')), -10000));
}

export interface RobertaOutputs {
  lastHiddenState: tf.Tensor;
  embeddings?: tf.Tensor;
  /** Output of every layer, when `collect` is set. */
  hiddenStates?: tf.Tensor[];
  pooled?: tf.Tensor;
}

export class RobertaModel extends Module {
  embeddings: RobertaEmbeddings;
  encoder: RobertaEncoder;
  pooler?: RobertaPooler;
  readonly config: RobertaConfig;

  constructor(config: Partial<RobertaConfig> = {}, { addPoolingLayer = true, rng = defaultGenerator, layers }: { addPoolingLayer?: boolean; rng?: Generator; layers?: RobertaLayer[] } = {}) {
    super();
    this.config = robertaConfig(config);
    this.embeddings = new RobertaEmbeddings(this.config, rng);
    this.encoder = new RobertaEncoder(this.config, rng, layers);
    if (addPoolingLayer) this.pooler = new RobertaPooler(this.config, rng);
  }

  /** inputIds [B, L]; attentionMask [B, L] of 1 (token) / 0 (padding), default all ones. */
  forward(inputIds: tf.Tensor, attentionMask?: tf.Tensor, { collect = false }: { collect?: boolean } = {}): RobertaOutputs {
    return tf.tidy(() => {
      const mask = extendedAttentionMaskTensor(attentionMask ?? tf.onesLike(inputIds));
      const embeddings = this.embeddings.forward(inputIds);
      let h = embeddings;
      const hiddenStates: tf.Tensor[] = [];
      for (const layer of this.encoder.layer) {
        h = layer.forward(h, mask);
        if (collect) hiddenStates.push(h);
      }
      const out: RobertaOutputs = { lastHiddenState: h };
      if (collect) Object.assign(out, { embeddings, hiddenStates });
      if (this.pooler) out.pooled = this.pooler.forward(h);
      return out as unknown as tf.TensorContainer;
    }) as unknown as RobertaOutputs;
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
    return tf.tidy(() => tf.add(this.decoder.forward(this.layerNorm.forward(gelu(this.dense.forward(hidden)))), this.bias.value));
  }
}
