import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Batch, DataLoader, type DataLoaderOptions, InThreadExecutor, type SampleExecutor } from './loader.js';
import { coarseTrainTransform, fineTrainTransform, type Sample, type TransformSpec } from './pipeline.js';
import { karpathyCaptions } from './formats/captions.js';
import { buildVqaVocab, vqaQuestions } from './formats/vqa.js';
import { genericRecord, nlvr2Record } from './formats/jsonl.js';
import { cocoInstances, mdetrGrounding } from './formats/coco.js';
import { arraySource, concatSources, type RecordSource, withImages } from './source.js';
import { jsImageDecoder, memoryImageStore } from './images.js';
import type { DataRecord } from './records.js';
import { SKIP_REASONS, type SkipEvent, type SkipReason } from './skips.js';
import { imageFolder, nodeImageDecoder, readFileLocation } from './node/files.js';
import { WorkerPool } from './node/pool.js';
import { fixture, fixtureJson, openJsonl, WORKER_URL } from './test-helpers.js';

const pools: SampleExecutor[] = [];
afterAll(() => Promise.all(pools.map((p) => p.close())));

const inThread = () => new InThreadExecutor({ decoder: jsImageDecoder, readFile: readFileLocation });
const pool = (workers: number) => {
  const p = new WorkerPool({ workers, decoder: 'js', workerUrl: WORKER_URL });
  pools.push(p);
  return p;
};

/** A coarse-grained mixture: captions, VQA and NLVR2, each with its own image folder. */
async function coarseSource(): Promise<RecordSource> {
  const coco = imageFolder(fixture('coco'));
  const vocab = buildVqaVocab([fixtureJson('vqa/v2_mscoco_train2014_annotations.json')], { minCount: 1 });
  return concatSources('coarse', [
    withImages(karpathyCaptions(fixtureJson('coco/karpathy/dataset_coco.json')), coco),
    withImages(
      vqaQuestions({
        questions: fixtureJson('vqa/v2_OpenEnded_mscoco_train2014_questions.json'),
        annotations: fixtureJson('vqa/v2_mscoco_train2014_annotations.json'),
        vocab,
      }),
      coco,
    ),
    await openJsonl(fixture('nlvr2/data/train.json'), nlvr2Record, imageFolder(fixture('nlvr2'))),
  ]);
}

/** A fine-grained mixture: MDETR Flickr30k + mixed, generic JSONL with boxes. */
async function fineSource(): Promise<RecordSource> {
  return concatSources('fine', [
    withImages(
      mdetrGrounding(fixtureJson('mdetr_annotations/final_flickr_separateGT_train.json')),
      imageFolder(fixture('flickr30k/flickr30k_images/train')),
    ),
    withImages(
      mdetrGrounding(fixtureJson('mdetr_annotations/final_mixed_train.json'), {
        dataSourcePrefix: { coco: 'coco/train2014/', vg: 'gqa/images/' },
      }),
      imageFolder(fixture()),
    ),
    await openJsonl(fixture('jsonl/data.jsonl'), genericRecord(), imageFolder(fixture('jsonl/images'))),
  ]);
}

async function collect(
  source: RecordSource,
  executor: SampleExecutor,
  transform: TransformSpec,
  extra: Partial<DataLoaderOptions> = {},
  epoch = 0,
) {
  const events: SkipEvent[] = [];
  const loader = new DataLoader(source, {
    seed: 1234,
    transform,
    executor,
    prefetch: 4,
    onSkip: (e) => events.push(e),
    ...extra,
  });
  const samples: Sample[] = [];
  for await (const s of loader.samples({ epoch, position: 0 })) samples.push(s);
  return { samples, events, loader };
}

/** What must be identical between runs: order, text, boxes, augmentation and every pixel. */
const digest = (s: Sample) => ({
  index: s.index,
  position: s.position,
  record: s.record,
  flipped: s.flipped,
  ops: s.augmentOps,
  images: s.images.map((i) => [i.width, i.height, Array.from(i.data)]),
});

