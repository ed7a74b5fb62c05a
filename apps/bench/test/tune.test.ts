// `fiber-bench tune`: the grid, the --set values, the ranking, and a micro run of each stage.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RUN_PRESETS } from '../src/run/presets.js';
import { stopWhileSeedsRun } from './stop-seeds.js';
import { decodeSeedResult, encodeSeedResult } from '../src/run/seed-processes.js';
import {
  decodeSeedRows,
  FINE_SCORING,
  type TuneResult,
  gridOf,
  parseSets,
  rankRows,
  withSettings,
} from '../src/run/tune.js';

const cli = resolve(__dirname, '../dist/cli.js');

describe('fiber-bench tune: the grid', () => {
  it('is every combination of the --set values, the first field slowest; none set is the preset itself', () => {
    expect(gridOf(parseSets('fine', ['steps=300,450', 'lrMultOutputs=50,100']))).toEqual([
      { steps: 300, lrMultOutputs: 50 },
      { steps: 300, lrMultOutputs: 100 },
      { steps: 450, lrMultOutputs: 50 },
      { steps: 450, lrMultOutputs: 100 },
    ]);
    expect(gridOf({})).toEqual([{}]);
    expect(parseSets('fusion', ['lr=.5e-4,2E-4,1.'])).toEqual({ lr: [0.5e-4, 2e-4, 1] });
  });

  it('puts a point in the stage it tunes, checked as a preset', () => {
    const small = RUN_PRESETS.small;
    const p = withSettings(small, 'fine', { steps: 450, fineImageSize: 64 });
    expect(p.fine).toEqual({ ...small.fine, steps: 450 });
    expect(p.fineImageSize).toBe(64);
    expect(p.fusionAblation).toBe(small.fusionAblation);
    expect(withSettings(small, 'fusion', { lr: 1e-4 }).fusionAblation).toEqual({ ...small.fusionAblation, lr: 1e-4 });
    // imageLabelWeight 0: the fine stage without image-level labels (the field left out)
    expect(parseSets('fine', ['imageLabelWeight=0,8'])).toEqual({ imageLabelWeight: [0, 8] });
    const unlabelled = withSettings(small, 'fine', { imageLabelWeight: 0 }).fine;
    expect(unlabelled).toEqual({ ...small.fine, imageLabelWeight: undefined });
    expect(Object.hasOwn(unlabelled, 'imageLabelWeight')).toBe(false);
    expect(withSettings(small, 'fine', { imageLabelWeight: 4 }).fine.imageLabelWeight).toBe(4);
    expect(() => withSettings(small, 'fine', { batchSize: 2.5 })).toThrow(
      'RunPreset(small).fine.batchSize: must be a positive integer up to 4096, got 2.5',
    );
  });

  it.each([
    ['steps', /expected FIELD=V1,V2,\.\.\./],
    ['depth=2', /fine has no field "depth"/],
    ['steps=1,,2', /"" is not a positive decimal number/],
    ['lr=-1', /"-1" is not a positive decimal number/],
    ['steps=0x10', /"0x10" is not a positive decimal number/],
    ['steps= 3', /" 3" is not a positive decimal number/],
    ['steps=2,2', /a value is repeated/],
    ['steps=0', /"0" is not a positive decimal number/],
    ['imageLabelWeight=-1', /"-1" is not a non-negative decimal number/],
  ])('refuses --set %s', (set, message) => {
    expect(() => parseSets('fine', [set])).toThrow(message);
  });

  it('refuses a field set twice', () => {
    expect(() => parseSets('fusion', ['lr=1e-4', 'lr=2e-4'])).toThrow('--set lr=2e-4: lr is set twice');
  });

  it('ranks the points by the rows that clear the margin, then the mean margin, over the seeds', () => {
    const m = (rec: number, ap50: number, seconds: number) => ({
      rec,
      'rec baseline': 0.4,
      'grounding R@1': 0.6,
      'grounding R@1 baseline': 0.5,
      'AP50 seen': ap50,
      'AP50 seen baseline': 0.2,
      'AP50 held-out': 0.1,
      'AP50 held-out baseline': 0.2,
      // a metric without a baseline is reported, not judged
      'phrases per scene': 9,
      seconds,
    });
    const rows = rankRows(
      [{ steps: 300 }, { steps: 450 }, { steps: 600 }],
      [
        [m(0.55, 0.4, 10), m(0.6, 0.4, 15), m(0.9, 0.22, 20)],
        [m(0.45, 0.4, 12), m(0.6, 0.3, 17), m(0.9, 0.22, 22)],
      ],
      FINE_SCORING,
    );
    // 600 has the best mean margin (REC far ahead) but AP50 seen under the margin: 2 rows, not 3
    expect(rows.map((r) => [r.settings.steps, r.cleared])).toEqual([
      [450, 3],
      [300, 3],
      [600, 2],
    ]);
    expect(rows[0].metrics.rec).toBeCloseTo(0.6, 12);
    expect(rows[1].perSeed.map((s) => s.rec)).toEqual([0.55, 0.45]);
    expect(rows[0].perSeed[0]).not.toHaveProperty('seconds');
    expect(rows[0].seconds).toBe(16);
    // (0.2 + 0.1 + 0.15 - 0.1) / 4
    expect(rows[0].score).toBeCloseTo(0.0875, 12);
    expect(rows[2].score).toBeGreaterThan(rows[0].score);
    expect(rows[0].metrics['phrases per scene']).toBe(9);
  });
});

