// BLEU as pycocoevalcap's bleu_scorer.py (n = 4, effective reference length "closest"):
// per-image and corpus scores from the same n-gram statistics, with the reference's
// 1e-15 / 1e-9 smoothing constants (metrics-spec §3).

export interface BleuStats {
  testlen: number;
  /** The reference length closest to testlen (ties: the shorter). */
  reflen: number;
  guess: number[];
  correct: number[];
}

const TINY = 1e-15;
const SMALL = 1e-9;

/** n-gram counts of k = 1..n, keyed by the space-joined n-gram. */
export function ngramCounts(words: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let k = 1; k <= n; k++) {
    for (let i = 0; i + k <= words.length; i++) {
      const g = words.slice(i, i + k).join(' ');
      counts.set(g, (counts.get(g) ?? 0) + 1);
    }
  }
  return counts;
}

/** Whitespace tokenisation as Python's str.split(). */
export const splitWords = (s: string): string[] => s.split(/\s+/).filter(Boolean);

/** Statistics of one candidate against its references (already tokenised strings). */
export function bleuStats(candidate: string, references: readonly string[], n = 4): BleuStats {
  const maxRef = new Map<string, number>();
  const reflens: number[] = [];
  for (const ref of references) {
    const words = splitWords(ref);
    reflens.push(words.length);
    for (const [g, c] of ngramCounts(words, n)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, c));
  }
  const words = splitWords(candidate);
  const testlen = words.length;
  const guess = Array.from({ length: n }, (_, k) => Math.max(0, testlen - k));
  const correct = new Array<number>(n).fill(0);
  for (const [g, c] of ngramCounts(words, n)) {
    const k = g.split(' ').length - 1;
    correct[k] += Math.min(maxRef.get(g) ?? 0, c);
  }
  // min over (|len - testlen|, len): the closest length, the shorter on a tie
  let reflen = reflens[0];
  for (const l of reflens) {
    const d = Math.abs(l - testlen);
    const best = Math.abs(reflen - testlen);
    if (d < best || (d === best && l < reflen)) reflen = l;
  }
  return { testlen, reflen, guess, correct };
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