describe('DataLoader determinism', () => {
  it.each([
    ['coarse', coarseSource, coarseTrainTransform(32)],
    ['fine', fineSource, fineTrainTransform({ minSizes: [24, 32, 40], maxSize: 64 })],
  ] as const)(
    '%s: same seed and epoch give the same order and pixels in-thread, with 1 worker and with 2 workers',
    async (_, make, transform) => {
      const a = await collect(await make(), inThread(), transform);
      const b = await collect(await make(), pool(1), transform);
      const c = await collect(await make(), pool(2), transform);
      expect(a.samples.length).toBeGreaterThan(3);
      expect(b.samples.map(digest)).toEqual(a.samples.map(digest));
      expect(c.samples.map(digest)).toEqual(a.samples.map(digest));
      expect(c.events.map((e) => [e.position, e.reason])).toEqual(a.events.map((e) => [e.position, e.reason]));
      expect(a.samples.map((s) => s.position)).toEqual([...a.samples.map((s) => s.position)].sort((x, y) => x - y));
    },
  );

  it('shuffles each epoch differently, the same way for the same seed', async () => {
    const records = Array.from(
      { length: 50 },
      (_, i): DataRecord => ({
        kind: 'caption',
        id: String(i),
        image: { width: 2, height: 2, channels: 3, data: new Uint8Array(12).fill(i) },
        text: `t${i}`,
      }),
    );
    const source = arraySource('mem', records);
    const order = async (epoch: number, seed = 7) => {
      const loader = new DataLoader(source, { seed, transform: { kind: 'decode' }, executor: inThread() });
      const out: number[] = [];
      for await (const s of loader.samples({ epoch, position: 0 })) out.push(s.index);
      return out;
    };
    const e0 = await order(0);
    expect(await order(0)).toEqual(e0);
    expect(await order(1)).not.toEqual(e0);
    expect(await order(0, 8)).not.toEqual(e0);
    expect([...e0].sort((x, y) => x - y)).toEqual(records.map((_, i) => i));
  });

  it('splits an epoch between ranks as DistributedSampler (padded by wrapping)', () => {
    const source = arraySource(
      'mem',
      Array.from({ length: 10 }, (_, i): DataRecord => ({ kind: 'caption', id: String(i), image: 'x', text: 'x' })),
    );
    const orders = [0, 1, 2].map((rank) =>
      new DataLoader(source, {
        seed: 3,
        transform: { kind: 'decode' },
        executor: inThread(),
        rank,
        worldSize: 3,
      }).order(5),
    );
    const all = new DataLoader(source, { seed: 3, transform: { kind: 'decode' }, executor: inThread() }).order(5);
    expect(orders.map((o) => o.length)).toEqual([4, 4, 4]);
    const seen = orders.flatMap((o, rank) => Array.from({ length: o.length }, (_, p) => [p * 3 + rank, o.indexAt(p)]));
    for (const [k, index] of seen) expect(index).toBe(all.indexAt(k % 10));
  });
});

