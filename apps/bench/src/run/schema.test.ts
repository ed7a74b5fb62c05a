import { describe, expect, it } from 'vitest';
import { TASK_IDS, VQA_TYPE_IDS, validateResults } from './schema.js';

// The smallest results.json the schema accepts: two seeds, one entry in each list (the run test
// checks a file the main job produced; this one checks every rule the checker names).
type Entry = Record<string, unknown>;

function valid() {
  const pair = { ownImage: 0.5, otherImage: 0.25 };
  return {
    backend: 'wasm',
    preset: 'micro',
    seconds: 12.5,
    seeds: [0, 1],
    tasks: TASK_IDS.map((task) => ({
      task,
      metric: 'accuracy',
      value: 0.5,
      baseline: 0.1,
      higherIsBetter: true,
      seeds: [0.4, 0.6],
    })) as Entry[],
    ablations: [
      {
        name: '(c) ITC only',
        task: 'retrieval',
        metric: 't2i R@1',
        with: 0.1,
        without: 0.2,
        difference: -0.1,
        spread: 0.01,
        withinNoise: false,
        seeds: [
          { seed: 0, with: 0.1, without: 0.2 },
          { seed: 1, with: 0.1, without: 0.2 },
        ],
      },
    ] as Entry[],
    probes: [
      { model: 'image pre-training', stride: 8, attribute: 'shape', accuracy: 0.3, chance: 0.2, seeds: [0.3, 0.3] },
    ],
    mlmProbes: [
      { model: 'coarse pre-training', attribute: 'colour', words: 10, ...pair, chance: 0.125, seeds: [pair, pair] },
    ],
    classProbes: [
      {
        class: 'star',
        heldOut: true,
        images: 20,
        coarseItc: 0.4,
        fineDetector: 0.3,
        objectCount: 0.35,
        chance: 0.3,
        seeds: [
          { coarseItc: 0.4, fineDetector: 0.3 },
          { coarseItc: 0.4, fineDetector: 0.3 },
        ],
        singleObject: null as null | Entry,
      },
    ],
    vqaTypes: [
      { type: 'count', questions: 12, majorityAnswer: '1', ...pair, majority: 0.5, seeds: [pair, pair] },
    ] as Entry[],
  };
}

describe('validateResults', () => {
  it('accepts a valid file, single-object counts or not', () => {
    expect(validateResults(valid())).toEqual([]);
    const r = valid();
    r.classProbes[0].singleObject = { images: 3, coarseItc: 1, fineDetector: 0 };
    expect(validateResults(r)).toEqual([]);
  });

  it('names the field of every broken rule, in the order of the file', () => {
    const r = valid();
    r.seconds = 0;
    r.tasks[1].task = 'ocr';
    r.tasks[2].seeds = [0.5];
    r.ablations[0].withinNoise = 'no';
    r.probes[0].stride = 0;
    r.mlmProbes[0].words = 2.5;
    r.classProbes[0].singleObject = { images: 0, coarseItc: 0.5, fineDetector: 0.5 };
    r.classProbes[0].seeds[1] = { coarseItc: 1.5, fineDetector: 0 };
    r.vqaTypes[0].majorityAnswer = 1;
    (r.vqaTypes as unknown[]).push('count');
    expect(validateResults(r)).toEqual([
      'seconds: must be a positive number',
      `tasks[1].task: must be one of ${TASK_IDS.join(', ')}`,
      'tasks[2].seeds: must hold 2 finite numbers',
      'tasks: no entry for task "caption"',
      'ablations[0].withinNoise: must be a boolean',
      'probes[0].stride: must be a positive integer',
      'mlmProbes[0].words: must be a positive integer',
      'classProbes[0].seeds: must hold 2 { coarseItc, fineDetector } entries in [0, 1]',
      'classProbes[0].singleObject: must be null or { images: a positive integer, coarseItc and fineDetector in [0, 1] }',
      'vqaTypes[0].majorityAnswer: must be a string',
      'vqaTypes[1]: not an object',
    ]);
    expect(VQA_TYPE_IDS).toContain(r.vqaTypes[0].type);
  });

  it('names a missing or wrong-typed list, and a file that is not an object', () => {
    expect(validateResults(null)).toEqual(['results: not an object']);
    expect(validateResults([])).toEqual(['results: not an object']);
    const { probes: _, ...r } = valid();
    expect(validateResults({ ...r, ablations: [], vqaTypes: {} })).toEqual([
      'ablations: must be a non-empty list',
      'probes: must be a list',
      'vqaTypes: must be a list',
    ]);
  });

  it('checks the seed count against the run seeds', () => {
    const r = { ...valid(), seeds: [0, 1, 2] };
    const errors = validateResults(r);
    expect(errors).toContain('tasks[0].seeds: must hold 3 finite numbers');
    expect(errors).toContain('ablations[0].seeds: must hold 3 { seed, with, without } entries');
    expect(errors).toContain('probes[0].seeds: must hold 3 numbers in [0, 1]');
    expect(errors).toContain('mlmProbes[0].seeds: must hold 3 { ownImage, otherImage } entries in [0, 1]');
    expect(errors).toContain('vqaTypes[0].seeds: must hold 3 { ownImage, otherImage } entries in [0, 1]');
    expect(validateResults({ ...valid(), seeds: [0.5] })[0]).toBe('seeds: must be a list of integers');
  });
});
