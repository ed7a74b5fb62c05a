// BLEU as pycocoevalcap's bleu_scorer.py (n = 4, effective reference length "closest"):
// per-image and corpus scores from the same n-gram statistics, with the reference's
// 1e-15 / 1e-9 smoothing constants (metrics-spec §3).
import { checkCaptionItem, checkOrder } from './check.js';
import { grown, NgramIndex, PairTable, type Sentence } from './ngrams.js';

export interface BleuStats {
  testlen: number;
  /** The reference length closest to testlen (ties: the shorter). */
  reflen: number;
  guess: number[];
  correct: number[];
}

const TINY = 1e-15;
const SMALL = 1e-9;

/** Statistics of one candidate against its references (already tokenised strings). */
export function bleuStats(candidate: string, references: readonly string[], n = 4): BleuStats {
  checkOrder(n, 'bleuStats');
  checkCaptionItem(candidate, references, 'bleuStats');
  const index = new NgramIndex(n, false);
  const refs = references.map((r) => index.sentence(r));
  return new BleuCounter(index).stats(index.sentence(candidate), refs);
}

export interface BleuResult {
  /** BLEU-1..n of the corpus (from summed statistics, not the mean of the per-image values). */
  corpus: number[];
  /** BLEU-1..n of each item. */
  perImage: number[][];
  stats: BleuStats[];
}

/**
 * pycocoevalcap's Bleu(n).compute_score on tokenised captions: per-image BLEU-1..n and the corpus
 * BLEU from the summed statistics.
 */
export function bleu(items: readonly { candidate: string; references: readonly string[] }[], n = 4): BleuResult {
  checkOrder(n, 'bleu');
  items.forEach((it, i) => checkCaptionItem(it?.candidate, it?.references, `bleu: item ${i}`));
  const index = new NgramIndex(n, false);
  const counter = new BleuCounter(index);
  const stats = items.map((it) => {
    const refs = it.references.map((r) => index.sentence(r));
    return counter.stats(index.sentence(it.candidate), refs);
  });
  return { corpus: bleuFromStats(sumBleuStats(stats)), perImage: stats.map(bleuFromStats), stats };
}

/**
 * Counts clipped n-gram matches of one image at a time. The image's n-grams get small ids in a
 * table of their own (cleared per image, so it stays in cache), with a counter per id for the
 * sentence being counted and one for the maximum count in any single reference.
 */
export class BleuCounter {
  private readonly table = new PairTable(1024);
  /** [sentence stamp, count, max count in one reference] per local n-gram id. */
  private counts = new Int32Array(3 * 512);
  private stamp = 0;
  /** Local ids of the previous order's n-grams, by start word. */
  private prev = new Int32Array(64);

  constructor(private readonly index: NgramIndex) {}

  stats(cand: Sentence, refs: readonly Sentence[]): BleuStats {
    const n = this.index.maxN;
    this.table.clear();
    for (const ref of refs) this.count(ref, n, true);
    const testlen = cand.length;
    const guess: number[] = [];
    for (let k = 0; k < n; k++) guess.push(Math.max(0, testlen - k));
    const correct = new Array<number>(n).fill(0);
    this.count(cand, n, false, correct);
    // min over (|len - testlen|, len): the closest length, the shorter on a tie
    let reflen = refs[0]?.length;
    for (const { length: l } of refs) {
      const d = Math.abs(l - testlen);
      const best = Math.abs(reflen - testlen);
      if (d < best || (d === best && l < reflen)) reflen = l;
    }
    return { testlen, reflen, guess, correct };
  }

  /**
   * Counts a sentence's n-grams. For a reference, raises each n-gram's max count; for the candidate,
   * adds to correct[k] every occurrence whose running count is still within the max (the sum over
   * distinct n-grams of min(count, max count) that BLEU clips to).
   */
  private count(s: Sentence, n: number, isRef: boolean, correct?: number[]): void {
    const words = this.index.words;
    const L = s.length;
    if (this.prev.length < L) this.prev = new Int32Array(2 * L);
    const { table, prev } = this;
    const stamp = ++this.stamp;
    for (let k = 0; k < n && k < L; k++) {
      let matched = 0;
      for (let i = 0; i + k < L; i++) {
        const before = table.size;
        const id = table.intern(k === 0 ? 0 : prev[i] + 1, words[s.wordStart + i + k]);
        prev[i] = id;
        const at = 3 * id;
        if (table.size !== before) {
          // first seen in this image: no count, no max yet
          if (at + 3 > this.counts.length) this.counts = grown(this.counts, 2 * (at + 3));
          this.counts[at] = 0;
          this.counts[at + 2] = 0;
        }
        const counts = this.counts;
        const c = counts[at] === stamp ? counts[at + 1] + 1 : 1;
        counts[at] = stamp;
        counts[at + 1] = c;
        if (isRef) {
          if (c > counts[at + 2]) counts[at + 2] = c;
        } else if (c <= counts[at + 2]) matched++;
      }
      if (correct) correct[k] = matched;
    }
  }
}

/** BLEU-1..n from statistics (one image, or summed over a corpus). */
export function bleuFromStats({ testlen, reflen, guess, correct }: BleuStats): number[] {
  const n = guess.length;
  const out: number[] = [];
  let bleu = 1;
  for (let k = 0; k < n; k++) {
    bleu *= (correct[k] + TINY) / (guess[k] + SMALL);
    out.push(bleu ** (1 / (k + 1)));
  }
  const ratio = (testlen + TINY) / (reflen + SMALL);
  if (ratio < 1) for (let k = 0; k < n; k++) out[k] *= Math.exp(1 - 1 / ratio);
  return out;
}

export function sumBleuStats(stats: readonly BleuStats[]): BleuStats {
  const n = stats[0]?.guess.length ?? 4;
  const total: BleuStats = { testlen: 0, reflen: 0, guess: new Array(n).fill(0), correct: new Array(n).fill(0) };
  for (const s of stats) {
    total.testlen += s.testlen;
    total.reflen += s.reflen;
    for (let k = 0; k < n; k++) {
      total.guess[k] += s.guess[k];
      total.correct[k] += s.correct[k];
    }
  }
  return total;
}
