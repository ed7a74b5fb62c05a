// Bad records never stop an epoch: each is skipped with a reason, counted, and reported.

export const SKIP_REASONS = [
  'malformed-record', // not valid JSON, a required field missing or of the wrong type
  'missing-image', // the image is not in the folder / tar shards
  'corrupt-image', // the decoder rejected the bytes (truncated JPEG, broken PNG)
  'empty-text', // empty caption, question or statement
  'degenerate-box', // a box with a non-finite coordinate or no area
  'box-outside-image', // a box that does not overlap the image
  'no-valid-boxes', // nothing left to ground or detect (the official has_valid_annotation)
  'unknown-category', // a category id the file does not declare
  'span-outside-text', // a phrase span that is not inside the text
  'missing-annotation', // a VQA question without its annotation
  'no-answer-in-vocab', // a VQA question none of whose answers is in the vocabulary (dropped by write_vqa.py)
  'pipeline-error', // any other error while loading or augmenting a sample (the message says which)
] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

/** Why one record (or, with scope 'box', one box of it) was left out. */
export interface Skip {
  reason: SkipReason;
  detail: string;
}

export interface SkipEvent extends Skip {
  /** 'record': the whole record was skipped; 'box': one box (and its phrases) was dropped. */
  scope: 'record' | 'box';
  source: string;
  /** Index of the entry in its source, and its position in the epoch's order. */
  index: number;
  position: number;
  epoch: number;
  /** The record's id; for a record its reader could not read, its id where the file gave one. */
  id?: string;
}

/** Thrown by a reader or transform step to skip the record; anything else thrown is a 'pipeline-error'. */
export class DataSkipError extends Error {
  constructor(
    readonly reason: SkipReason,
    detail: string,
  ) {
    super(detail);
    this.name = 'DataSkipError';
  }
}

export function skipOf(e: unknown): Skip {
  if (e instanceof DataSkipError) return { reason: e.reason, detail: e.message };
  return { reason: 'pipeline-error', detail: e instanceof Error ? e.message : String(e) };
}

function zeroCounts(): Record<SkipReason, number> {
  return Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>;
}

/** Counts of skipped records and dropped boxes by reason. */
export class SkipStats {
  records = zeroCounts();
  boxes = zeroCounts();
  /** Records delivered. */
  delivered = 0;

  get skipped(): number {
    return Object.values(this.records).reduce((a, b) => a + b, 0);
  }

  add(e: Pick<SkipEvent, 'scope' | 'reason'>): void {
    (e.scope === 'box' ? this.boxes : this.records)[e.reason]++;
  }

  /** The non-zero counts, for a log line: { records: {...}, boxes: {...}, delivered }. */
  summary(): {
    delivered: number;
    records: Partial<Record<SkipReason, number>>;
    boxes: Partial<Record<SkipReason, number>>;
  } {
    const nz = (c: Record<SkipReason, number>) => Object.fromEntries(Object.entries(c).filter(([, v]) => v > 0));
    return { delivered: this.delivered, records: nz(this.records), boxes: nz(this.boxes) };
  }
}

/**
 * The default skip reporter: one console.warn line per event, at most `perReason` per reason
 * (then one line saying further ones are only counted).
 */
export function warnSkips(perReason = 5): (e: SkipEvent) => void {
  const seen = new Map<string, number>();
  return (e) => {
    const key = `${e.scope}:${e.reason}`;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    if (n > perReason + 1) return;
    const what = e.scope === 'box' ? 'dropped a box of' : 'skipped';
    const where = `${e.source}#${e.index}${e.id !== undefined ? ` (${e.id})` : ''}`;
    const tail = n > perReason ? ` [further '${e.reason}' ${e.scope} skips are only counted]` : '';
    console.warn(`[fiber-vl data] epoch ${e.epoch}: ${what} ${where}: ${e.reason}: ${e.detail}${tail}`);
  };
}
