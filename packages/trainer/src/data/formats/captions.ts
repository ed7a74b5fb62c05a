// Karpathy-split caption json (`dataset_coco.json`, `dataset_flickr30k.json`): one record per
// (image, sentence), as ViLT / FIBER's BaseDataset indexes them.
import type { CaptionRecord } from '../records.js';
import { DataSkipError } from '../skips.js';
import { checkIndex, entryOf, failedEntry, type RecordSource, type SourceEntry } from '../source.js';
import { arr, isObject, requireText, str, topArray } from '../validate.js';

export interface KarpathyOptions {
  /** Keep only these splits (FIBER trains on ['train', 'restval']); all when omitted. */
  splits?: readonly string[];
  /**
   * Drop repeated sentences of an image, as BaseDataset's remove_duplicate does (keeping first-occurrence order).
   * Default true.
   */
  dedupe?: boolean;
  /** Prepended to every image path (`filepath/filename`, or `filename` where the json has no filepath). */
  imagePrefix?: string;
  /** Names the source in skip reports. */
  name?: string;
}

/** An image's record id (the COCO id, else the Karpathy index, else its place in the file); its sentences are `<id>/<k>`. */
const idOf = (img: unknown, i: number) => String(isObject(img) ? (img.cocoid ?? img.imgid ?? i) : i);

/**
 * Records of a Karpathy-split json (parsed), e.g. `karpathyCaptions(JSON.parse(text), { splits: ['train', 'restval']
 * })`.
 */
export function karpathyCaptions(json: unknown, options: KarpathyOptions = {}): RecordSource<CaptionRecord> {
  const name = options.name ?? 'dataset_coco.json';
  const splits = options.splits && new Set(options.splits);
  const prefix = options.imagePrefix ?? '';
  const entries: SourceEntry<CaptionRecord>[] = [];
  topArray(json, 'images', name).forEach((img, i) => {
    const where = `${name} images[${i}]`;
    const split = isObject(img) && typeof img.split === 'string' ? img.split : undefined;
    if (splits && !(split !== undefined && splits.has(split))) return;
    let image: string;
    let texts: string[];
    try {
      const filename = str(img, 'filename', where);
      const filepath = isObject(img) && typeof img.filepath === 'string' ? img.filepath : '';
      image = prefix + (filepath ? `${filepath}/${filename}` : filename);
      const raw = arr(img, 'sentences', where).map((s, k) => str(s, 'raw', `${where}.sentences[${k}]`));
      texts = options.dedupe === false ? raw : [...new Set(raw)];
      if (texts.length === 0) throw new DataSkipError('empty-text', `${where}: no sentences`);
    } catch (e) {
      entries.push(failedEntry(e, idOf(img, i)));
      return;
    }
    const id = idOf(img, i);
    texts.forEach((text, k) => {
      const at = `${where}.sentences[${k}]`;
      entries.push(
        entryOf(() => ({ kind: 'caption', id: `${id}/${k}`, image, text: requireText(text, at), split }), `${id}/${k}`),
      );
    });
  });
  const source: RecordSource<CaptionRecord> = {
    name,
    length: entries.length,
    get(index) {
      checkIndex(source, index);
      return entries[index];
    },
  };
  return source;
}
