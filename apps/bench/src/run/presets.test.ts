import { describe, expect, it } from 'vitest';
import { RUN_PRESETS, type RunPreset, runPreset, validateRunPreset } from './presets.js';

describe('run presets', () => {
  it.each(Object.keys(RUN_PRESETS))('%s is valid', (name) => {
    expect(runPreset(name).name).toBe(name);
  });

  it('refuses an unknown preset by name', () => {
    expect(() => runPreset('huge')).toThrow(/--preset: unknown preset "huge" \(expected micro, small, base\)/);
    expect(() => runPreset('constructor')).toThrow(/unknown preset/);
  });

  const broken = (patch: (p: RunPreset) => void): RunPreset => {
    const p = structuredClone(RUN_PRESETS.small);
    patch(p);
    return p;
  };

  it.each([
    [
      'fine.lrMultOutputs',
      (p: RunPreset) => (p.fine.lrMultOutputs = 0),
      /RunPreset\(small\)\.fine\.lrMultOutputs: must be a positive number, got 0/,
    ],
    [
      'fine.imageLabelWeight',
      (p: RunPreset) => (p.fine.imageLabelWeight = -1),
      /fine\.imageLabelWeight: must be a positive number, got -1/,
    ],
    ['vqa.lrMultHead', (p: RunPreset) => (p.vqa.lrMultHead = Number.NaN), /vqa\.lrMultHead: must be a positive number/],
    ['caption.steps', (p: RunPreset) => (p.caption.steps = 1.5), /caption\.steps: must be a positive integer/],
    ['coarse.lr', (p: RunPreset) => (p.coarse.lr = 2), /coarse\.lr: must be in \(0, 1\)/],
    ['evalScenes', (p: RunPreset) => (p.evalScenes = 10_000), /evalScenes: 10000 exceeds world\.test/],
    ['model.imageSize', (p: RunPreset) => (p.model.imageSize = 48), /model\.imageSize: must be a multiple of 32/],
    ['imageScenes', (p: RunPreset) => (p.imageScenes = 100), /imageScenes: 100 is under world\.train 3000/],
    [
      'retrievalItm.batchSize',
      (p: RunPreset) => (p.retrievalItm.batchSize = 0),
      /retrievalItm\.batchSize: must be a positive integer/,
    ],
    [
      'retrieval.negatives',
      (p: RunPreset) => (p.retrieval.negatives = 24),
      /retrieval\.negatives: 24 exceeds the other scenes of a step \(3 x retrievalItm\.batchSize - 1 = 23\)/,
    ],
    ['retrieval.negatives', (p: RunPreset) => (p.retrieval.negatives = 0), /retrieval\.negatives: must be a positive/],
  ])('names the bad field: %s', (_, patch, message) => {
    expect(() => validateRunPreset(broken(patch))).toThrow(message);
  });
});
