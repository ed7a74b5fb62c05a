// `fiber-bench metrics`: the stage report keeps its documented shape, and `--json` prints only JSON.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { METRICS_STAGES, runMetricsBench } from '../src/metrics.js';

const cli = join(__dirname, '../dist/cli.js');

describe('fiber-bench metrics', () => {
  it('times every stage and reports the documented fields', () => {
    const lines: string[] = [];
    const r = runMetricsBench({ images: 30, repeat: 2, log: (l) => lines.push(l) });
    expect(r.command).toBe('metrics');
    expect(r.schemaVersion).toBe(1);
    expect(r.stages.map((s) => s.name)).toEqual([...METRICS_STAGES]);
    for (const s of r.stages) {
      expect(s.runs).toHaveLength(2);
      expect(s.seconds).toBeGreaterThanOrEqual(0);
      expect(s.cpuSeconds).toBeGreaterThanOrEqual(0);
      expect(s.peakRssMb).toBeGreaterThan(0);
    }
    expect(['stage', 'process']).toContain(r.memory);
    expect(Object.keys(r.machine).sort()).toEqual([
      'cores',
      'cpu',
      'loadAverage',
      'node',
      'platform',
      'release',
      'totalMemoryMb',
    ]);
    expect(r.config).toEqual({ images: 30, refsPerImage: 5, repeat: 2 });
    expect(Object.keys(r.captioning.corpus)).toEqual([
      'BLEU_1',
      'BLEU_2',
      'BLEU_3',
      'BLEU_4',
      'ROUGE_L',
      'CIDEr_D',
      'METEOR_no_paraphrase',
    ]);
    expect(r.captioning.corpus.CIDEr_D).toBeGreaterThan(0);
    expect(r.cocoeval.stats.AP).toBeGreaterThan(0);
    expect(r.cocoeval.detections).toBe(3000);
    expect(lines.some((l) => l.includes('COCOeval summarize'))).toBe(true);
  });

  it('--json prints only the JSON report on stdout, progress on stderr; --export-captions writes scorer input', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fiber-bench-metrics-'));
    const exported = join(dir, 'captions.json');
    const r = spawnSync(process.execPath, [cli, 'metrics', '--images', '12', '--json', '--export-captions', exported], {
      encoding: 'utf8',
      cwd: dir,
    });
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.stages.map((s: { name: string }) => s.name)).toEqual([...METRICS_STAGES]);
    expect(r.stderr).toContain('tokenize');
    const { gts, res } = JSON.parse(readFileSync(exported, 'utf8'));
    expect(Object.keys(gts)).toHaveLength(12);
    expect(gts['0']).toHaveLength(5);
    expect(res['0']).toHaveLength(1);
    expect(res['0'][0]).toBe(res['0'][0].toLowerCase());
  });

  it.each([
    ['--images', '0'],
    ['--repeat', '1.5'],
  ])('rejects %s %s as bad usage (exit 2)', (option, value) => {
    const r = spawnSync(process.execPath, [cli, 'metrics', option, value, '--json'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${option}: expected an integer >= 1, got "${value}"`);
  });
});
