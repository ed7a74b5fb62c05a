// Boxes and text through geometric augmentations. A target is the boxes of a sample with what
// travels with each box (its phrase spans, category or label); a box that leaves the image is
// dropped together with them, so boxes and phrases always stay aligned.
import type { Box, Span } from '../records.js';
import type { Skip } from '../skips.js';
import { type Affine, applyAffine } from './ops.js';

export interface Targets {
  boxes: Box[];
  /** Per box: its spans (grounding), and its category / label. */
  spans?: Span[][];
  categories?: number[];
}

function keepOnly(t: Targets, keep: boolean[], boxes: Box[]): Targets {
  const sel = <T>(xs: T[] | undefined) => xs?.filter((_, i) => keep[i]);
  const out: Targets = { boxes: boxes.filter((_, i) => keep[i]) };
  if (t.spans) out.spans = sel(t.spans);
  if (t.categories) out.categories = sel(t.categories);
  return out;
}

/**
 * Boxes through a per-box map, clipped to [0, W] x [0, H]; boxes left without area are dropped
 * (reported as 'box-outside-image', with `why`).
 */
export function mapBoxes(
  t: Targets,
  width: number,
  height: number,
  fn: (b: Box) => Box,
  why: string,
  dropped: Skip[],
): Targets {
  const keep: boolean[] = [];
  const boxes = t.boxes.map((b, i) => {
    const [x1, y1, x2, y2] = fn(b);
    const c: Box = [Math.max(0, x1), Math.max(0, y1), Math.min(width, x2), Math.min(height, y2)];
    keep[i] = c[2] > c[0] && c[3] > c[1];
    if (!keep[i]) dropped.push({ reason: 'box-outside-image', detail: `box ${i} [${b.join(', ')}] ${why}` });
    return c;
  });
  return keepOnly(t, keep, boxes);
}

/** After crop((left, top, left + w, top + h)). */
export const cropTargets = (t: Targets, left: number, top: number, w: number, h: number, dropped: Skip[]) =>
  mapBoxes(
    t,
    w,
    h,
    ([x1, y1, x2, y2]) => [x1 - left, y1 - top, x2 - left, y2 - top],
    `is outside the crop [${left}, ${top}, ${w}x${h}]`,
    dropped,
  );

/** After resizing a W x H image to outW x outH. */
export const scaleTargets = (t: Targets, sx: number, sy: number): Targets => ({
  ...t,
  boxes: t.boxes.map(([x1, y1, x2, y2]) => [x1 * sx, y1 * sy, x2 * sx, y2 * sy]),
});

/** After a horizontal flip of a `width`-wide image (continuous coordinates). */
export const flipTargets = (t: Targets, width: number): Targets => ({
  ...t,
  boxes: t.boxes.map(([x1, y1, x2, y2]) => [width - x2, y1, width - x1, y2]),
});

/** After warpAffine(forward): the box around the four moved corners, clipped to the image. */
export const affineTargets = (t: Targets, forward: Affine, width: number, height: number, dropped: Skip[]) =>
  mapBoxes(
    t,
    width,
    height,
    ([x1, y1, x2, y2]) => {
      const pts = [
        applyAffine(forward, x1, y1),
        applyAffine(forward, x2, y1),
        applyAffine(forward, x1, y2),
        applyAffine(forward, x2, y2),
      ];
      const xs = pts.map((p) => p[0]);
      const ys = pts.map((p) => p[1]);
      return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
    },
    'left the image in a geometric augmentation',
    dropped,
  );

const SWAP: Record<string, string> = { left: 'right', right: 'left' };

/**
 * The text of a horizontally flipped image: whole words "left" and "right" exchanged (a letter of
 * any script next to them makes them part of a longer word; case kept:
 * Left -> Right, LEFT -> RIGHT), with every span moved to the new character offsets. MDETR does
 * this with a plain substring replace (which also turns "bright" into "bleft" and leaves the spans
 * off by one); FIBER's official code never changes the text.
 */
export function swapLeftRight(text: string, spans: Span[][] = []): { text: string; spans: Span[][] } {
  const edits: { at: number; from: number; to: number }[] = [];
  // whole words in any script: a letter, digit or underscore of any alphabet ends a word, where
  // JavaScript's \b (ASCII only) would swap the "left" in "éleft"
  const out = text.replace(
    /(?<![\p{L}\p{M}\p{N}_])(left|right)(?![\p{L}\p{M}\p{N}_])/giu,
    (word: string, _w: string, at: number) => {
      const swapped = SWAP[word.toLowerCase()];
      const cased =
        word === word.toUpperCase()
          ? swapped.toUpperCase()
          : word[0] === word[0].toUpperCase()
            ? swapped[0].toUpperCase() + swapped.slice(1)
            : swapped;
      edits.push({ at, from: word.length, to: cased.length });
      return cased;
    },
  );
  if (edits.length === 0) return { text, spans };
  // An offset moves by the length changes of the words before it; one inside a word keeps its place in it.
  const move = (pos: number, isEnd: boolean) => {
    let shift = 0;
    for (const e of edits) {
      if (pos >= e.at + e.from || (isEnd && pos === e.at + e.from)) shift += e.to - e.from;
      else if (pos > e.at) return Math.min(pos + shift, e.at + shift + e.to);
      else break;
    }
    return pos + shift;
  };
  return { text: out, spans: spans.map((ss) => ss.map(([a, b]) => [move(a, false), move(b, true)] as Span)) };
}
