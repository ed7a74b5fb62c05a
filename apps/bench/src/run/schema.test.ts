import { describe, expect, it } from 'vitest';
import { MLM_PROBE_ATTRIBUTE_IDS, PROBE_ATTRIBUTE_IDS, TASK_IDS, VQA_TYPE_IDS, validateResults } from './schema.js';

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
      clearMargin: true,
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
    ] as Entry[],
    mlmProbes: [
      { model: 'coarse pre-training', attribute: 'colour', words: 10, ...pair, chance: 0.125, seeds: [pair, pair] },
    ] as Entry[],
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
        singleObject: null,
      },
    ] as Entry[],
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
    r.classProbes[0].seeds = [
      { coarseItc: 0.5, fineDetector: 0 },
      { coarseItc: 1.5, fineDetector: 0 },
    ];
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
  });

  // One broken value at a time: [what is changed, the change, the one error it must give].
  type Results = ReturnType<typeof valid>;
  const fraction = (v: unknown) => `must be a number in [0, 1], got ${JSON.stringify(v)}`;
  const finite = (v: unknown) => `must be a finite number, got ${JSON.stringify(v)}`;
  const rules: [string, (r: Results) => void, string][] = [
    ['backend', (r) => Object.assign(r, { backend: 3 }), 'backend: must be a string'],
    ['preset', (r) => Object.assign(r, { preset: null }), 'preset: must be a string'],
    ['seconds', (r) => Object.assign(r, { seconds: Number.NaN }), 'seconds: must be a positive number'],
    ['a seed not an integer', (r) => Object.assign(r, { seeds: [0, 0.5] }), 'seeds: must be a list of integers'],
    ['task metric', (r) => (r.tasks[0].metric = ''), 'tasks[0].metric: must be a non-empty string'],
    ['task value', (r) => (r.tasks[0].value = Number.POSITIVE_INFINITY), `tasks[0].value: ${finite(null)}`],
    ['task baseline', (r) => (r.tasks[0].baseline = '0.1'), `tasks[0].baseline: ${finite('0.1')}`],
    ['higherIsBetter', (r) => (r.tasks[0].higherIsBetter = 1), 'tasks[0].higherIsBetter: must be a boolean'],
    ['clearMargin missing', (r) => delete r.tasks[0].clearMargin, 'tasks[0].clearMargin: must be a boolean'],
    [
      'clearMargin against the margin',
      (r) => (r.tasks[0].baseline = 0.48),
      'tasks[0].clearMargin: must say whether the margin (0.020000000000000018) reaches 0.05',
    ],
    ['task seed', (r) => (r.tasks[0].seeds = [0.1, null]), 'tasks[0].seeds: must hold 2 finite numbers'],
    ['task entry', (r) => (r.tasks as unknown[]).push(7), 'tasks[7]: not an object'],
    ['ablation name', (r) => (r.ablations[0].name = 5), 'ablations[0].name: must be a non-empty string'],
    ['ablation task', (r) => delete r.ablations[0].task, 'ablations[0].task: must be a non-empty string'],
    ['ablation metric', (r) => (r.ablations[0].metric = ''), 'ablations[0].metric: must be a non-empty string'],
    ['ablation with', (r) => (r.ablations[0].with = 'x'), `ablations[0].with: ${finite('x')}`],
    ['ablation without', (r) => delete r.ablations[0].without, `ablations[0].without: ${finite(undefined)}`],
    ['difference', (r) => (r.ablations[0].difference = null), `ablations[0].difference: ${finite(null)}`],
    ['spread', (r) => (r.ablations[0].spread = [0]), `ablations[0].spread: ${finite([0])}`],
    [
      'ablation seed',
      (r) =>
        (r.ablations[0].seeds = [
          { seed: 0.5, with: 0, without: 0 },
          { seed: 1, with: 0, without: 0 },
        ]),
      'ablations[0].seeds: must hold 2 { seed, with, without } entries',
    ],
    ['probe model', (r) => (r.probes[0].model = ''), 'probes[0].model: must be a non-empty string'],
    [
      'probe attribute',
      (r) => (r.probes[0].attribute = 'weight'),
      `probes[0].attribute: must be one of ${PROBE_ATTRIBUTE_IDS.join(', ')}`,
    ],
    ['probe accuracy', (r) => (r.probes[0].accuracy = -0.1), `probes[0].accuracy: ${fraction(-0.1)}`],
    ['probe chance', (r) => (r.probes[0].chance = 2), `probes[0].chance: ${fraction(2)}`],
    ['probe seed', (r) => (r.probes[0].seeds = [0.3, 1.3]), 'probes[0].seeds: must hold 2 numbers in [0, 1]'],
    ['MLM model', (r) => delete r.mlmProbes[0].model, 'mlmProbes[0].model: must be a non-empty string'],
    [
      'MLM attribute',
      (r) => (r.mlmProbes[0].attribute = 'size'),
      `mlmProbes[0].attribute: must be one of ${MLM_PROBE_ATTRIBUTE_IDS.join(', ')}`,
    ],
    ['MLM own', (r) => (r.mlmProbes[0].ownImage = 1.01), `mlmProbes[0].ownImage: ${fraction(1.01)}`],
    ['MLM other', (r) => (r.mlmProbes[0].otherImage = '0'), `mlmProbes[0].otherImage: ${fraction('0')}`],
    ['MLM chance', (r) => delete r.mlmProbes[0].chance, `mlmProbes[0].chance: ${fraction(undefined)}`],
    [
      'MLM seed',
      (r) => (r.mlmProbes[0].seeds = [{ ownImage: 0.5 }, { ownImage: 0.5, otherImage: 0.5 }]),
      'mlmProbes[0].seeds: must hold 2 { ownImage, otherImage } entries in [0, 1]',
    ],
    ['class', (r) => (r.classProbes[0].class = ''), 'classProbes[0].class: must be a non-empty string'],
    ['heldOut', (r) => (r.classProbes[0].heldOut = 'yes'), 'classProbes[0].heldOut: must be a boolean'],
    ['class images', (r) => (r.classProbes[0].images = 0), 'classProbes[0].images: must be a positive integer'],
    ['class ITC', (r) => (r.classProbes[0].coarseItc = 3), `classProbes[0].coarseItc: ${fraction(3)}`],
    [
      'class detector',
      (r) => delete r.classProbes[0].fineDetector,
      `classProbes[0].fineDetector: ${fraction(undefined)}`,
    ],
    ['class count', (r) => (r.classProbes[0].objectCount = -1), `classProbes[0].objectCount: ${fraction(-1)}`],
    ['class chance', (r) => (r.classProbes[0].chance = null), `classProbes[0].chance: ${fraction(null)}`],
    [
      'class seed',
      (r) => (r.classProbes[0].seeds = [{ coarseItc: 0.1, fineDetector: 0.1 }]),
      'classProbes[0].seeds: must hold 2 { coarseItc, fineDetector } entries in [0, 1]',
    ],
    ...(
      [
        ['missing', undefined],
        ['images 2.5', { images: 2.5, coarseItc: 0, fineDetector: 0 }],
        ['ITC share', { images: 2, coarseItc: 2, fineDetector: 0 }],
        ['detector share', { images: 2, coarseItc: 0 }],
      ] as const
    ).map(
      ([what, single]) =>
        [
          `single object ${what}`,
          (r: Results) => (r.classProbes[0].singleObject = single as Entry),
          'classProbes[0].singleObject: must be null or { images: a positive integer, coarseItc and fineDetector in [0, 1] }',
        ] as [string, (r: Results) => void, string],
    ),
    ['VQA type', (r) => (r.vqaTypes[0].type = 'why'), `vqaTypes[0].type: must be one of ${VQA_TYPE_IDS.join(', ')}`],
    ['questions', (r) => (r.vqaTypes[0].questions = -3), 'vqaTypes[0].questions: must be a positive integer'],
    ['majority answer', (r) => delete r.vqaTypes[0].majorityAnswer, 'vqaTypes[0].majorityAnswer: must be a string'],
    ['VQA own', (r) => (r.vqaTypes[0].ownImage = Number.NaN), `vqaTypes[0].ownImage: ${fraction(null)}`],
    ['VQA other', (r) => (r.vqaTypes[0].otherImage = true), `vqaTypes[0].otherImage: ${fraction(true)}`],
    ['majority', (r) => (r.vqaTypes[0].majority = 1.5), `vqaTypes[0].majority: ${fraction(1.5)}`],
    [
      'VQA seed',
      (r) =>
        (r.vqaTypes[0].seeds = [
          { ownImage: 0, otherImage: -1 },
          { ownImage: 0, otherImage: 0 },
        ]),
      'vqaTypes[0].seeds: must hold 2 { ownImage, otherImage } entries in [0, 1]',
    ],
  ];
  it.each(rules)('one broken rule, one error: %s', (_, breakIt, error) => {
    const r = valid();
    breakIt(r);
    expect(validateResults(r)).toEqual([error]);
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
    expect(errors).toContain('classProbes[0].seeds: must hold 3 { coarseItc, fineDetector } entries in [0, 1]');
    expect(errors).toContain('vqaTypes[0].seeds: must hold 3 { ownImage, otherImage } entries in [0, 1]');
    expect(errors).toHaveLength(TASK_IDS.length + 5);
    expect(validateResults({ ...valid(), seeds: [0.5] })[0]).toBe('seeds: must be a list of integers');
    expect(validateResults({ ...valid(), seeds: [] })[0]).toBe('seeds: must be a list of integers');
  });
});
