// COCO-layout box annotations: `instances_*.json` (detection) and MDETR's grounding files
// (`final_flickr_separateGT_*.json`, `final_refexp_*.json`, `final_mixed_train*.json`), read the way
// FIBER's fine-grained datasets (maskrcnn_benchmark COCODataset / ModulatedDataset) read them:
// images in id order, crowd boxes left out, an image without boxes not used.
import type { Box, DetectionRecord, GroundingRecord, Span } from '../records.js';
import { DataSkipError, type Skip } from '../skips.js';
import { checkIndex, entryOf, failedEntry, idText, type RecordSource, type SourceEntry } from '../source.js';
import {
  arr,
  boxOf,
  type BoxPolicy,
  checkRecordBoxes,
  isObject,
  num,
  requireText,
  requireUnique,
  shown,
  spansOf,
  str,
  topArray,
  type Json,
} from '../validate.js';

export interface CocoCategory {
  /**
   * The json's category id, the contiguous label 1..K (sorted ids, as json_category_id_to_contiguous_id) and the
   * name.
   */
  id: number;
  label: number;
  name: string;
}

interface CocoIndex {
  images: Json[];
  /** Skip entries for the `images` entries that are not objects (counted, as other bad images). */
  notObjects: SourceEntry<never>[];
  annotations: Map<number, Json[]>;
  categories: CocoCategory[];
}

/** An id field as the refusals show it: "missing", or its JSON text. */
const idShown = (v: unknown) => (v === undefined ? 'missing' : (JSON.stringify(v) ?? String(v)));

function indexCoco(json: unknown, name: string): CocoIndex {
  const listed = topArray(json, 'images', name);
  // a repeated id would give one image's boxes to another (annotations are found by image id)
  requireUnique(listed, name, 'images');
  const images = listed.filter(isObject);
  const notObjects = listed.flatMap((x, i) =>
    isObject(x) ? [] : [failedEntry(new DataSkipError('malformed-record', `${name}: images[${i}] is not an object`))],
  );
  // an entry without a numeric id (a malformed record, skipped later) sorts last: NaN would make
  // the comparison inconsistent and leave the rest out of id order
  const idKey = (x: Json) => (typeof x.id === 'number' && Number.isFinite(x.id) ? x.id : Infinity);
  images.sort((a, b) => idKey(a) - idKey(b) || 0);
  const annotations = new Map<number, Json[]>();
  for (const [i, a] of topArray(json, 'annotations', name).entries()) {
    // an annotation that cannot be joined to its image would leave it without that box, silently
    // (pycocotools fails on a non-object and files a string image_id under another key)
    if (!isObject(a)) throw new TypeError(`${name}: annotations[${i}] is not an object`);
    if (typeof a.image_id !== 'number' || !Number.isFinite(a.image_id))
      throw new TypeError(
        `${name}: annotations[${i}].image_id is ${idShown(a.image_id)}, not a number (it names the annotation's image)`,
      );
    const list = annotations.get(a.image_id);
    if (list) list.push(a);
    else annotations.set(a.image_id, [a]);
  }
  const declared: unknown[] = isObject(json) && Array.isArray(json.categories) ? json.categories : [];
  // a category without an integer id would take a label of its own and shift every other class's
  // name onto the wrong boxes; pycocotools fails on it too
  declared.forEach((c, i) => {
    if (!isObject(c)) throw new TypeError(`${name}: categories[${i}] is not an object`);
    if (!Number.isSafeInteger(c.id))
      throw new TypeError(
        `${name}: categories[${i}].id is ${idShown(c.id)}, ` +
          (Number.isInteger(c.id) ? 'past 2^53 (not exactly representable)' : 'not an integer'),
      );
    if (typeof c.name !== 'string') throw new TypeError(`${name}: categories[${i}].name is not a string`);
  });
  requireUnique(declared, name, 'categories');
  const cats = declared.filter(isObject);
  // labels 1..K in id order (a map: LVIS and Objects365 have 1,203 and 365 classes, users more)
  const labelOf = new Map(
    cats
      .map((c) => Number(c.id))
      .sort((a, b) => a - b)
      .map((id, k) => [id, k + 1]),
  );
  const categories = cats
    .map((c) => ({ id: Number(c.id), label: labelOf.get(Number(c.id))!, name: String(c.name) }))
    .sort((a, b) => a.label - b.label);
  return { images, notObjects, annotations, categories };
}

