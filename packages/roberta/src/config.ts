/** RoBERTa hyper-parameters with the HF `roberta-base/config.json` defaults (fiber-spec §1.1). */
export interface RobertaConfig {
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  hiddenDropoutProb: number;
  attentionProbsDropoutProb: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  layerNormEps: number;
  padTokenId: number;
  bosTokenId: number;
  eosTokenId: number;
}

export const ROBERTA_BASE: Readonly<RobertaConfig> = Object.freeze({
  vocabSize: 50265,
  hiddenSize: 768,
  numHiddenLayers: 12,
  numAttentionHeads: 12,
  intermediateSize: 3072,
  hiddenDropoutProb: 0.1,
  attentionProbsDropoutProb: 0.1,
  maxPositionEmbeddings: 514,
  typeVocabSize: 1,
  layerNormEps: 1e-5,
  padTokenId: 1,
  bosTokenId: 0,
  eosTokenId: 2,
});

export function robertaConfig(overrides: Partial<RobertaConfig> = {}): RobertaConfig {
  const cfg = { ...ROBERTA_BASE, ...overrides };
  if (cfg.hiddenSize % cfg.numAttentionHeads) {
    throw new RangeError(`RobertaConfig.numAttentionHeads: hiddenSize ${cfg.hiddenSize} is not divisible by ${cfg.numAttentionHeads} heads`);
  }
  return cfg;
}

/** A RobertaConfig from a HF `config.json` object (snake_case fields; missing ones keep roberta-base's). */
export function robertaConfigFromHf(json: Record<string, unknown>): RobertaConfig {
  const n = (key: string) => (typeof json[key] === 'number' ? (json[key] as number) : undefined);
  const picked: Partial<RobertaConfig> = {
    vocabSize: n('vocab_size'),
    hiddenSize: n('hidden_size'),
    numHiddenLayers: n('num_hidden_layers'),
    numAttentionHeads: n('num_attention_heads'),
    intermediateSize: n('intermediate_size'),
    hiddenDropoutProb: n('hidden_dropout_prob'),
    attentionProbsDropoutProb: n('attention_probs_dropout_prob'),
    maxPositionEmbeddings: n('max_position_embeddings'),
    typeVocabSize: n('type_vocab_size'),
    layerNormEps: n('layer_norm_eps'),
    padTokenId: n('pad_token_id'),
    bosTokenId: n('bos_token_id'),
    eosTokenId: n('eos_token_id'),
  };
  if (json.hidden_act !== undefined && json.hidden_act !== 'gelu') throw new RangeError(`RobertaConfig: hidden_act "${json.hidden_act}" is not supported (only the exact-erf "gelu")`);
  return robertaConfig(Object.fromEntries(Object.entries(picked).filter(([, v]) => v !== undefined)));
}

/**
 * RoBERTa position ids (HF create_position_ids_from_input_ids): padding tokens get paddingIdx,
 * real tokens count up from paddingIdx + 1: pos = cumsum(ids != pad) * (ids != pad) + pad.
 */
export function createPositionIds(inputIds: readonly (readonly number[])[], paddingIdx = ROBERTA_BASE.padTokenId): number[][] {
  return inputIds.map((row) => {
    let count = 0;
    return row.map((id) => (id === paddingIdx ? paddingIdx : paddingIdx + ++count));
  });
}

/** HF's extended attention mask: (1 - mask) * -10000, as transformers 4.6 builds it. */
export function extendedAttentionMask(attentionMask: readonly (readonly number[])[]): number[][] {
  return attentionMask.map((row) => row.map((m) => (1 - m) * -10000 + 0)); // + 0 turns -0 into 0
}