describe('DataLoader resume', () => {
  it('continues from a saved position with exactly the samples an uninterrupted run gives', async () => {
    const transform = coarseTrainTransform(24);
    const full: Batch[] = [];
    const loader = new DataLoader(await coarseSource(), {
      seed: 99,
      transform,
      executor: pool(2),
      onSkip: () => undefined,
    });
    for await (const b of loader.batches(3, { epoch: 2, position: 0 })) full.push(b);
    expect(full.length).toBeGreaterThan(3);
    for (const cut of [1, 2, full.length - 1]) {
      const resumed = new DataLoader(await coarseSource(), {
        seed: 99,
        transform,
        executor: inThread(),
        onSkip: () => undefined,
      });
      const rest: Batch[] = [];
      for await (const b of resumed.batches(3, full[cut - 1].next)) rest.push(b);
      expect(rest.map((b) => [b.next, b.samples.map(digest)])).toEqual(
        full.slice(cut).map((b) => [b.next, b.samples.map(digest)]),
      );
    }
    expect(full.at(-1)!.next).toEqual({ epoch: 2, position: loader.epochLength });
  });

  it('goes on into the next epochs when asked', async () => {
    const source = arraySource(
      'mem',
      Array.from(
        { length: 5 },
        (_, i): DataRecord => ({
          kind: 'caption',
          id: String(i),
          image: { width: 1, height: 1, channels: 3, data: new Uint8Array(3) },
          text: 'x',
        }),
      ),
    );
    const loader = new DataLoader(source, { seed: 0, transform: { kind: 'decode' }, executor: inThread() });
    const batches: Batch[] = [];
    for await (const b of loader.batches(2, { epoch: 0, position: 0 }, { epochs: 2, dropLast: true })) batches.push(b);
    expect(batches.map((b) => [b.epoch, b.samples.length, b.next.position])).toEqual([
      [0, 2, 2],
      [0, 2, 4],
      [1, 2, 2],
      [1, 2, 4],
    ]);
  });
});

describe('bad records are skipped with a counted reason', () => {
  it('counts every reason over one epoch of all the sample files, calling back for each', async () => {
    const coco = imageFolder(fixture('coco'));
    const vocab = buildVqaVocab([fixtureJson('vqa/v2_mscoco_train2014_annotations.json')], { minCount: 2 });
    const source = concatSources('all', [
      await coarseSource(),
      await fineSource(),
      withImages(
        mdetrGrounding(fixtureJson('mdetr_annotations/final_refexp_val.json')),
        imageFolder(fixture('coco/train2014')),
      ),
      withImages(
        cocoInstances(fixtureJson('coco/annotations/instances_val2014.json'), { imagePrefix: 'val2014/' }),
        coco,
      ),
      withImages(
        vqaQuestions({
          questions: fixtureJson('vqa/v2_OpenEnded_mscoco_train2014_questions.json'),
          annotations: fixtureJson('vqa/v2_mscoco_train2014_annotations.json'),
          vocab,
        }),
        coco,
      ),
      // A record whose image ref has no store: an error of the set-up, reported as 'pipeline-error'.
      arraySource('no store', [{ kind: 'caption', id: 'x', image: 'nowhere.jpg', text: 'no store' }]),
    ]);
    const { samples, events, loader } = await collect(
      source,
      pool(2),
      fineTrainTransform({ minSizes: [32], maxSize: 64 }),
    );
    const records = (reason: SkipReason) => events.filter((e) => e.scope === 'record' && e.reason === reason).length;
    for (const reason of SKIP_REASONS) expect(records(reason) + loader.stats.boxes[reason], reason).toBeGreaterThan(0);
    expect(loader.stats.records).toEqual(Object.fromEntries(SKIP_REASONS.map((r) => [r, records(r)])));
    expect(loader.stats.delivered).toBe(samples.length);
    expect(samples.length + loader.stats.skipped).toBe(source.length);
    const byId = (reason: SkipReason) => events.filter((e) => e.reason === reason).map((e) => e.detail);
    expect(byId('missing-image').join()).toMatch(/COCO_val2014_000000000099\.jpg/);
    expect(byId('corrupt-image').join()).toMatch(/COCO_val2014_000000000073\.jpg/);
    expect(byId('corrupt-image').join()).toMatch(/broken\.png/);
    // The JSONL box [100, 100, 120, 130] is found outside the 40x30 image only once it is decoded.
    expect(byId('box-outside-image').join()).toMatch(/outside the 40x30 image/);
    expect(byId('pipeline-error').join()).toMatch(/no ImageStore to find image "nowhere\.jpg"/);
    // a record its reader could not read is named by the file's id: VQA question 25003 has no
    // annotation (the questions are read twice, in the coarse source and on their own)
    expect(events.filter((e) => e.reason === 'missing-annotation').map((e) => e.id)).toEqual(['25003', '25003']);
    // COCO image 74 lost three boxes but was used: box-scope events.
    expect(events.filter((e) => e.scope === 'box' && e.id === '74').map((e) => e.reason)).toEqual([
      'unknown-category',
      'degenerate-box',
      'box-outside-image',
    ]);
  });

  it('turns a dying worker into skips, replaces it, and finishes the epoch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fiber-data-'));
    const script = join(dir, 'dies.mjs');
    writeFileSync(
      script,
      "import { parentPort } from 'node:worker_threads';\nparentPort.on('message', () => process.exit(3));\n",
    );
    const dying = new WorkerPool({ workers: 2, workerUrl: pathToFileURL(script) });
    pools.push(dying);
    const records = Array.from(
      { length: 6 },
      (_, i): DataRecord => ({
        kind: 'caption',
        id: String(i),
        image: { width: 1, height: 1, channels: 3, data: new Uint8Array(3) },
        text: 'x',
      }),
    );
    const { samples, events } = await collect(arraySource('mem', records), dying, { kind: 'decode' });
    expect(samples).toEqual([]);
    expect(events.map((e) => e.reason)).toEqual(Array(6).fill('pipeline-error'));
    expect(events[0].detail).toMatch(/worker died: exit code 3/);
  });
});