/** A source with the categories of its file. */
export type CocoSource<R extends GroundingRecord | DetectionRecord> = RecordSource<R> & {
  readonly categories: readonly CocoCategory[];
};

function sourceOf<R extends GroundingRecord | DetectionRecord>(
  name: string,
  entries: SourceEntry<R>[],
  categories: CocoCategory[],
): CocoSource<R> {
  const source: CocoSource<R> = {
    name,
    length: entries.length,
    categories,
    get(index) {
      checkIndex(source, index);
      return entries[index];
    },
  };
  return source;
}

interface Obj {
  box: Box;
  category: number;
  ann: Json;
  where: string;
}

/**
 * Whether an annotation is a crowd region, left out as the official loaders leave it out (they keep
 * `iscrowd == 0`). JSON writers differ in 0/1 and false/true; a missing field is an object. Any other
 * value is a malformed record: guessing would train on crowd boxes or drop real ones.
 */
function isCrowd(ann: Json, where: string): boolean {
  const v = ann.iscrowd;
  if (v === undefined || v === 0 || v === false) return false;
  if (v === 1 || v === true) return true;
  throw new DataSkipError('malformed-record', `${where}: field "iscrowd" must be 0 or 1, got ${shown(v)}`);
}

/** The image's non-crowd objects, their category checked; unknown categories follow `policy`. */
function objectsOf(
  anns: Json[],
  known: Map<number, CocoCategory> | undefined,
  policy: BoxPolicy,
  where: string,
  dropped: Skip[],
): Obj[] {
  const out: Obj[] = [];
  anns.forEach((ann, k) => {
    const at = `${where} annotation ${ann.id ?? k}`;
    if (isCrowd(ann, at)) return;
    const category = num(ann, 'category_id', at);
    if (known && !known.has(category)) {
      const skip: Skip = {
        reason: 'unknown-category',
        detail: `${at}: category_id ${category} is not in the file's categories`,
      };
      if (policy === 'skip-record') throw new DataSkipError(skip.reason, skip.detail);
      dropped.push(skip);
      return;
    }
    out.push({ box: boxOf(ann.bbox, 'xywh', at), category, ann, where: at });
  });
  return out;
}

function sizeOf(img: Json, where: string): { width: number; height: number } | undefined {
  if (typeof img.width !== 'number' || typeof img.height !== 'number') return undefined;
  if (!(img.width > 0 && img.height > 0))
    throw new DataSkipError('malformed-record', `${where}: width/height ${img.width}x${img.height}`);
  return { width: img.width, height: img.height };
}

export interface CocoInstancesOptions {
  /** Prepended to `file_name` (e.g. 'val2014/'). */
  imagePrefix?: string;
  /** Bad boxes (degenerate, outside the declared size, unknown category) are dropped (default) or skip the image. */
  boxPolicy?: BoxPolicy;
  name?: string;
}

/** Detection records of `instances_*.json`: boxes as continuous xyxy, labels contiguous 1..K. */
export function cocoInstances(json: unknown, options: CocoInstancesOptions = {}): CocoSource<DetectionRecord> {
  const name = options.name ?? 'instances.json';
  const policy = options.boxPolicy ?? 'drop-box';
  const { images, notObjects, annotations, categories } = indexCoco(json, name);
  const known = new Map(categories.map((c) => [c.id, c]));
  const entries = images.map((img, i) =>
    entryOf(() => {
      const where = `${name} image ${img.id ?? `#${i}`}`;
      const id = num(img, 'id', where);
      const dropped: Skip[] = [];
      const objs = objectsOf(annotations.get(id) ?? [], known, policy, where, dropped);
      const record: DetectionRecord = {
        kind: 'detection',
        id: String(id),
        image: (options.imagePrefix ?? '') + str(img, 'file_name', where),
        boxes: objs.map((o) => o.box),
        labels: objs.map((o) => known.get(o.category)!.label),
      };
      const size = sizeOf(img, where);
      if (size) record.size = size;
      const checked = checkRecordBoxes(record, size, policy, where);
      return { record: checked.record, dropped: [...dropped, ...checked.dropped] };
    }, idText(img.id)),
  );
  return sourceOf(name, [...entries, ...notObjects], categories);
}