describe('fiber-bench tune: the rows of a seed process', () => {
  it('come back as they were written, NaN and the infinities too (JSON alone gives null)', () => {
    const rows = [
      { a: 0.5, b: Number.NaN },
      { a: Number.POSITIVE_INFINITY, b: Number.NEGATIVE_INFINITY },
    ];
    expect(decodeSeedRows(3, decodeSeedResult(encodeSeedResult(rows)), 2)).toEqual(rows);
    // a run's seed result too, nested; an object that only looks like the tag is kept
    const result = { tasks: [{ value: Number.NaN, seeds: [1, 2] }], note: { $nonFinite: 'x' }, s: 'NaN' };
    expect(decodeSeedResult(encodeSeedResult(result))).toEqual(result);
    expect(JSON.parse(JSON.stringify(rows))[0].b).toBeNull();
  });

  it.each([
    [{ rows: [] }, 1, "seed 7: the seed process's result is not a list of 1 rows"],
    [[{ a: 1 }], 2, 'is not a list of 2 rows'],
    [[null], 1, 'row 0 is not an object'],
    [[[1]], 1, 'row 0 is not an object'],
    [[{ a: 1 }, { a: 'NaN' }], 2, 'row 1: "a" is not a number'],
    [[{ a: null }], 1, 'row 0: "a" is not a number'],
  ])('refuses a result that is not one row of numbers per point: %j', (value, points, message) => {
    expect(() => decodeSeedRows(7, value, points)).toThrow(message);
  });
});

