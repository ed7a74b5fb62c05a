// The record types every reader produces and every transform consumes. A record is plain data
// (structured-cloneable), so it can be sent to a worker thread; its images are keys for an
// ImageStore, or pixels already in memory (a generated world, a test).
import type { RawImage } from '@fiber-vl/swin';

/** An image of a record: a key its source's ImageStore resolves (a path), or decoded pixels. */
export type ImageRef = string | RawImage;

/** [x1, y1, x2, y2] in pixels of the original image, continuous (COCO [x, y, w, h] -> [x, y, x + w, y + h]). */
export type Box = [number, number, number, number];

/** Character offsets [start, end) into the record's text. */
export type Span = [number, number];

interface RecordBase {
  /** Stable id within its source (image id, question id, identifier, line number). */
  id: string;
}

/** One (image, caption) pair: COCO / Flickr Karpathy splits, generic JSONL, webdataset. */
export interface CaptionRecord extends RecordBase {
  kind: 'caption';
  image: ImageRef;
  text: string;
  split?: string;
}

/** A VQAv2 question with its soft-score targets over the answer vocabulary. */
export interface VqaRecord extends RecordBase {
  kind: 'vqa';
  image: ImageRef;
  text: string;
  questionId: number;
  /** Answer-vocabulary indices and their scores (0.3, 0.6, 0.9 or 1), as ViLT's write_vqa.py makes them. */
  labels: number[];
  scores: number[];
}

/** An NLVR2 statement about an image pair. */
export interface Nlvr2Record extends RecordBase {
  kind: 'nlvr2';
  images: [ImageRef, ImageRef];
  text: string;
  label: boolean;
}

/** A caption whose phrases point at boxes (MDETR grounding json, RefCOCO, generic JSONL with boxes). */
export interface GroundingRecord extends RecordBase {
  kind: 'grounding';
  image: ImageRef;
  text: string;
  boxes: Box[];
  /** For each box, the spans of text that refer to it (MDETR `tokens_positive`). */
  spans: Span[][];
  /** For each box, its dataset category id, where the source has categories. */
  categories?: number[];
  /** MDETR `tokens_positive_eval`: per phrase of the evaluation, its spans. */
  evalSpans?: Span[][];
  /** Declared image size, when the source states it (checked against the decoded image). */
  size?: { width: number; height: number };
  dataset?: string;
}

/** COCO-style detection: boxes and contiguous labels 1..K (the official json_category_id_to_contiguous_id). */
export interface DetectionRecord extends RecordBase {
  kind: 'detection';
  image: ImageRef;
  boxes: Box[];
  labels: number[];
  size?: { width: number; height: number };
}

export type DataRecord = CaptionRecord | VqaRecord | Nlvr2Record | GroundingRecord | DetectionRecord;
export type RecordKind = DataRecord['kind'];

/** The images of a record, in order (NLVR2 has two). */
export function recordImages(r: DataRecord): ImageRef[] {
  return r.kind === 'nlvr2' ? r.images : [r.image];
}

/** The record's text, or '' for detection records (whose prompt is built from category names). */
export function recordText(r: DataRecord): string {
  return r.kind === 'detection' ? '' : r.text;
}
