// CIDEr-D as pycocoevalcap's cider_scorer.py (metrics-spec §5): document frequencies from the
// references of the evaluated corpus, raw term frequencies, clipped similarity, Gaussian length
// penalty (sigma 6) on the bigram count, mean over n = 1..4, / #refs, x 10.
import { ngramCounts, splitWords } from './bleu.js';

const N = 4;
const SIGMA = 6;

interface Vec {
  vec: Map<string, number>[];
  norm: number[];
  length: number;
}

export interface CiderInput {
  candidate: string;
  references: readonly string[];
}

/** Per-image CIDEr-D of every item, computed as one corpus (order preserved). */
export function ciderD(items: readonly CiderInput[]): number[] {
  const refCounts = items.map((it) => it.references.map((r) => ngramCounts(splitWords(r), N)));
  const df = new Map<string, number>();
  for (const refs of refCounts) {
    const seen = new Set<string>();
    for (const counts of refs) for (const g of counts.keys()) seen.add(g);
    for (const g of seen) df.set(g, (df.get(g) ?? 0) + 1);
  }
  const refLen = Math.log(items.length);
  const toVec = (counts: Map<string, number>): Vec => {
    const vec = Array.from({ length: N }, () => new Map<string, number>());
    const norm = new Array<number>(N).fill(0);
    let length = 0;
    for (const [g, tf] of counts) {
      const n = g.split(' ').length - 1;
      const w = tf * (refLen - Math.log(Math.max(1, df.get(g) ?? 0)));
      vec[n].set(g, w);
      norm[n] += w ** 2;
      if (n === 1) length += tf;
    }
    return { vec, norm: norm.map(Math.sqrt), length };
  };
  return items.map((it, i) => {
    const c = toVec(ngramCounts(splitWords(it.candidate), N));
    const score = new Array<number>(N).fill(0);
    for (const refC of refCounts[i]) {
      const r = toVec(refC);
      const delta = c.length - r.length;
      for (let n = 0; n < N; n++) {
        let val = 0;
        for (const [g, w] of c.vec[n]) {
          const wr = r.vec[n].get(g) ?? 0;
          val += Math.min(w, wr) * wr;
        }
        if (c.norm[n] !== 0 && r.norm[n] !== 0) val /= c.norm[n] * r.norm[n];
        val *= Math.E ** (-(delta ** 2) / (2 * SIGMA ** 2));
        score[n] += val;
      }
    }
    const avg = (score[0] + score[1] + score[2] + score[3]) / N;
    return (avg / it.references.length) * 10;
  });
}
