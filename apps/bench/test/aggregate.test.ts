// The seeds' probes averaged by the main job: entry k of every seed, checked to be the same probe.
import { describe, expect, it } from 'vitest';
import {
  aggregateAblations,
  aggregateClassProbes,
  aggregateMlmProbes,
  aggregateProbes,
  aggregateTasks,
  aggregateVqaTypes,
} from '../src/run/main.js';
import { marginVerdict, strictFailure } from '../src/run/report.js';
import type { SeedResult } from '../src/run/seed.js';

const seed = (n: number, accuracy: number, own: number, words = 10): SeedResult => ({
  seed: n,
  seconds: 1,
  tasks: [],
  ablations: [],
  probes: [{ model: 'm', stride: 8, attribute: 'shape', accuracy, chance: 0.2 }],
  mlmProbes: [{ model: 'm', attribute: 'colour', words, ownImage: own, otherImage: 0.1, chance: 0.125 }],
  classProbes: [
    {
      class: 'star',
      heldOut: true,
      images: words,
      coarseItc: own,
      fineDetector: 0.25,
      objectCount: 0.4,
      chance: 0.32,
      singleObject: { images: 3, coarseItc: own, fineDetector: 0 },
    },
  ],
  vqaTypes: [
    { type: 'shape', questions: words, ownImage: own, otherImage: 0.2, majorityAnswer: 'circle', majority: 0.17 },
  ],
  losses: [],
  stages: [],
  gallery: [],
  world: {},
});

describe('probe aggregation over seeds', () => {
  it('averages each probe over the seeds and keeps the per-seed values', () => {
    const results = [seed(0, 0.4, 0.3), seed(1, 0.6, 0.5)];
    expect(aggregateProbes(results)).toEqual([
      { model: 'm', stride: 8, attribute: 'shape', accuracy: 0.5, seeds: [0.4, 0.6], chance: 0.2 },
    ]);
    const [mlm] = aggregateMlmProbes(results);
    expect(mlm.ownImage).toBeCloseTo(0.4, 12);
    expect(mlm.otherImage).toBeCloseTo(0.1, 12);
    expect(mlm.seeds).toEqual([
      { ownImage: 0.3, otherImage: 0.1 },
      { ownImage: 0.5, otherImage: 0.1 },
    ]);
    const [cls] = aggregateClassProbes(results);
    expect(cls).toMatchObject({
      class: 'star',
      heldOut: true,
      images: 10,
      objectCount: 0.4,
      chance: 0.32,
      fineDetector: 0.25,
    });
    expect(cls.coarseItc).toBeCloseTo(0.4, 12);
    expect(cls.singleObject?.images).toBe(3);
    expect(cls.singleObject?.coarseItc).toBeCloseTo(0.4, 12);
    expect(cls.seeds).toEqual([
      { coarseItc: 0.3, fineDetector: 0.25 },
      { coarseItc: 0.5, fineDetector: 0.25 },
    ]);
    const [vqa] = aggregateVqaTypes(results);
    expect(vqa).toMatchObject({ type: 'shape', questions: 10, majorityAnswer: 'circle', majority: 0.17 });
    expect(vqa.ownImage).toBeCloseTo(0.4, 12);
    expect(vqa.otherImage).toBeCloseTo(0.2, 12);
    expect(vqa.seeds).toEqual([
      { ownImage: 0.3, otherImage: 0.2 },
      { ownImage: 0.5, otherImage: 0.2 },
    ]);
  });

  it('names a seed whose probes do not line up', () => {
    expect(() => aggregateMlmProbes([seed(0, 0.4, 0.3), seed(1, 0.6, 0.5, 11)])).toThrow(
      'seed 1: MLM probe 0 is m/colour/11 words, expected m/colour/10 words',
    );
    expect(() => aggregateVqaTypes([seed(0, 0.4, 0.3), seed(1, 0.6, 0.5, 11)])).toThrow(
      'seed 1: VQA type 0 is shape/11 questions/majority "circle" 0.17, expected shape/10 questions/majority "circle" 0.17',
    );
    expect(() => aggregateClassProbes([seed(0, 0.4, 0.3), seed(1, 0.6, 0.5, 11)])).toThrow(
      'seed 1: class probe 0 is star (held out)/11 images/object count 0.4/chance 0.32/single-object images 3, expected star (held out)/10 images/object count 0.4/chance 0.32/single-object images 3',
    );
    const short = { ...seed(1, 0.6, 0.5), probes: [] };
    expect(() => aggregateProbes([seed(0, 0.4, 0.3), short])).toThrow('seed 1: 0 probes, seed 0 1');
  });
});

describe('task and ablation aggregation over seeds', () => {
  const task = (value: number, baseline = 0.3) => ({
    task: 'vqa',
    metric: 'accuracy',
    value,
    baseline,
    higherIsBetter: true,
  });
  const ablation = (name: string, w: number) => ({ name, task: 'vqa', metric: 'accuracy', with: w, without: 0.2 });
  const withRows = (n: number, tasks: SeedResult['tasks'], ablations: SeedResult['ablations']): SeedResult => ({
    ...seed(n, 0.5, 0.5),
    tasks,
    ablations,
  });

  it('averages a task over the seeds, and refuses seeds whose baselines differ (one test split)', () => {
    const [t] = aggregateTasks([withRows(0, [task(0.4)], []), withRows(1, [task(0.6)], [])]);
    expect(t).toMatchObject({ value: 0.5, seeds: [0.4, 0.6], baseline: 0.3 });
    expect(() => aggregateTasks([withRows(0, [task(0.4)], []), withRows(1, [task(0.6, 0.31)], [])])).toThrow(
      "seed 1: vqa accuracy's baseline is 0.31, seed 0's 0.3",
    );
  });

  it('pairs ablation k of every seed, and refuses seeds whose lists do not line up', () => {
    const [a] = aggregateAblations([withRows(0, [], [ablation('(b)', 0.4)]), withRows(1, [], [ablation('(b)', 0.6)])]);
    expect(a).toMatchObject({ with: 0.5, without: 0.2, seeds: [{ seed: 0 }, { seed: 1 }] });
    expect(() =>
      aggregateAblations([withRows(0, [], [ablation('(b)', 0.4)]), withRows(1, [], [ablation('(c)', 0.6)])]),
    ).toThrow('seed 1: ablation 0 is (c) vqa/accuracy, expected (b) vqa/accuracy');
    expect(() => aggregateAblations([withRows(0, [], [ablation('(b)', 0.4)]), withRows(1, [], [])])).toThrow(
      'seed 1: ablation 0 is missing',
    );
  });

  it('names the rows under the margin, and those a seed of which is under it', () => {
    const rows = aggregateTasks([
      withRows(0, [task(0.32), task(0.33), task(0.5)], []),
      withRows(1, [task(0.36), task(0.43), task(0.5)], []),
    ]).map((t, i) => ({ ...t, metric: `m${i}` }));
    expect(marginVerdict(rows, [0, 1])).toEqual([
      'NOT clearly above baseline (mean margin < 0.05): vqa m0',
      "above on the mean, but a seed's margin is under 0.05: vqa m1 (seed 0: 0.030)",
    ]);
    // --strict judges the mean only
    expect(strictFailure(rows)).toBe('--strict: 1 task row is under the 0.05 margin: vqa m0');
    expect(strictFailure(rows.slice(1))).toBeUndefined();
    expect(strictFailure([rows[0], { ...rows[0], metric: 'm9' }])).toBe(
      '--strict: 2 task rows are under the 0.05 margin: vqa m0; vqa m9',
    );
  });
});