describe('WorkerPool lifecycle', () => {
  it('stops early without leaking work, and refuses tasks once closed', async () => {
    const p = new WorkerPool({ workers: 2, decoder: 'js', workerUrl: WORKER_URL });
    const images = memoryImageStore(
      new Map([['a', { width: 4, height: 4, channels: 3 as const, data: new Uint8Array(48).fill(9) }]]),
    );
    const source = arraySource(
      'mem',
      Array.from({ length: 20 }, (_, i): DataRecord => ({ kind: 'caption', id: String(i), image: 'a', text: 'x' })),
      images,
    );
    const loader = new DataLoader(source, { seed: 1, transform: coarseTrainTransform(8), executor: p, prefetch: 6 });
    let n = 0;
    for await (const s of loader.samples()) {
      expect(s.images[0].data).toBeInstanceOf(Float32Array);
      if (++n === 3) break;
    }
    expect(loader.position).toEqual({ epoch: 0, position: 3 });
    await loader.close();
    const record: DataRecord = { kind: 'caption', id: 'z', image: 'a', text: 'x' };
    await expect(
      p.run({ record, locations: [], index: 0, position: 0, epoch: 0, seed: 0, transform: { kind: 'decode' } }),
    ).rejects.toThrow(/closed/);
  });

  it('close() closes the source too: a file-backed source reads no more', async () => {
    const images = imageFolder(fixture('jsonl'));
    const source = await openJsonl(fixture('jsonl', 'data.jsonl'), genericRecord(), images);
    const loader = new DataLoader(source, {
      seed: 1,
      transform: { kind: 'decode' },
      executor: inThread(),
      onSkip: () => undefined,
    });
    for await (const _ of loader.samples()) break;
    await loader.close();
    await expect(Promise.resolve().then(() => source.get(0))).rejects.toThrow(/closed/);
  });

  it('decodes with sharp in workers when it loads (same PNG pixels as the JS decoder)', async () => {
    const sharp = await nodeImageDecoder('auto');
    const p = new WorkerPool({ workers: 1, decoder: 'auto', workerUrl: WORKER_URL });
    pools.push(p);
    const source = withImages(
      await openJsonl(fixture('nlvr2/data/train.json'), nlvr2Record),
      imageFolder(fixture('nlvr2')),
    );
    const viaWorker = await collect(source, p, { kind: 'decode' });
    const viaJs = await collect(source, inThread(), { kind: 'decode' });
    expect(viaWorker.samples.map(digest)).toEqual(viaJs.samples.map(digest));
    expect(sharp).not.toBe(jsImageDecoder); // sharp is installed in this workspace
  });
});
