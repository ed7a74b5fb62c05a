// BLEU as pycocoevalcap's bleu_scorer.py (n = 4, effective reference length "closest"):
// per-image and corpus scores from the same n-gram statistics, with the reference's
// 1e-15 / 1e-9 smoothing constants (metrics-spec §3).
import { NgramIndex, offset, type Sentence } from './ngrams.js';

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
  const index = new NgramIndex(n);
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
  const index = new NgramIndex(n);
  const sentences = items.map((it) => ({
    cand: index.sentence(it.candidate),
    refs: it.references.map((r) => index.sentence(r)),
  }));
  const counter = new BleuCounter(index);
  const stats = sentences.map((s) => counter.stats(s.cand, s.refs));
  return { corpus: bleuFromStats(sumBleuStats(stats)), perImage: stats.map(bleuFromStats), stats };
}

/**
 * Counts clipped n-gram matches in one pass per sentence, with per-n-gram counters indexed by
 * n-gram id. Each counter carries the stamp of the sentence (or image) it belongs to, so nothing
 * is reset between sentences: a stale stamp reads as zero.
 */
export class BleuCounter {
  /** [stamp, count] per n-gram id, for the sentence being counted. */
  private counts = new Int32Array(0);
  /** [stamp, max count in any one reference] per n-gram id, for the image being scored. */
  private maxRef = new Int32Array(0);
  private stamp = 0;
  private image = 0;

  constructor(private readonly index: NgramIndex) {}

  stats(cand: Sentence, refs: readonly Sentence[]): BleuStats {
    const n = this.index.maxN;
    if (this.counts.length < 2 * this.index.size) {
      this.counts = new Int32Array(4 * this.index.size);
      this.maxRef = new Int32Array(4 * this.index.size);
      this.stamp = 0;
      this.image = 0;
    }
    const { counts, maxRef } = this;
    const arena = this.index.arena;
    const image = ++this.image;
    for (const ref of refs) {
      const stamp = ++this.stamp;
      const end = ref.start + offset(ref.length, n);
      for (let i = ref.start; i < end; i++) {
        const at = 2 * arena[i];
        const c = counts[at] === stamp ? counts[at + 1] + 1 : 1;
        counts[at] = stamp;
        counts[at + 1] = c;
        if (maxRef[at] !== image) {
          maxRef[at] = image;
          maxRef[at + 1] = c;
        } else if (c > maxRef[at + 1]) maxRef[at + 1] = c;
      }
    }
    const testlen = cand.length;
    const guess: number[] = [];
    const correct: number[] = [];
    // sum over distinct n-grams of min(count, max ref count) = the occurrences whose running count
    // is still within the max ref count
    const stamp = ++this.stamp;
    for (let k = 0; k < n; k++) {
      guess.push(Math.max(0, testlen - k));
      let matched = 0;
      if (k < testlen) {
        const start = cand.start + offset(testlen, k);
        for (let i = start; i < start + testlen - k; i++) {
          const at = 2 * arena[i];
          const c = counts[at] === stamp ? counts[at + 1] + 1 : 1;
          counts[at] = stamp;
          counts[at + 1] = c;
          if (maxRef[at] === image && c <= maxRef[at + 1]) matched++;
        }
      }
      correct.push(matched);
    }
    // min over (|len - testlen|, len): the closest length, the shorter on a tie
    let reflen = refs[0]?.length;
    for (const { length: l } of refs) {
      const d = Math.abs(l - testlen);
      const best = Math.abs(reflen - testlen);
      if (d < best || (d === best && l < reflen)) reflen = l;
    }
    return { testlen, reflen, guess, correct };
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
