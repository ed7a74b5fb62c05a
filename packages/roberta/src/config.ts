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

/** roberta-base with overrides, validated. */
export function robertaConfig(overrides: Partial<RobertaConfig> = {}): RobertaConfig {
  return validateRobertaConfig({ ...ROBERTA_BASE, ...overrides });
}

/** Throws a RangeError naming the field for a config that would fail later. */
export function validateRobertaConfig(cfg: RobertaConfig): RobertaConfig {
  const bad = (field: keyof RobertaConfig, why: string): never => {
    throw new RangeError(`RobertaConfig.${field}: ${why}`);
  };
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg))
    throw new RangeError(
      `RobertaConfig: expected an object, got ${cfg === null ? 'null' : Array.isArray(cfg) ? 'a list' : typeof cfg}`,
    );
  // typeof first: a JSON config's "0.1" or 1e999 (Infinity) passes a bare comparison
  const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  for (const field of [
    'vocabSize',
    'hiddenSize',
    'numHiddenLayers',
    'numAttentionHeads',
    'intermediateSize',
    'maxPositionEmbeddings',
    'typeVocabSize',
  ] as const) {
    const v = cfg[field];
    if (!Number.isInteger(v) || v < 1) bad(field, `must be a positive integer, got ${v}`);
  }
  if (cfg.hiddenSize % cfg.numAttentionHeads)
    bad('numAttentionHeads', `hiddenSize ${cfg.hiddenSize} is not divisible by ${cfg.numAttentionHeads} heads`);
  for (const field of ['hiddenDropoutProb', 'attentionProbsDropoutProb'] as const) {
    if (!finite(cfg[field]) || !(cfg[field] >= 0 && cfg[field] < 1))
      bad(field, `must be in [0, 1), got ${String(cfg[field])}`);
  }
  if (!finite(cfg.layerNormEps) || !(cfg.layerNormEps > 0))
    bad('layerNormEps', `must be a finite number > 0, got ${String(cfg.layerNormEps)}`);
  for (const field of ['padTokenId', 'bosTokenId', 'eosTokenId'] as const) {
    if (!Number.isInteger(cfg[field]) || cfg[field] < 0 || cfg[field] >= cfg.vocabSize)
      bad(field, `${cfg[field]} is not a token id of the ${cfg.vocabSize}-token vocabulary`);
  }
  if (cfg.maxPositionEmbeddings < cfg.padTokenId + 2) {
    bad(
      'maxPositionEmbeddings',
      `${cfg.maxPositionEmbeddings} leaves no position for a token (positions start at padTokenId + 1 = ${cfg.padTokenId + 1})`,
    );
  }
  return cfg;
}

/** The longest input RoBERTa can embed: positions run from padTokenId + 1 to maxPositionEmbeddings - 1. */
export function maxInputLength(cfg: Pick<RobertaConfig, 'maxPositionEmbeddings' | 'padTokenId'>): number {
  return cfg.maxPositionEmbeddings - cfg.padTokenId - 1;
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
  if (json.hidden_act !== undefined && json.hidden_act !== 'gelu')
    throw new RangeError(`RobertaConfig: hidden_act "${json.hidden_act}" is not supported (only the exact-erf "gelu")`);
  return robertaConfig(Object.fromEntries(Object.entries(picked).filter(([, v]) => v !== undefined)));
}

/**
 * RoBERTa position ids (HF create_position_ids_from_input_ids): padding tokens get paddingIdx,
 * real tokens count up from paddingIdx + 1: pos = cumsum(ids != pad) * (ids != pad) + pad.
 */
export function createPositionIds(
  inputIds: readonly (readonly number[])[],
  paddingIdx = ROBERTA_BASE.padTokenId,
): number[][] {
  return inputIds.map((row) => {
    let count = 0;
    return row.map((id) => (id === paddingIdx ? paddingIdx : paddingIdx + ++count));
  });
}

/** HF's extended attention mask: (1 - mask) * -10000, as transformers 4.6 builds it. */
export function extendedAttentionMask(attentionMask: readonly (readonly number[])[]): number[][] {
  return attentionMask.map((row) => row.map((m) => (1 - m) * -10000 + 0)); // + 0 turns -0 into 0
}
