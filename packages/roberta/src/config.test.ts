import { describe, expect, it } from 'vitest';
import {
  createPositionIds,
  extendedAttentionMask,
  maxInputLength,
  robertaConfig,
  validateRobertaConfig,
} from './config.js';

describe('RoBERTa config', () => {
  it('defaults to roberta-base', () => {
    const c = robertaConfig();
    expect([c.vocabSize, c.hiddenSize, c.numHiddenLayers, c.maxPositionEmbeddings, c.layerNormEps]).toEqual([
      50265, 768, 12, 514, 1e-5,
    ]);
    expect(() => robertaConfig({ numAttentionHeads: 7 })).toThrow(/RobertaConfig.numAttentionHeads/);
  });
  it('rejects configs that would fail later, naming the field', () => {
    expect(() => robertaConfig({ hiddenDropoutProb: 1 })).toThrow(
      'RobertaConfig.hiddenDropoutProb: must be in [0, 1), got 1',
    );
    expect(() => robertaConfig({ vocabSize: 2 })).toThrow(
      'RobertaConfig.eosTokenId: 2 is not a token id of the 2-token vocabulary',
    );
    expect(() => robertaConfig({ maxPositionEmbeddings: 2 })).toThrow(
      /RobertaConfig.maxPositionEmbeddings: 2 leaves no position/,
    );
    expect(() => robertaConfig({ numHiddenLayers: 1.5 })).toThrow(
      'RobertaConfig.numHiddenLayers: must be a positive integer, got 1.5',
    );
    const json = (over: Record<string, unknown>) =>
      JSON.parse(JSON.stringify({ ...robertaConfig(), ...over }).replace('"INF"', '1e999'));
    expect(() => validateRobertaConfig(json({ layerNormEps: 'INF' }))).toThrow(
      'RobertaConfig.layerNormEps: must be a finite number > 0, got Infinity',
    );
    expect(() => validateRobertaConfig(json({ hiddenDropoutProb: '0.1' }))).toThrow(
      'RobertaConfig.hiddenDropoutProb: must be in [0, 1), got 0.1',
    );
    expect(() => validateRobertaConfig(JSON.parse('null'))).toThrow('RobertaConfig: expected an object, got null');
    expect(maxInputLength(robertaConfig())).toBe(512);
  });
  it('position ids start at padding_idx + 1 and padding keeps padding_idx', () => {
    expect(createPositionIds([[0, 31414, 232, 2, 1, 1]])).toEqual([[2, 3, 4, 5, 1, 1]]);
    expect(createPositionIds([[0, 1, 5, 2]])).toEqual([[2, 1, 3, 4]]);
  });
  it('padding mask is -10000 on padded positions', () => {
    expect(extendedAttentionMask([[1, 1, 0]])).toEqual([[0, 0, -10000]]);
  });
});

describe('robertaConfigFromHf', () => {
  it('reads a HF config.json and names an unsupported activation', async () => {
    const { robertaConfigFromHf } = await import('./config.js');
    const c = robertaConfigFromHf({
      vocab_size: 300,
      hidden_size: 32,
      num_attention_heads: 4,
      layer_norm_eps: 1e-5,
      hidden_act: 'gelu',
    });
    expect([c.vocabSize, c.hiddenSize, c.numHiddenLayers]).toEqual([300, 32, 12]);
    expect(() => robertaConfigFromHf({ hidden_act: 'relu' })).toThrow(/hidden_act "relu" is not supported/);
  });
});
