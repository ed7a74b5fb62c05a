// `fiber-bench tune`: the grid, the --set values, the ranking, and a micro run of each stage.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RUN_PRESETS } from '../src/run/presets.js';
import { type TuneResult, fineScore, gridOf, parseSets, rankRows, withSettings } from '../src/run/tune.js';

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
  });

  it('puts a point in the stage it tunes, checked as a preset', () => {
    const small = RUN_PRESETS.small;
    const p = withSettings(small, 'fine', { steps: 450, fineImageSize: 64 });
    expect(p.fine).toEqual({ ...small.fine, steps: 450 });
    expect(p.fineImageSize).toBe(64);
    expect(p.fusionAblation).toBe(small.fusionAblation);
    expect(withSettings(small, 'fusion', { lr: 1e-4 }).fusionAblation).toEqual({ ...small.fusionAblation, lr: 1e-4 });
    expect(() => withSettings(small, 'fine', { batchSize: 2.5 })).toThrow(
      'RunPreset(small).fine.batchSize: must be a positive integer, got 2.5',
    );
  });

  it.each([
    ['steps', /expected FIELD=V1,V2,\.\.\./],
    ['depth=2', /fine has no field "depth"/],
    ['steps=1,,2', /"" is not a positive number/],
    ['lr=-1', /"-1" is not a positive number/],
    ['steps=2,2', /a value is repeated/],
  ])('refuses --set %s', (set, message) => {
    expect(() => parseSets('fine', [set])).toThrow(message);
  });

  it('refuses a field set twice', () => {
    expect(() => parseSets('fusion', ['lr=1e-4', 'lr=2e-4'])).toThrow('--set lr=2e-4: lr is set twice');
  });

  it('ranks the points by the score of their mean over seeds, best first', () => {
    const m = (rec: number, ap50: number) => ({
      rec,
      'rec floor': 0.4,
      'grounding R@1': 0.6,
      'grounding floor': 0.5,
      'AP50 seen': ap50,
      'AP50 seen floor': 0.2,
      'AP50 held-out': 0.1,
      'AP50 held-out floor': 0.2,
    });
    const rows = rankRows(
      [{ steps: 300 }, { steps: 450 }],
      [
        [m(0.5, 0.4), m(0.6, 0.4)],
        [m(0.4, 0.4), m(0.5, 0.3)],
      ],
      fineScore,
    );
    expect(rows.map((r) => r.settings.steps)).toEqual([450, 300]);
    expect(rows[0].metrics.rec).toBeCloseTo(0.55, 12);
    expect(rows[0].perSeed.map((s) => s.rec)).toEqual([0.6, 0.5]);
    // (0.15 + 0.1 + 0.15 - 0.1) / 4
    expect(rows[0].score).toBeCloseTo(0.075, 12);
  });
});

describe('fiber-bench tune --preset micro', () => {
  it.each([
    ['fine', ['--set', 'steps=2,4'], 'grounding R@1'],
    ['fusion', ['--set', 'lr=1e-3,2e-3'], 'VQA late fusion'],
  ])('%s: trains each point on one seed, evaluates on val, prints and writes the ranked rows', (stage, set, metric) => {
    const dir = mkdtempSync(join(tmpdir(), 'fiber-tune-'));
    try {
      const out = join(dir, 'tune.json');
      const r = spawnSync(
        process.execPath,
        [cli, 'tune', stage, '--preset', 'micro', '--seeds', '1', ...set, '--out', out],
        { encoding: 'utf8', timeout: 120_000 },
      );
      expect(r.status, r.stderr.slice(-2000)).toBe(0);
      const result: TuneResult = JSON.parse(readFileSync(out, 'utf8'));
      expect(result).toMatchObject({ stage, preset: 'micro', seed: 0, seeds: [0], split: 'val' });
      expect(result.rows).toHaveLength(2);
      expect(result.rows[0].score).toBeGreaterThanOrEqual(result.rows[1].score);
      for (const row of result.rows) expect(Number.isFinite(row.metrics[metric])).toBe(true);
      expect(r.stdout.split('\n')[0]).toContain(`| score |`);
      expect(r.stdout.trim().split('\n')).toHaveLength(4);
      expect(r.stderr).toMatch(/\[seed 0\] point 2\/2 \(/);
      expect(r.stderr).toMatch(/val eval|late fusion/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bad usage is one line and exit 2', () => {
    const r = spawnSync(process.execPath, [cli, 'tune', 'coarse'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      'fiber-bench tune: unknown stage "coarse" (expected fine or fusion) (fiber-bench tune --help)\n',
    );
  });
});
