// matchFiberCheckpoint against the official FIBER state dicts (fixtures/fiber/keys, from the
// official code): each coarse task checkpoint at 384 / 576 px and the fine-grained v2 / v3 are
// recognised exactly, with their heads; what differs is named; the shipped tables are current.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { matchFiberCheckpoint, type FiberCheckpointMatch } from './match.js';

const root = join(__dirname, '../../..');
const keysDir = join(root, 'fixtures/fiber/keys');

describe('matching the official FIBER state dicts', () => {
  /** Rows of a key TSV as {name, shape}. */
  const table = (file: string) =>
    readFileSync(join(keysDir, file), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#') && !l.startsWith('key\t'))
      .map((l) => l.split('\t'))
      .map(([name, shape, , present]) => ({
        name,
        shape: shape.startsWith('[')
          ? (JSON.parse(shape) as number[])
          : shape === 'scalar'
            ? []
            : shape.split('x').map(Number),
        present: present.split(','),
      }));
  const coarse384 = table('state_dict_keys_coarse.tsv');
  const coarse576 = table('state_dict_keys_coarse_576.tsv');
  const fine = table('state_dict_keys_fine.tsv');
  const QUEUES = [
    'image_queue',
    'text_queue',
    'image_input_queue',
    'text_input_queue',
    'text_input_mask_queue',
    'queue_ptr',
    'queue_total',
  ];

  it('the committed key tables are generated from fixtures/fiber/keys', () => {
    const r = spawnSync(process.execPath, [join(root, 'scripts/fixtures/make_fiber_key_tables.mjs'), '--check'], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it.each([
    ['pretrain', 384, []],
    ['vqa', 576, ['vqa']],
    ['nlvr2', 384, ['nlvr2']],
    ['caption', 576, ['mlm', 'caption']],
    ['irtr_itc', 576, ['itc']],
    ['irtr_itm', 384, ['itm']],
  ] as const)('coarse %s at %d px: exact, with its heads', (task, size, heads) => {
    const rows = (size === 384 ? coarse384 : coarse576).filter((r) => r.present.includes(task));
    const m = matchFiberCheckpoint(rows);
    expect(m).toMatchObject({
      verdict: 'exact',
      kind: 'coarse',
      task,
      imageSize: size,
      missing: [],
      extra: [],
      shapeMismatches: [],
    });
    if (task === 'pretrain') expect(m.heads).toEqual(['itc', 'itm', 'mlm']);
    else expect(m.heads).toEqual(heads);
    // the ITC queues (training state the official loader drops) may be absent
    expect(matchFiberCheckpoint(rows.filter((r) => !QUEUES.includes(r.name))).verdict).toBe('exact');
  });

  it('a 384-px checkpoint is told from a 576-px one by its relative-position tables, and names what differs', () => {
    const rows = coarse384.filter((r) => r.present.includes('vqa'));
    const m: FiberCheckpointMatch = matchFiberCheckpoint(
      rows
        .map((r) => (r.name === 'vqa_classifier.3.weight' ? { ...r, shape: [10, 1536] } : r))
        .filter((r) => r.name !== 'temp'),
    );
    expect(m).toMatchObject({ verdict: 'same-keys', imageSize: 384, task: 'vqa', vqaAnswers: 10 });
    expect(m.shapeMismatches).toEqual([{ name: 'vqa_classifier.3.weight', shape: [10, 1536], expected: [3129, 1536] }]);
    expect(matchFiberCheckpoint(coarse576.filter((r) => r.present.includes('vqa'))).imageSize).toBe(576);
  });

  it('fine-grained v2 and v3 (v3 adds 12 norm_i2t_i tensors), also with the "module." prefix of official .pth files', () => {
    const v2 = fine.filter((r) => r.present.includes('v2'));
    expect(fine.length - v2.length).toBe(12);
    expect(matchFiberCheckpoint(v2)).toMatchObject({ verdict: 'exact', kind: 'fine', version: 'v2' });
    const v3 = matchFiberCheckpoint(fine.map((r) => ({ ...r, name: `module.${r.name}` })));
    expect(v3).toMatchObject({ verdict: 'exact', kind: 'fine', version: 'v3', strippedPrefix: 'module.' });
    const partial = matchFiberCheckpoint([...fine.slice(1), { name: 'extra.weight', shape: [3] }]);
    expect(partial).toMatchObject({
      verdict: 'closest',
      version: 'v3',
      missing: [fine[0].name],
      extra: ['extra.weight'],
    });
    expect(matchFiberCheckpoint([{ name: 'model.embed_tokens.weight', shape: [32000, 4096] }]).verdict).toBe('none');
  });
});
