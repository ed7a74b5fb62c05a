// `fiber-bench train`: every task for two steps on the built-in world with the micro model, a run
// resumed from its last-but-one checkpoint ending bit for bit where the uninterrupted run ended,
// --init from a finished run, the committed sample folders in the public layouts, and hostile
// arguments (one line on stderr, exit 2).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, serializeSafetensors } from '@fiber-vl/tensor-core';
import { fiberConfig } from '@fiber-vl/fusion';
import { mergesToText, trainByteLevelBpe } from '@fiber-vl/roberta';

const cli = resolve(__dirname, '../dist/cli.js');
const DATA = resolve(__dirname, '../../../fixtures/data');
let work: string;

function train(args: string[]) {
  const r = spawnSync(process.execPath, [cli, 'train', '--backend', 'cpu', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A tokenizer folder (vocab.json + merges.txt) of a BPE's merges and the given vocabulary. */
function writeTokenizer(
  dir: string,
  vocab: Record<string, number>,
  merges: readonly (readonly [string, string])[],
): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab));
  writeFileSync(join(dir, 'merges.txt'), mergesToText(merges));
}

const steps = (dir: string) =>
  readFileSync(join(dir, 'log.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { step?: number; losses?: Record<string, number>; checkpoint?: string })
    .filter((r) => r.losses);

async function modelKeys(path: string): Promise<string[]> {
  const st = await SafetensorsFile.open(path);
  try {
    return st.keys();
  } finally {
    await st.close();
  }
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'fiber-train-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('fiber-bench train on the built-in world', () => {
  const terms: Record<string, string[]> = {
    'pretrain-coarse': ['mlm', 'itc', 'itm'],
    'retrieval-itc': ['itc'],
    'retrieval-itm': ['itm'],
    vqa: ['vqa'],
    caption: ['caption_mle'],
    nlvr2: ['nlvr2'],
    'pretrain-fine': ['atss'],
    refcoco: ['atss'],
    detection: ['atss'],
  };
  it.each(Object.keys(terms))(
    '%s: two steps, a log, checkpoints and the final model',
    async (task) => {
      const out = join(work, task);
      // 4 pairs: with 2 a batch may have no masked token, and the MLM term is then left out (as documented)
      const batch = task === 'pretrain-coarse' ? '4' : '2';
      const r = train([
        '--task',
        task,
        '--model',
        'micro',
        '--data',
        'builtin',
        '--steps',
        '2',
        '--batch',
        batch,
        '--out',
        out,
      ]);
      expect(r.code, r.stderr.slice(-1500)).toBe(0);
      expect(r.stderr).toMatch(/step 2\/2 \|/);
      expect(r.stdout).toMatch(new RegExp(`${task}: 2 steps, last loss \\d`));
      const log = steps(out);
      expect(log.map((s) => s.step)).toEqual([1, 2]);
      for (const s of log) {
        expect(Object.keys(s.losses!).sort()).toEqual([...terms[task]].sort());
        for (const v of Object.values(s.losses!)) expect(Number.isFinite(v)).toBe(true);
      }
      expect(readdirSync(join(out, 'checkpoints'))).toEqual(['step-00000002']);
      const keys = await modelKeys(join(out, 'final', 'model.safetensors'));
      const fine = ['pretrain-fine', 'refcoco', 'detection'].includes(task);
      expect(keys.some((k) => k.startsWith(fine ? 'fusion_backbone.backbone.body.' : 'vit_model.'))).toBe(true);
      expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'))).toMatchObject({
        task,
        steps: 2,
        batch: Number(batch),
      });
    },
    120_000,
  );

  it('pretrain-coarse --queue 0 trains ITC within the batch: every term, no queue in the checkpoint', async () => {
    const out = join(work, 'no-queue');
    const r = train([
      ...['--task', 'pretrain-coarse', '--model', 'micro', '--data', 'builtin', '--steps', '2', '--batch', '4'],
      ...['--queue', '0', '--out', out],
    ]);
    expect(r.code, r.stderr.slice(-1500)).toBe(0);
    for (const s of steps(out)) expect(Object.keys(s.losses!).sort()).toEqual(['itc', 'itm', 'mlm']);
    const state = await modelKeys(join(out, 'checkpoints', 'step-00000002', 'state.safetensors')).catch(() => []);
    expect(state.filter((k) => k.includes('queue'))).toEqual([]);
    const withQueue = await modelKeys(
      join(work, 'pretrain-coarse', 'checkpoints', 'step-00000002', 'state.safetensors'),
    );
    expect(withQueue).toContain('itc_queue.image_queue');
  }, 120_000);

  it('a run whose every step is skipped (non-finite loss, fewer steps than the guard allows) exits 1 without a final model', () => {
    const args = ['--task', 'vqa', '--data', 'builtin', '--steps', '2', '--batch', '2'];
    const micro = join(work, 'all-skipped-micro');
    expect(train([...args, '--model', 'micro', '--out', micro]).code).toBe(0);
    // the micro model with init std 1e30: every logit overflows, the loss is NaN from the first step
    const config = JSON.parse(readFileSync(join(micro, 'config.json'), 'utf8')).model;
    const path = join(work, 'nan-init.json');
    writeFileSync(path, JSON.stringify({ ...config, initializerRange: 1e30 }));
    const out = join(work, 'all-skipped');
    const r = train([...args, '--model', path, '--out', out]);
    expect(r.code, r.stderr.slice(-1500)).toBe(1);
    expect(r.stderr).toContain(
      `no step of this run updated the model: all 2 were skipped (step 1: non-finite loss vqa=NaN); ${join(out, 'final')} is not written`,
    );
    expect(existsSync(join(out, 'final'))).toBe(false);
    // a resume counts the skipped steps before it (it used to write the untrained model and exit 0)
    const again = train([...args, '--model', path, '--out', out, '--resume']);
    expect(again.code, again.stderr.slice(-1500)).toBe(1);
    expect(again.stderr).toMatch(
      /no step of this run updated the model: all 2 were skipped \(before the resume from .*step-0+2; /,
    );
    expect(existsSync(join(out, 'final'))).toBe(false);
  }, 120_000);

  it('--resume continues from the newest complete checkpoint and ends bit for bit where an uninterrupted run ends', async () => {
    const a = join(work, 'resume-a');
    const args = ['--task', 'pretrain-coarse', '--model', 'micro', '--data', 'builtin', '--steps', '4', '--batch', '3'];
    const r = train([...args, '--accumulate', '2', '--checkpoint-every', '2', '--out', a]);
    expect(r.code, r.stderr.slice(-1500)).toBe(0);
    // the state of a run killed after step 3 (its step-4 checkpoint and final model never written)
    const b = join(work, 'resume-b');
    cpSync(a, b, { recursive: true });
    rmSync(join(b, 'checkpoints', 'step-00000004'), { recursive: true });
    rmSync(join(b, 'final'), { recursive: true });
    const again = train([...args, '--accumulate', '2', '--checkpoint-every', '2', '--out', b, '--resume']);
    expect(again.code, again.stderr.slice(-1500)).toBe(0);
    expect(again.stdout).toMatch(/resumed from .*step-00000002/);
    expect(
      readFileSync(join(b, 'final', 'model.safetensors')).equals(readFileSync(join(a, 'final', 'model.safetensors'))),
    ).toBe(true);
    expect(steps(b).map((s) => s.step)).toEqual([1, 2, 3, 4]);
    expect(steps(b)).toEqual(steps(a).map((s) => ({ ...s, time: expect.any(Number) })));
    // a resume with other settings is not the same run continued: refused, naming what differs
    const other = train([...args.slice(0, -1), '2', '--accumulate', '2', '--out', b, '--resume']);
    expect(other.code, other.stderr).toBe(2);
    expect(other.stderr).toMatch(/the run was started with other settings \(batch: 3 then, 2 now\)/);
    // the ITC queue's size too: it failed after the model was built, as an internal error (exit 1)
    const otherQueue = train([...args, '--accumulate', '2', '--out', b, '--resume', '--queue', '0']);
    expect(otherQueue.code, otherQueue.stderr).toBe(2);
    expect(otherQueue.stderr).toMatch(/the run was started with other settings \(queue: 16 then, 0 now\)/);
    // a resume from a checkpoint whose float weights were damaged (NaN) is refused before training
    const c = join(work, 'resume-nan');
    cpSync(a, c, { recursive: true });
    rmSync(join(c, 'checkpoints', 'step-00000004'), { recursive: true });
    rmSync(join(c, 'final'), { recursive: true });
    const weights = join(c, 'checkpoints', 'step-00000002', 'model.safetensors');
    const file = await SafetensorsFile.open(weights);
    const damaged = readFileSync(weights);
    const dataStart = 8 + Number(damaged.readBigUInt64LE(0));
    for (const name of file.keys()) {
      const t = file.info(name);
      if (t.dtype === 'F32') damaged.fill(0xff, dataStart + t.dataOffsets[0], dataStart + t.dataOffsets[1]);
    }
    await file.close();
    writeFileSync(weights, damaged);
    const resumedNan = train([...args, '--accumulate', '2', '--checkpoint-every', '2', '--out', c, '--resume']);
    expect(resumedNan.code, resumedNan.stderr.slice(-1500)).toBe(1);
    expect(resumedNan.stderr).toMatch(
      /step-00000002: model\.safetensors has \d+ tensor\(s\) holding NaN or Infinity .*the checkpoint is damaged: remove it to resume from the one before/,
    );
    expect(existsSync(join(c, 'final'))).toBe(false);
    // a finished run's folder is not overwritten without --resume
    const clash = train([...args, '--out', a]);
    expect(clash.code).toBe(2);
    expect(clash.stderr.trim().split('\n')).toHaveLength(1);
    expect(clash.stderr).toMatch(/already holds a run; pass --resume/);
    // --init: a fine-tune from the pre-trained weights
    const ft = train([
      ...['--task', 'vqa', '--model', 'micro', '--data', 'builtin', '--steps', '1', '--batch', '2'],
      ...['--init', join(a, 'final', 'model.safetensors'), '--out', join(work, 'init')],
    ]);
    expect(ft.code, ft.stderr.slice(-1500)).toBe(0);
    expect(ft.stdout).toMatch(/--init .*: \d{3} tensors loaded/);
    // a checkpoint whose weights hold NaN is refused before training, naming the tensor
    const bytes = readFileSync(join(a, 'final', 'model.safetensors'));
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
    const [name, info] = Object.entries(header).find(
      ([k, v]: [string, any]) => k.startsWith('text_transformer.encoder.') && v?.dtype === 'F32',
    ) as [string, any];
    bytes.writeFloatLE(Number.NaN, 8 + headerLength + info.data_offsets[0]);
    const nanPath = join(work, 'nan.safetensors');
    writeFileSync(nanPath, bytes);
    const nan = train([
      ...['--task', 'vqa', '--model', 'micro', '--data', 'builtin', '--steps', '1', '--batch', '2'],
      ...['--init', nanPath, '--out', join(work, 'init-nan')],
    ]);
    expect(nan.code, nan.stderr).toBe(2);
    expect(nan.stderr).toContain(`--init ${nanPath}: 1 tensor(s) hold NaN or Infinity (${name}: 1 of`);
    // a checkpoint none of whose tensors the fine-grained model has is refused, as for the coarse ones
    const unrelated = join(work, 'unrelated.safetensors');
    writeFileSync(
      unrelated,
      serializeSafetensors({ 'some.other.weight': { dtype: 'F32', shape: [2], data: new Float32Array(2) } }),
    );
    const none = train([
      ...['--task', 'detection', '--model', 'micro', '--data', 'builtin', '--steps', '1', '--batch', '2'],
      ...['--init', unrelated, '--out', join(work, 'init-unrelated')],
    ]);
    expect(none.code, none.stderr).toBe(2);
    expect(none.stderr).toContain(`--init ${unrelated}: no tensor of this checkpoint fits the model`);
    // a file that is no checkpoint: bad input too, naming it once (it was exit 1 under "fiber-bench:")
    const text = join(work, 'not-a-checkpoint.bin');
    writeFileSync(text, 'hello');
    const junk = train([
      ...['--task', 'vqa', '--model', 'micro', '--data', 'builtin', '--steps', '1', '--batch', '2'],
      ...['--init', text, '--out', join(work, 'init-junk')],
    ]);
    expect(junk.code, junk.stderr).toBe(2);
    expect(junk.stderr).toMatch(/^fiber-bench train: --init: .*not-a-checkpoint\.bin/);
  }, 240_000);
});

