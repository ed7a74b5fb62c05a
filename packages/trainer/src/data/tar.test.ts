import { describe, expect, it, onTestFinished } from 'vitest';
import { readFileSync } from 'node:fs';
import { bufferSource } from '@fiber-vl/tensor-core';
import { groupWebdataset, indexTar, readTar, TarError, webdatasetKey } from './tar.js';
import { tarImageStore, webdatasetSource } from './formats/webdataset.js';
import { openTarShards } from './node/files.js';
import { entries, fixture } from './test-helpers.js';

const LONG = `sub/${'d'.repeat(60)}/${'e'.repeat(50)}`;
const shard0 = new Uint8Array(readFileSync(fixture('wds/shard-000000.tar')));
const shard1 = new Uint8Array(readFileSync(fixture('wds/shard-000001.tar')));

/** The bytes in `size`-byte chunks, as a network or decompression stream delivers them. */
function* chunks(bytes: Uint8Array, size: number) {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

describe('indexTar', () => {
  it('lists regular files of a pax tar, with names longer than 100 bytes', async () => {
    const members = await indexTar(bufferSource(shard0, 'shard-000000.tar'));
    expect(members.map((m) => m.name)).toEqual([
      '000000.jpg',
      '000000.txt',
      '000001.png',
      '000001.json',
      '000002.jpg',
      '000002.txt',
      `${LONG}/000003.jpg`,
      `${LONG}/000003.txt`,
    ]);
    const txt = members[1];
    expect(new TextDecoder().decode(shard0.subarray(txt.offset, txt.offset + txt.size))).toBe(
      'a red square left of a blue disc',
    );
  });

  it('reads GNU long names (type L)', async () => {
    const members = await indexTar(bufferSource(shard1));
    expect(members.map((m) => m.name)).toEqual([
      '000004.jpg',
      '000004.txt',
      '000005.txt',
      `${LONG}/000006.jpg`,
      `${LONG}/000006.txt`,
    ]);
  });

  it('rejects a corrupt header and a truncated file, naming the byte', async () => {
    const bad = Uint8Array.from(shard0);
    bad[10] ^= 0xff;
    await expect(indexTar(bufferSource(bad, 'bad.tar'))).rejects.toThrow(/bad\.tar: bad tar header checksum at byte 0/);
    const members = await indexTar(bufferSource(shard0));
    const cut = shard0.subarray(0, members[2].offset + 10);
    await expect(indexTar(bufferSource(cut, 'cut.tar'))).rejects.toThrow(TarError);
    await expect(indexTar(bufferSource(cut, 'cut.tar'))).rejects.toThrow(
      /cut\.tar: member "000001\.png" .* \(truncated\)/,
    );
  });
});

describe('readTar (streaming)', () => {
  it.each([1, 7, 512, 100_000])('yields the same members and bytes as the index, in %i-byte chunks', async (size) => {
    const index = await indexTar(bufferSource(shard0));
    const streamed: { name: string; data: Uint8Array }[] = [];
    for await (const e of readTar(chunks(shard0, size))) streamed.push(e);
    expect(streamed.map((e) => e.name)).toEqual(index.map((m) => m.name));
    streamed.forEach((e, i) =>
      expect(e.data).toEqual(shard0.subarray(index[i].offset, index[i].offset + index[i].size)),
    );
  });

  it('reads GNU long names and reports a truncated member', async () => {
    const names: string[] = [];
    for await (const e of readTar(chunks(shard1, 333))) names.push(e.name);
    expect(names).toContain(`${LONG}/000006.jpg`);
    const index = await indexTar(bufferSource(shard1));
    const gen = readTar([shard1.subarray(0, index[0].offset + 20)], 'cut.tar');
    await expect(gen.next()).rejects.toThrow(/cut\.tar: member "000004\.jpg" at byte 0 is truncated/);
  });
});

describe('webdataset', () => {
  it('splits keys at the first dot of the basename', () => {
    expect(webdatasetKey('a/b.c/000001.seg.png')).toEqual({ key: 'a/b.c/000001', ext: 'seg.png' });
    expect(webdatasetKey('a/noext')).toBeUndefined();
    expect(
      groupWebdataset([{ name: '1.jpg' }, { name: '1.txt' }, { name: '2.jpg' }, { name: '1.json' }]).map((g) => [
        g.key,
        [...g.files.keys()],
      ]),
    ).toEqual([
      ['1', ['jpg', 'txt']],
      ['2', ['jpg']],
      ['1', ['json']],
    ]);
  });

  it('reads samples of two shards: caption, grounding json, and a sample without image', async () => {
    const source = await webdatasetSource(
      await openTarShards([fixture('wds/shard-000000.tar'), fixture('wds/shard-000001.tar')]),
    );
    // the source owns the shards: closing it closes their files (the test setup checks)
    onTestFinished(() => source.close?.());
    const all = await entries(source);
    expect(all.map((e) => (e.ok ? [e.record.kind, e.record.id, e.record.text] : [e.skip.reason, e.id]))).toEqual([
      ['caption', '000000', 'a red square left of a blue disc'],
      ['grounding', '000001', 'the disc'],
      ['caption', '000002', 'this JPEG is cut in half'],
      ['caption', `${LONG}/000003`, 'a name longer than one hundred bytes, in a pax header'],
      ['caption', '000004', 'gnu tar, short name'],
      // a skipped sample is named by its key
      ['missing-image', '000005'],
      ['caption', `${LONG}/000006`, 'a gnu long name'],
    ]);
    const g = all[1].ok ? all[1].record : undefined;
    expect(g).toMatchObject({ boxes: [[12, 14, 22, 24]], spans: [[[4, 8]]] });
    const loc = await source.images!.locate(
      all[0].ok && typeof all[0].record.image === 'string' ? all[0].record.image : '',
    );
    expect(loc).toMatchObject({ kind: 'file', path: fixture('wds/shard-000000.tar') });
  });

  it('openTarShards: a missing shard is an error naming it, and the shards already open are closed', async () => {
    // the file-handle check of the test setup fails this file if the first shard stays open
    await expect(openTarShards([fixture('wds/shard-000000.tar'), fixture('wds/no-such-shard.tar')])).rejects.toThrow(
      /no-such-shard\.tar: no such file/,
    );
  });

  it('locates images packed in a tar by their member path, as bytes for in-memory shards', async () => {
    const store = await tarImageStore([
      { source: bufferSource(new Uint8Array(readFileSync(fixture('wds/coco-images.tar'))), 'coco-images.tar') },
    ]);
    const loc = await store.locate('train2014/COCO_train2014_000000000009.jpg');
    expect(loc?.kind).toBe('bytes');
    expect(loc?.kind === 'bytes' && loc.bytes).toEqual(
      new Uint8Array(readFileSync(fixture('coco/train2014/COCO_train2014_000000000009.jpg'))),
    );
    expect(await store.locate('val2014/COCO_val2014_000000000099.jpg')).toBeUndefined();
  });
});