export interface MdetrOptions {
  /**
   * Prepended to `file_name`; for mixed files, per `data_source` instead (FIBER's paths_catalog: coco ->
   * 'coco/train2014/', vg -> 'gqa/images/').
   */
  imagePrefix?: string;
  dataSourcePrefix?: Readonly<Record<string, string>>;
  /** Bad boxes (and undeclared categories) skip the record (default: its phrases point at them) or are dropped. */
  boxPolicy?: BoxPolicy;
  name?: string;
  /**
   * Read `tokens_positive_eval` into `evalSpans` (default true). Training never uses them: with
   * false, a record whose evaluation spans are broken is not skipped for it.
   */
  evalSpans?: boolean;
}

/** Grounding records of an MDETR json: caption, boxes with their `tokens_positive` spans, `tokens_positive_eval`. */
export function mdetrGrounding(json: unknown, options: MdetrOptions = {}): CocoSource<GroundingRecord> {
  const name = options.name ?? 'mdetr.json';
  const policy = options.boxPolicy ?? 'skip-record';
  const { images, notObjects, annotations, categories } = indexCoco(json, name);
  const known = categories.length ? new Map(categories.map((c) => [c.id, c])) : undefined;
  const entries = images.map((img, i) =>
    entryOf(() => {
      const where = `${name} image ${img.id ?? `#${i}`}`;
      const id = num(img, 'id', where);
      const text = requireText(str(img, 'caption', where), where);
      const source = typeof img.data_source === 'string' ? img.data_source : undefined;
      const prefix =
        source !== undefined && options.dataSourcePrefix?.[source] !== undefined
          ? options.dataSourcePrefix[source]
          : (options.imagePrefix ?? '');
      const dropped: Skip[] = [];
      const objs = objectsOf(annotations.get(id) ?? [], known, policy, where, dropped);
      const spans: Span[][] = objs.map((o) =>
        spansOf(o.ann.tokens ?? o.ann.tokens_positive ?? arr(o.ann, 'tokens_positive', o.where), text, o.where, {
          codePoints: true,
        }),
      );
      const record: GroundingRecord = {
        kind: 'grounding',
        id: String(id),
        image: prefix + str(img, 'file_name', where),
        text,
        boxes: objs.map((o) => o.box),
        spans,
        categories: objs.map((o) => o.category),
      };
      if (options.evalSpans !== false && Array.isArray(img.tokens_positive_eval)) {
        record.evalSpans = img.tokens_positive_eval.map((p, k) =>
          spansOf(p, text, `${where} tokens_positive_eval[${k}]`, { codePoints: true }),
        );
      }
      const size = sizeOf(img, where);
      if (size) record.size = size;
      if (typeof img.dataset_name === 'string') record.dataset = img.dataset_name;
      const checked = checkRecordBoxes(record, size, policy, where);
      return { record: checked.record, dropped: [...dropped, ...checked.dropped] };
    }, idText(img.id)),
  );
  return sourceOf(name, [...entries, ...notObjects], categories);
}

/** GLIP's clean_name: drop "(...)", underscores to spaces, double spaces to one. */
export function cleanCategoryName(name: string): string {
  return name
    .replace(/\(.*\)/g, '')
    .replace(/_/g, ' ')
    .replace(/ {2}/g, ' ');
}

/**
 * A detection record as grounding, as the official convert_od_to_grounding_simple does: the
 * caption is every category name (label order, cleaned) joined by `separator` (FIBER: ". "), and
 * each box points at its category's name.
 */
export function detectionToGrounding(
  record: DetectionRecord,
  categories: readonly CocoCategory[],
  { separator = '. ' }: { separator?: string } = {},
): GroundingRecord {
  let text = '';
  const spanOf = new Map<number, Span>();
  categories.forEach((c, i) => {
    const start = text.length;
    text += cleanCategoryName(c.name);
    spanOf.set(c.label, [start, text.length]);
    if (i < categories.length - 1) text += separator;
  });
  const spans = record.labels.map((l) => {
    const s = spanOf.get(l);
    if (!s) throw new DataSkipError('unknown-category', `detection ${record.id}: label ${l} has no category name`);
    return [s];
  });
  const out: GroundingRecord = {
    kind: 'grounding',
    id: record.id,
    image: record.image,
    text,
    boxes: record.boxes,
    spans,
    categories: record.labels,
  };
  if (record.size) out.size = record.size;
  return out;
}