describe('fiber-bench train on data folders in the public layout (the committed samples, broken records included)', () => {
  it.each([
    ['caption', ['--data', join(DATA, 'coco'), '--batch', '2']],
    ['pretrain-coarse', ['--data', join(DATA, 'jsonl'), '--images', join(DATA, 'jsonl/images'), '--batch', '2']],
    ['nlvr2', ['--data', join(DATA, 'nlvr2'), '--batch', '1']],
    // COCO instances: the images come from coco/train2014/, named by the annotation file's split
    ['detection', ['--data', join(DATA, 'coco'), '--batch', '1']],
    [
      'pretrain-fine',
      [
        '--data',
        join(DATA, 'mdetr_annotations'),
        '--images',
        join(DATA, 'flickr30k/flickr30k_images/train'),
        '--batch',
        '1',
      ],
    ],
    // JSONL grounding lines alone; its caption lines are skipped and counted
    ['pretrain-fine', ['--data', join(DATA, 'jsonl'), '--images', join(DATA, 'jsonl/images'), '--batch', '1']],
  ])(
    '%s from %j',
    (task, extra) => {
      const out = join(work, `folder-${task}-${basename(extra[1])}`);
      const r = train(['--task', task, '--model', 'micro', '--steps', '3', '--out', out, ...extra]);
      expect(r.code, r.stderr.slice(-1500)).toBe(0);
      expect(r.stdout).toMatch(/data: \d+ records delivered; skipped \{"/); // the broken records, counted
      expect(steps(out).map((s) => s.step)).toEqual([1, 2, 3]);
      expect(existsSync(join(out, 'final', 'model.safetensors'))).toBe(true);
      // no tokenizer in the folder: a BPE trained on its text, kept for a resumed run
      expect(existsSync(join(out, 'tokenizer', 'vocab.json'))).toBe(true);
    },
    120_000,
  );

  it('a data folder with no record for the task, or no category, is exit 2 before anything trains', () => {
    const dir = join(work, 'coco-empty');
    cpSync(join(DATA, 'coco'), dir, { recursive: true });
    const instances = join(dir, 'annotations', 'instances_train2014.json');
    writeFileSync(instances, JSON.stringify({ ...JSON.parse(readFileSync(instances, 'utf8')), categories: [] }));
    const karpathy = join(dir, 'karpathy', 'dataset_coco.json');
    const k = JSON.parse(readFileSync(karpathy, 'utf8'));
    writeFileSync(karpathy, JSON.stringify({ ...k, images: k.images.map((im: any) => ({ ...im, split: 'test' })) }));
    const run = (task: string) =>
      train([
        '--task',
        task,
        '--model',
        'micro',
        '--steps',
        '1',
        '--batch',
        '1',
        '--data',
        dir,
        '--out',
        join(work, `empty-${task}`),
      ]);
    const det = run('detection');
    expect(det.code, det.stderr).toBe(2);
    expect(det.stderr).toMatch(/--data: .*instances_train2014\.json declare no categories/);
    // a name clean_name empties ("(...)" is dropped) failed at step 0 without naming the file
    const json = JSON.parse(readFileSync(join(DATA, 'coco', 'annotations', 'instances_train2014.json'), 'utf8'));
    json.categories[1].name = '(thing)';
    writeFileSync(instances, JSON.stringify(json));
    const blank = run('detection');
    expect(blank.code, blank.stderr).toBe(2);
    expect(blank.stderr).toContain(
      `--data: ${instances}: category ${json.categories[1].id} has the name "(thing)", empty after clean_name`,
    );
    // a second training instance file would have been ignored
    writeFileSync(join(dir, 'annotations', 'instances_train2017.json'), readFileSync(instances));
    const two = run('detection');
    expect(two.code, two.stderr).toBe(2);
    expect(two.stderr).toContain(
      'holds 2 training instance files (instances_train2014.json, instances_train2017.json): keep one in the folder given',
    );
    rmSync(join(dir, 'annotations', 'instances_train2017.json'));
    const cap = run('caption');
    expect(cap.code, cap.stderr).toBe(2);
    expect(cap.stderr).toMatch(/--data: .*dataset_coco\.json hold no training records for --task caption/);
    // a file that cannot be read in its layout is bad input too (exit 1 and "fiber-bench:" before)
    writeFileSync(karpathy, '{"images": [');
    const cut = run('caption');
    expect(cut.code, cut.stderr).toBe(2);
    expect(cut.stderr.trim()).toMatch(
      new RegExp(`^fiber-bench train: --data: ${karpathy.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not json: `),
    );
  }, 120_000);

  it('detection: boxes whose class the prompt truncation cut stay positives that name no token, counted', () => {
    const dir = join(work, 'coco-long-names');
    cpSync(join(DATA, 'coco'), dir, { recursive: true });
    const file = join(dir, 'annotations', 'instances_train2014.json');
    const json = JSON.parse(readFileSync(file, 'utf8'));
    json.categories[0].name = 'square '.repeat(30).trim(); // "disc" no longer fits the micro model's prompt
    writeFileSync(file, JSON.stringify(json));
    const out = join(work, 'folder-detection-cut');
    const r = train([
      '--task',
      'detection',
      '--model',
      'micro',
      '--steps',
      '2',
      '--out',
      out,
      '--data',
      dir,
      '--batch',
      '1',
    ]);
    expect(r.code, r.stderr.slice(-1500)).toBe(0);
    expect(r.stdout).toMatch(
      /data: [1-9]\d* boxes trained as positives that name no token: the prompt's truncation cut their phrase \(/,
    );
  }, 120_000);
  it('pretrain-fine skips a batch with more than 10% of its images without a box, as SOLVER.MAX_NEG_PER_BATCH', () => {
    const dir = join(work, 'fine-negatives');
    mkdirSync(dir, { recursive: true });
    cpSync(join(DATA, 'jsonl', 'images', 'b.png'), join(dir, 'b.png'));
    const boxed = { image: 'b.png', text: 'the square left of the disc', boxes: [[3, 10, 12, 22]], phrases: [[0, 10]] };
    const bare = { image: 'b.png', text: 'nothing named here', boxes: [[3, 10, 12, 22]], phrases: [[]] };
    const write = (lines: object[]) =>
      writeFileSync(join(dir, 'data.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n'));
    const run = (name: string, batch = '1', seed = '0') =>
      train([
        ...['--task', 'pretrain-fine', '--model', 'micro', '--steps', '2', '--batch', batch, '--workers', '0'],
        ...['--seed', seed, '--data', dir, '--out', join(work, name)],
      ]);
    write([boxed, bare, boxed, bare, boxed, bare]);
    const some = run('fine-negatives-some');
    expect(some.code, some.stderr.slice(-1500)).toBe(0);
    expect(some.stdout).toMatch(/data: [1-9]\d* batches skipped: more than 10% of their images had no box/);
    expect(steps(join(work, 'fine-negatives-some')).map((s) => s.step)).toEqual([1, 2]);
    // half without a box at batch 2: with seed 2 the first two epochs' orders pair every boxed
    // image with a bare one, and the third trains (each epoch's order is drawn anew)
    write([boxed, bare, boxed, bare]);
    const late = run('fine-negatives-late', '2', '2');
    expect(late.code, late.stderr.slice(-1500)).toBe(0);
    expect(late.stderr).toContain(
      'all 2 batches of 2 of epoch 1 were skipped (more than 10% of their images without a box, the official ' +
        "SOLVER.MAX_NEG_PER_BATCH); 2 of the epoch's 4 images have a box and a batch needs 2; the next epoch's order is drawn anew",
    );
    expect(steps(join(work, 'fine-negatives-late')).map((s) => s.step)).toEqual([1, 2]);
    // 2 boxed images among 22: a batch of 2 trains only when an epoch's order pairs them (seed 0:
    // not in the first 20 epochs), and the run gives up instead of drawing epochs forever
    write([boxed, boxed, ...Array(20).fill(bare)]);
    const rare = run('fine-negatives-rare', '2', '0');
    expect(rare.code, rare.stderr.slice(-1500)).toBe(1);
    expect(rare.stderr).toContain(
      "all 11 batches of 2 of epoch 19 were skipped (more than 10% of their images without a box, the official SOLVER.MAX_NEG_PER_BATCH); 2 of the epoch's 22 images have a box and a batch needs 2, and 20 epochs in a row trained no batch: too few of the images have a box",
    );
    // nothing but negatives: no step can ever train, said at the end of the first epoch
    write([bare, bare, bare]);
    const none = run('fine-negatives-all');
    expect(none.code, none.stderr).toBe(1);
    expect(none.stderr).toContain(
      "all 3 batches of 1 of epoch 0 were skipped (more than 10% of their images without a box, the official SOLVER.MAX_NEG_PER_BATCH); 0 of the epoch's 3 images have a box and a batch needs 1: no step can train on these records",
    );
  }, 120_000);
});

describe('fiber-bench train --workers', () => {
  it('gives the same batches, so the same model, with decode threads as in the training thread', () => {
    const run = (workers: string) => {
      const out = join(work, `workers-${workers}`);
      const r = train([
        ...['--task', 'caption', '--model', 'micro', '--steps', '2', '--batch', '2', '--out', out],
        ...['--data', join(DATA, 'coco'), '--workers', workers],
      ]);
      expect(r.code, r.stderr.slice(-1500)).toBe(0);
      return { out, stdout: r.stdout };
    };
    const inThread = run('0');
    const pooled = run('2');
    expect(inThread.stdout).toMatch(/data: images decoded in the training thread/);
    expect(pooled.stdout).toMatch(/data: images decoded by 2 worker threads/);
    const model = (o: { out: string }) => readFileSync(join(o.out, 'final', 'model.safetensors'));
    expect(model(pooled).equals(model(inThread))).toBe(true);
  }, 120_000);
});

describe('fiber-bench train: bad usage is one line on stderr and exit 2', () => {
  const base = ['--task', 'vqa', '--model', 'micro', '--data', 'builtin', '--steps', '1', '--batch', '2'];
  const swap = (flag: string, value: string) => {
    const i = base.indexOf(flag);
    return [...base.slice(0, i + 1), value, ...base.slice(i + 2)];
  };
  it.each([
    ['no --out', base, /--out is required/],
    ['unknown task', [...swap('--task', 'segmentation'), '--out', 'x'], /--task: unknown task "segmentation"/],
    ['unknown model', [...swap('--model', 'huge'), '--out', 'x'], /--model: unknown model "huge"/],
    ['steps and epochs', [...base, '--epochs', '1', '--out', 'x'], /exactly one of --steps N and --epochs E/],
    ['batch 0', [...swap('--batch', '0'), '--out', 'x'], /--batch: expected an integer >= 1, got "0"/],
    ['steps text', [...swap('--steps', '1e3'), '--out', 'x'], /--steps: expected an integer >= 1, got "1e3"/],
    ['lr out of range', [...base, '--lr', '3', '--out', 'x'], /--lr: expected a number in \(0, 1\)/],
    [
      '--images with builtin data',
      [...base, '--images', '.', '--out', 'x'],
      /--images: --data builtin renders its images/,
    ],
    [
      'a batch larger than the built-in world',
      [...swap('--batch', '100000'), '--out', 'x'],
      /--batch 100000: the built-in world holds \d+ training records for --task vqa, less than one batch/,
    ],
    [
      'epochs in hexadecimal',
      [...base.slice(0, -4), '--batch', '2', '--epochs', '0x10', '--out', 'x'],
      /--epochs: expected a number > 0, got "0x10"/,
    ],
    ['unknown option', [...base, '--out', 'x', '--gpus', '8'], /Unknown option '--gpus'/],
    ['unknown backend', [...base, '--out', 'x', '--backend', 'tpu'], /--backend: unknown backend "tpu"/],
    [
      'workers not a number',
      [...base, '--out', 'x', '--workers', 'two'],
      /--workers: expected an integer in \[0, 64\], got "two"/,
    ],
    [
      'negative workers',
      [...base, '--out', 'x', '--workers', '-1'],
      /'--workers' argument is ambiguous\. Did you forget/,
    ],
    [
      'workers past the bound',
      [...base, '--out', 'x', '--workers', '1000'],
      /--workers: expected an integer in \[0, 64\]/,
    ],
    [
      'image size past the bound',
      [...base, '--out', 'x', '--image-size', '20000'],
      /--image-size: expected an integer in \[32, 4096\], got "20000"/,
    ],
    [
      'a queue larger than memory',
      ['--task', 'pretrain-coarse', ...base.slice(2), '--out', 'x', '--queue', '1000000000000'],
      /--queue 1000000000000: the ITC queue keeps 1000000000000 raw images at \d+ px, [\d.]+ GiB, more than half/,
    ],
    ['data is a file', [...swap('--data', __filename), '--out', 'x'], /--data: .*train\.test\.ts is not a folder/],
    [
      'images folder missing',
      ['--task', 'caption', '--model', 'micro', '--data', join(DATA, 'coco'), '--steps', '1', '--batch', '2'].concat([
        '--images',
        '/nonexistent-images',
        '--out',
        'x',
      ]),
      /--images: \/nonexistent-images is not a folder/,
    ],
    [
      'a batch larger than the data',
      [
        '--task',
        'caption',
        '--model',
        'micro',
        '--data',
        join(DATA, 'coco'),
        '--steps',
        '1',
        '--batch',
        '100000',
      ].concat(['--out', 'x']),
      /--batch 100000: .*dataset_coco\.json hold \d+ records, less than one batch/,
    ],
    ['missing init file', [...base, '--out', 'x', '--init', '/nonexistent.ckpt'], /--init: no file \/nonexistent.ckpt/],
    // an empty path (an unset shell variable) meant no --init, yet froze stages as for one
    ['empty init', [...base, '--out', 'x', '--init', ''], /--init: an empty path/],
    ['empty tokenizer', [...base, '--out', 'x', '--tokenizer', ''], /--tokenizer: an empty path/],
    ['empty images', [...base, '--out', 'x', '--images', ''], /--images: an empty path/],
    // the generators' seeds are mixed from it: past 2^32 they left torch's range (exit 1)
    [
      'a seed past 32 bits',
      [...base, '--out', 'x', '--seed', '2400000000000000'],
      /--seed: expected an integer in \[0, 4294967295\]/,
    ],
    [
      'an --out under a file',
      [...base, '--out', join(__filename, 'run')],
      /^fiber-bench train: --out .*train\.test\.ts\/run: .*train\.test\.ts is a file, not a folder\n$/,
    ],
    [
      'missing data folder',
      [...swap('--data', '/nonexistent-dir'), '--out', 'x'],
      /--data: no folder \/nonexistent-dir/,
    ],
    [
      'folder without the task files',
      [...swap('--data', DATA), '--out', 'x'],
      /--data: no .*v2_OpenEnded.* found for --task vqa/,
    ],
    [
      "one micro-batch's images past half the machine's memory (a step reads its micro-batches one at a time)",
      [...swap('--task', 'pretrain-fine'), ...['--image-size', '4096', '--accumulate', '4'], '--out', 'x'].map((a) =>
        a === '2' ? '1000' : a,
      ),
      /--batch 1000: one micro-batch's images take about \d+\.\d GiB, more than half this machine's memory/,
    ],
    [
      'ITM with one pair per batch',
      ['--task', 'pretrain-coarse', ...swap('--batch', '1').slice(2), '--out', 'x'],
      /needs at least 2 pairs/,
    ],
  ])('%s', (_, args, message) => {
    const r = train(args.map((a) => (a === 'x' ? join(work, 'bad') : a)));
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  });

  it('a fine-tuning resumed at another --image-size is refused (it trained on at another size without a word)', () => {
    const out = join(work, 'fine-size');
    const args = ['--task', 'refcoco', '--model', 'micro', '--data', 'builtin', '--steps', '1', '--batch', '2'];
    const first = train([...args, '--image-size', '64', '--checkpoint-every', '1', '--out', out]);
    expect(first.code, first.stderr.slice(-1500)).toBe(0);
    const other = train([...args, '--image-size', '96', '--out', out, '--resume']);
    expect(other.code, other.stderr).toBe(2);
    expect(other.stderr).toMatch(/the run was started with other settings \(fineSize: 64 then, 96 now\)/);
  }, 120_000);

  it('a tokenizer whose <s>, <pad>, </s> are not ids 0, 1, 2 is refused (positions and losses assume them)', () => {
    const dir = join(work, 'moved-specials');
    const bpe = trainByteLevelBpe(['a red square left of a blue disc'], { vocabSize: 300, minFrequency: 1 });
    const vocab: Record<string, number> = {};
    const n = Object.keys(bpe.vocab).length;
    for (const [token, id] of Object.entries(bpe.vocab)) vocab[token] = (id + 5) % n; // the same tokens, other ids
    writeTokenizer(dir, vocab, bpe.merges);
    const r = train([...swap('--task', 'caption'), '--tokenizer', dir, '--out', join(work, 'moved-specials-run')]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/the tokenizer has <s>, <pad>, <\/s> at ids 5, 6, 7; the model needs them at 0, 1, 2/);
  });

  it('a new run on a data folder trains its own BPE, not one an earlier run left in --out without a checkpoint', () => {
    const out = join(work, 'stale-bpe');
    const stale = join(out, 'tokenizer');
    const bpe = trainByteLevelBpe(['zzz yyy xxx'], { vocabSize: 270, minFrequency: 1 });
    writeTokenizer(stale, bpe.vocab, bpe.merges);
    const args = [
      ...['--task', 'caption', '--model', 'micro', '--data', join(DATA, 'coco')],
      '--steps',
      '1',
      '--batch',
      '2',
    ];
    const r = train([...args, '--out', out]);
    expect(r.code, r.stderr.slice(-1500)).toBe(0);
    const vocabSize = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).tokenizer.vocabSize;
    expect(vocabSize).not.toBe(Object.keys(bpe.vocab).length);
    expect(JSON.parse(readFileSync(join(stale, 'vocab.json'), 'utf8'))).not.toEqual(bpe.vocab); // overwritten
  }, 120_000);

  it('--tokenizer: the built-in world takes it (it was ignored); an unreadable one names the file', () => {
    const dir = join(work, 'own-bpe');
    const bpe = trainByteLevelBpe(['a red square left of a blue disc', 'two shapes on a plain background'], {
      vocabSize: 300,
      minFrequency: 1,
    });
    writeTokenizer(dir, bpe.vocab, bpe.merges);
    const out = join(work, 'own-bpe-run');
    const r = train([...swap('--task', 'caption'), '--tokenizer', dir, '--out', out]);
    expect(r.code, r.stderr.slice(-1500)).toBe(0);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    const ids = Math.max(...Object.values(bpe.vocab)) + 1;
    expect([config.tokenizer.vocabSize, config.model.roberta.vocabSize]).toEqual([ids, ids]);
    writeFileSync(join(dir, 'vocab.json'), '{"<s>": 0,');
    const bad = train([...swap('--task', 'caption'), '--tokenizer', dir, '--out', join(work, 'own-bpe-bad')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`--tokenizer: the tokenizer in ${dir} cannot be read (vocab.json: not JSON (`);
  }, 120_000);

  it('a model file that is not a FIBER config names the problem', () => {
    const path = join(work, 'model.json');
    writeFileSync(path, JSON.stringify({ swin: { embedDim: -3 } }));
    const r = train([...swap('--model', path), '--out', join(work, 'bad-json')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--model .*model\.json: /);
    writeFileSync(path, '{not json');
    expect(train([...swap('--model', path), '--out', join(work, 'bad-json')]).stderr).toMatch(/cannot read .* as JSON/);
    writeFileSync(path, '{"__proto__": {"hiddenSize": 5}}');
    expect(train([...swap('--model', path), '--out', join(work, 'bad-json')]).stderr).toMatch(
      /--model .*model\.json: FiberCoarseConfig\.swin: expected an object, got undefined/,
    );
    // a config whose weights alone exceed the machine is refused before a tensor is made
    writeFileSync(path, JSON.stringify({ ...fiberConfig('tiny'), hiddenSize: 1_000_000 }));
    const huge = train([...swap('--model', path), '--out', join(work, 'bad-json')]);
    expect(huge.code).toBe(2);
    expect(huge.stderr).toMatch(
      /--model .*model\.json: at least \d\.\d+e\+12 parameters; training holds 4 float32 copies of each trained one .* more than this machine's memory/,
    );
    // a FIFO would block the read for ever
    if (process.platform !== 'win32') {
      const fifo = join(work, 'fifo-model.json');
      execFileSync('mkfifo', [fifo]);
      const f = train([...swap('--model', fifo), '--out', join(work, 'bad-json')]);
      expect(f.code).toBe(2);
      expect(f.stderr).toContain(`--model: ${fifo} is a FIFO, not a regular file`);
    }
  });

  it('--help prints the usage and exits 0', () => {
    const r = train(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: fiber-bench train --task T/);
  });
});
