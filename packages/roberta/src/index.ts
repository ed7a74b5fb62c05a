export {
  ROBERTA_BASE,
  robertaConfig,
  validateRobertaConfig,
  maxInputLength,
  robertaConfigFromHf,
  createPositionIds,
  extendedAttentionMask,
  type RobertaConfig,
} from './config.js';
export {
  RobertaModel,
  RobertaEmbeddings,
  RobertaSelfAttention,
  RobertaSelfOutput,
  RobertaAttention,
  RobertaIntermediate,
  RobertaOutput,
  RobertaLayer,
  RobertaEncoder,
  RobertaPooler,
  RobertaLMHead,
  extendedAttentionMaskTensor,
  type RobertaOutputs,
  type RobertaState,
  type RobertaForwardOptions,
  type EmbedOptions,
  type LayerOptions,
} from './modeling.js';
export {
  ByteLevelBpeTokenizer,
  ROBERTA_SPECIAL_TOKENS,
  MAX_PADDED_LENGTH,
  type SpecialTokens,
  type EncodeOptions,
  type Encoding,
} from './tokenizer.js';
export { trainByteLevelBpe, mergesToText, type BpeTrainOptions, type BpeModel } from './bpe-train.js';
