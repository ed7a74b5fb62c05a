// CIDEr-D as pycocoevalcap's cider_scorer.py (metrics-spec §5): document frequencies from the
// references of the evaluated corpus, raw term frequencies, clipped similarity, Gaussian length
// penalty (sigma 6) on the bigram count, mean over n = 1..4, / #refs, x 10.
// N-grams are counted by integer id; every floating-point sum runs in the order of the reference
// implementation's dicts (n-grams by first occurrence), so the scores are bit-for-bit those of the
// string-keyed version.
import { checkCaptionItem } from './check.js';
import { IdList, NgramIndex, offset, type Sentence } from './ngrams.js';

const N = 4;
const SIGMA = 6;

export interface CiderInput {
  candidate: string;
  references: readonly string[];
}

/** Per-image CIDEr-D of every item, computed as one corpus (order preserved). */
export function ciderD(items: readonly CiderInput[]): number[] {
  items.forEach((it, i) => checkCaptionItem(it?.candidate, it?.references, `ciderD: item ${i}`));
  const index = new NgramIndex(N);
  const refs = items.map((it) => it.references.map((r) => index.sentence(r)));
  const cands = items.map((it) => index.sentence(it.candidate));
  return ciderDSentences(index, cands, refs);
}

/** A sentence's tf-idf vector per n: distinct n-gram ids by first occurrence, their weights, the norms. */
interface Vec {
  ids: IdList[];
  weights: Float64Array[];
  norm: number[];
  /** The reference's "length": the number of bigrams. */
  length: number;
}

/** CIDEr-D of candidates against references given as sentences of one index (one corpus). */
export function ciderDSentences(
  index: NgramIndex,
  cands: readonly Sentence[],
  refs: readonly (readonly Sentence[])[],
): number[] {
  const size = index.size;
  // Document frequency: in how many images' reference sets each n-gram occurs.
  const df = new Int32Array(size);
  const seenIn = new Int32Array(size);
  const arena = index.grams;
  refs.forEach((imageRefs, i) => {
    for (const r of imageRefs) {
      for (let at = r.start; at < r.start + offset(r.length, N); at++) {
        const g = arena[at];
        if (seenIn[g] !== i + 1) {
          seenIn[g] = i + 1;
          df[g]++;
        }
      }
    }
  });
  const refLen = Math.log(cands.length);
  const idf = new Float64Array(size);
  for (let g = 0; g < size; g++) idf[g] = refLen - Math.log(Math.max(1, df[g]));

  const tf = new Int32Array(size);
  const refWeight = new Float64Array(size);
  const makeVec = (): Vec => ({
    ids: Array.from({ length: N }, () => new IdList()),
    weights: Array.from({ length: N }, () => new Float64Array(64)),
    norm: new Array<number>(N).fill(0),
    length: 0,
  });
  const toVec = (s: Sentence, v: Vec): void => {
    for (let n = 0; n < N; n++) {
      const ids = v.ids[n];
      ids.length = 0;
      if (n < s.length) {
        const start = s.start + offset(s.length, n);
        for (let i = start; i < start + s.length - n; i++) if (tf[arena[i]]++ === 0) ids.push(arena[i]);
      }
      if (v.weights[n].length < ids.length) v.weights[n] = new Float64Array(ids.items.length);
      const w = v.weights[n];
      let norm = 0;
      for (let j = 0; j < ids.length; j++) {
        const g = ids.items[j];
        w[j] = tf[g] * idf[g];
        norm += w[j] ** 2;
        tf[g] = 0;
      }
      v.norm[n] = Math.sqrt(norm);
    }
    v.length = Math.max(0, s.length - 1);
  };

  const c = makeVec();
  const r = makeVec();
  return cands.map((cand, i) => {
    toVec(cand, c);
    const score = new Array<number>(N).fill(0);
    for (const ref of refs[i]) {
      toVec(ref, r);
      for (let n = 0; n < N; n++) {
        for (let j = 0; j < r.ids[n].length; j++) refWeight[r.ids[n].items[j]] = r.weights[n][j];
      }
      const delta = c.length - r.length;
      for (let n = 0; n < N; n++) {
        let val = 0;
        const ids = c.ids[n];
        const w = c.weights[n];
        for (let j = 0; j < ids.length; j++) {
          const wr = refWeight[ids.items[j]];
          val += Math.min(w[j], wr) * wr;
        }
        if (c.norm[n] !== 0 && r.norm[n] !== 0) val /= c.norm[n] * r.norm[n];
        val *= Math.E ** (-(delta ** 2) / (2 * SIGMA ** 2));
        score[n] += val;
      }
      for (let n = 0; n < N; n++) for (let j = 0; j < r.ids[n].length; j++) refWeight[r.ids[n].items[j]] = 0;
    }
    const avg = (score[0] + score[1] + score[2] + score[3]) / N;
    return (avg / refs[i].length) * 10;
  });
}
