import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonFilesIn, loadMeteorResources, readJson, runFixtures } from './node.js';

describe('the fixture runner (fiber-metrics fixtures)', () => {
  it('passes every check of the copied public fixtures', () => {
    const dir = join(__dirname, '../test/fixtures');
    const checks = runFixtures(
      jsonFilesIn(dir).map((f) => [f, readJson(f)]),
      { meteor: loadMeteorResources() },
    );
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(new Set(checks.map((c) => c.file)).size).toBe(8);
    expect(checks.length).toBeGreaterThanOrEqual(40);
  });
  it('fails a fixture file of unknown name (it would otherwise pass unchecked)', () => {
    const checks = runFixtures([['dir/retrieval_v2.json', { cases: [] }]]);
    expect(checks).toHaveLength(1);
    expect(checks[0]).toMatchObject({ file: 'retrieval_v2.json', check: 'not a known fixture file', ok: false });
  });
  it('reports a wrong expectation as a failure with its error', () => {
    const checks = runFixtures([
      [
        'rec.json',
        {
          cases: [{ gt_box_xywh: [0, 0, 10, 10], pred_boxes_xywh_ranked: [[0, 0, 10, 10]], top1_iou: 0.5 }],
          expected: { accuracy: 1, n: 1 },
        },
      ],
    ]);
    expect(checks[0]).toMatchObject({ check: 'top-1 IoU per case', ok: false, maxError: 0.5 });
  });
});
