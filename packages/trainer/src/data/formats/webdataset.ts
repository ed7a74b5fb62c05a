// Webdataset tar shards (`shard-000000.tar` ...): a sample is the consecutive members sharing a
// key, an image (.jpg/.jpeg/.png/.webp) with a .txt caption or a .json in the generic line format
// (text, boxes, phrases). Shards are indexed header by header; bytes are read when a sample is.
import type { ByteSource } from '@fiber-vl/tensor-core';
import type { CaptionRecord, GroundingRecord } from '../records.js';
import { DataSkipError } from '../skips.js';
import { checkIndex, entryOf, failedEntry, idText, type RecordSource } from '../source.js';
import type { ImageLocation, ImageStore } from '../images.js';
import { groupWebdataset, indexTar, type TarMember } from '../tar.js';
import { genericRecord, type GenericJsonlOptions } from './jsonl.js';
import { isObject } from '../validate.js';

/** A tar shard: its bytes, and its path when the preparing thread can open it itself (Node files). */
export interface TarShard {
  source: ByteSource;
  path?: string;
}

const IMAGE_EXTS = ['jpg', 'jpeg', 'png', 'webp'];

function memberLocation(shard: TarShard, m: TarMember): ImageLocation | Promise<ImageLocation> {
  if (shard.path !== undefined) return { kind: 'file', path: shard.path, offset: m.offset, length: m.size };
  return shard.source
    .read(m.offset, m.size)
    .then((bytes) => ({ kind: 'bytes', name: `${shard.source.name}:${m.name}`, bytes }));
}

/** Images packed in tar shards, addressed by their member path (e.g. 'train2014/COCO_train2014_000000000009.jpg'). */
export async function tarImageStore(shards: readonly TarShard[], name = 'tar images'): Promise<ImageStore> {
  const where = new Map<string, { shard: TarShard; member: TarMember }>();
  for (const shard of shards)
    for (const member of await indexTar(shard.source)) where.set(member.name, { shard, member });
  return {
    name,
    locate(ref) {
      const hit = where.get(ref.replace(/^(\.\/)+/, ''));
      return hit && memberLocation(hit.shard, hit.member);
    },
  };
}

/**
 * Records of webdataset shards, one per sample, in shard order; the source resolves its own
 * image refs ('<shard index>:<member name>'). A sample without an image is a 'missing-image' skip.
 * The source owns the shards: its `close()` closes their sources.
 */
export async function webdatasetSource(
  shards: readonly TarShard[],
  options: GenericJsonlOptions & { name?: string } = {},
): Promise<RecordSource<CaptionRecord | GroundingRecord>> {
  const samples: { shard: number; key: string; files: Map<string, TarMember> }[] = [];
  const byName: Map<string, TarMember>[] = [];
  for (const [shard, s] of shards.entries()) {
    const members = await indexTar(s.source);
    byName.push(new Map(members.map((m) => [m.name, m])));
    for (const g of groupWebdataset(members)) samples.push({ shard, ...g });
  }
  const images: ImageStore = {
    name: options.name ?? 'webdataset',
    locate(ref) {
      const colon = ref.indexOf(':');
      const shard = Number(ref.slice(0, colon));
      const member = byName[shard]?.get(ref.slice(colon + 1));
      return member && memberLocation(shards[shard], member);
    },
  };
  const parse = genericRecord({ ...options, imagePrefix: '' });
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const source: RecordSource<CaptionRecord | GroundingRecord> = {
    name: options.name ?? shards.map((s) => s.source.name).join(','),
    length: samples.length,
    images,
    async get(index) {
      checkIndex(source, index);
      const { shard, key, files } = samples[index];
      const where = `${shards[shard].source.name}:${key}`;
      try {
        const ext = IMAGE_EXTS.find((e) => files.has(e));
        if (!ext) throw new DataSkipError('missing-image', `${where}: no ${IMAGE_EXTS.join('/')} member`);
        const image = `${shard}:${files.get(ext)!.name}`;
        const json = files.get('json');
        const meta = json ?? files.get('txt');
        if (!meta) throw new DataSkipError('malformed-record', `${where}: no .txt or .json member`);
        const body = utf8.decode(await shards[shard].source.read(meta.offset, meta.size));
        // the record's id: the json's own, else the sample key (a skip names it the same way)
        let id = key;
        try {
          const obj: unknown = json ? JSON.parse(body) : { text: body.trim() };
          if (!isObject(obj)) throw new DataSkipError('malformed-record', `${where}.json is not an object`);
          id = idText(obj.id) ?? key;
          return entryOf(() => parse({ id: key, ...obj, image }, where, index), id);
        } catch (e) {
          return failedEntry(e, id);
        }
      } catch (e) {
        return failedEntry(e, key);
      }
    },
    async close() {
      await Promise.all(shards.map((s) => s.source.close?.()));
    },
  };
  return source;
}