describe('fiber-bench tune --preset micro', () => {
  const tuneRun = (args: string[]) => {
    const dir = mkdtempSync(join(tmpdir(), 'fiber-tune-'));
    try {
      const out = join(dir, 'tune.json');
      const r = spawnSync(process.execPath, [cli, 'tune', ...args, '--out', out], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect(r.status, r.stderr.slice(-2000)).toBe(0);
      const result: TuneResult = JSON.parse(readFileSync(out, 'utf8'));
      return { ...r, result };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const withoutSeconds = (r: TuneResult) => r.rows.map(({ seconds: _, ...row }) => row);

  /** A ranked table of two points, each evaluated on val on every seed. */
  const expectRows = (stage: string, seeds: number[], metric: string, r: ReturnType<typeof tuneRun>) => {
    expect(r.result).toMatchObject({ stage, preset: 'micro', seed: 0, seeds, split: 'val' });
    expect(r.result.rows).toHaveLength(2);
    expect(r.result.rows[0].score).toBeGreaterThanOrEqual(r.result.rows[1].score);
    for (const row of r.result.rows) {
      expect(Number.isFinite(row.metrics[metric])).toBe(true);
      expect(row.perSeed).toHaveLength(seeds.length);
      expect(row.seconds).toBeGreaterThan(0);
    }
    expect(r.stdout.split('\n')[0]).toContain(`| score | seconds |`);
    expect(r.stdout.trim().split('\n')).toHaveLength(4);
    for (const seed of seeds) expect(r.stderr).toMatch(new RegExp(`\\[seed ${seed}\\] point 2/2 \\(`));
    // each point evaluated on val (the stage names say which split)
    expect(r.stderr).toMatch(stage === 'fine' ? /point 1\/2 .* val eval done/ : /late fusion .* eval \(val\) done/);
  };

  it('fine: trains each point on each seed, evaluates on val, the same rows with the seeds at once or in turn', () => {
    // with and without image-level labels (0: the stage's prompts list the seen classes only)
    const args = ['fine', '--preset', 'micro', '--seeds', '2', '--set', 'imageLabelWeight=0,8'];
    const atOnce = tuneRun([...args, '--jobs', '2']);
    expectRows('fine', [0, 1], 'grounding R@1', atOnce);
    // ranked by the run's seven rows of the stage, each with its baseline
    expect(Object.keys(atOnce.result.rows[0].metrics)).toEqual([
      'rec accuracy (IoU>=0.5)',
      'rec accuracy (IoU>=0.5) baseline',
      'grounding R@1',
      'grounding R@1 baseline',
      'grounding R@5',
      'grounding R@5 baseline',
      'detection AP (seen classes)',
      'detection AP (seen classes) baseline',
      'detection AP50 (seen classes)',
      'detection AP50 (seen classes) baseline',
      'detection AP (held-out classes)',
      'detection AP (held-out classes) baseline',
      'detection AP50 (held-out classes)',
      'detection AP50 (held-out classes) baseline',
    ]);
    expect(atOnce.stdout.split('\n')[2]).toMatch(/^\| \d+ \| [0-7]\/7 \| /);
    expect(atOnce.stderr).toContain('training seeds 0, 1, wasm, 2 at once, 2 point(s)');
    const inTurn = tuneRun([...args, '--jobs', '1']);
    expect(inTurn.stderr).toContain('training seeds 0, 1, wasm, 1 at once, 2 point(s)');
    expect(withoutSeconds(inTurn.result)).toEqual(withoutSeconds(atOnce.result));
    // each seed's values land in its own column: seed 1's process alone gives the second
    const dir = mkdtempSync(join(tmpdir(), 'fiber-tune-child-'));
    try {
      const file = join(dir, 'seed-1.json');
      const r = spawnSync(process.execPath, [cli, 'tune', ...args, '--child-seed', '1', '--child-result', file], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect(r.status, r.stderr.slice(-2000)).toBe(0);
      const seed1 = decodeSeedRows(1, JSON.parse(readFileSync(file, 'utf8')), 2);
      for (const [k, weight] of [0, 8].entries()) {
        const { seconds: _, ...values } = seed1[k];
        expect(atOnce.result.rows.find((row) => row.settings.imageLabelWeight === weight)?.perSeed[1]).toEqual(values);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fusion: trains each point, evaluates on val, prints and writes the ranked rows', () => {
    const r = tuneRun(['fusion', '--preset', 'micro', '--seeds', '1', '--set', 'lr=1e-3,2e-3']);
    expectRows('fusion', [0], 'VQA late fusion', r);
  });

  // ps --ppid: Linux's ps
  it.skipIf(process.platform !== 'linux')(
    'stops its seed processes on SIGTERM and exits 143, writing nothing',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'fiber-tune-stop-'));
      try {
        const out = join(dir, 'tune.json');
        const args = ['tune', 'fine', '--preset', 'micro', '--seed', '77', '--seeds', '2', '--jobs', '2', '--out', out];
        const r = await stopWhileSeedsRun(args, [77, 78], 'SIGTERM');
        expect(r.children).toHaveLength(2);
        expect(r.code).toBe(143);
        expect(r.stderr).toContain('fiber-bench tune: SIGTERM: stopped the seed processes');
        expect(r.alive).toEqual([]);
        expect(existsSync(out)).toBe(false);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    120_000,
  );

  it.each([
    [['coarse'], 'unknown stage "coarse" (expected fine or fusion)'],
    [
      ['fine', '--set', 'batchSize=2.5'],
      '--set: RunPreset(small).fine.batchSize: must be a positive integer up to 4096, got 2.5',
    ],
    [['fusion', '--out', tmpdir()], `--out ${tmpdir()} is a folder, not a file`],
    [['fine', '--seeds', '99999999999'], '--seeds: expected an integer in [1, 64], got "99999999999"'],
    [['fine', '--jobs', '0'], '--jobs: expected an integer in [1, 64], got "0"'],
    [['fine', '--jobs', '99'], '--jobs: expected an integer in [1, 64], got "99"'],
    [
      ['fine', '--seed', '4294967295', '--seeds', '2'],
      '--seed 4294967295 with --seeds 2: the training seeds run to 4294967296, past the largest seed, 2^32 - 1 (4294967295)',
    ],
    [['fine', '--child-seed', '1'], '--child-seed and --child-result (a seed process of tune) go together'],
    [
      ['fine', '--set', 'fineImageSize=100000000'],
      '--set: RunPreset(small).fineImageSize: must be an integer in [32, 4096], got 100000000',
    ],
    [
      [
        'fine',
        '--set',
        'steps=1,2,3,4,5,6,7,8,9,10',
        '--set',
        'batchSize=1,2,3,4,5,6,7,8,9,10',
        '--set',
        'lr=.1,.2,.3',
      ],
      '--set: 300 points, more than 256',
    ],
  ])('bad usage is one line and exit 2, before anything trains: %j', (args, message) => {
    const r = spawnSync(process.execPath, [cli, 'tune', ...args], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`fiber-bench tune: ${message} (fiber-bench tune --help)\n`);
  });
});
