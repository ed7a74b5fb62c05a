// METEOR 1.5 (Denkowski & Lavie 2014) as the COCO caption evaluation runs it (`-l en -norm`, task
// rank: alpha 0.85, beta 0.2, gamma 0.6, delta 0.75), with the exact, stem (Snowball English),
// synonym (WordNet) and, when a paraphrase table is supplied, paraphrase modules, weights
// 1.0 / 0.6 / 0.8 / 0.6. Without a table the score is labelled METEOR_no_paraphrase: it can only
// be at or below official COCO METEOR. Alignment, beam search (with its integer-truncated ranking
// counters and distance quirk), statistics and their corpus aggregation follow the Meteor 1.5 source.
import { checkCaptionItem } from '../check.js';
import stem from 'wink-porter2-stemmer';
import { meteorNormalize } from './normalize.js';
import { synsetsOf, type MeteorResources } from './resources.js';
import type { ParaphraseTable } from './paraphrase.js';

export interface MeteorParams {
  alpha: number;
  beta: number;
  gamma: number;
  delta: number;
  /** Weights of the exact, stem, synonym and paraphrase modules in the score. */
  weights: [number, number, number, number];
  beamSize: number;
}

export const METEOR_DEFAULTS: MeteorParams = {
  alpha: 0.85,
  beta: 0.2,
  gamma: 0.6,
  delta: 0.75,
  weights: [1.0, 0.6, 0.8, 0.6],
  beamSize: 40,
};
/** Module weights Meteor's scorer hands to the aligner's beam search (not the scoring weights). */
const SEARCH_WEIGHTS = [1.0, 0.5, 0.5, 0.5];

interface Match {
  module: number;
  start: number; // first word in the reference (line 2)
  length: number;
  matchStart: number; // first word in the hypothesis (line 1)
  matchLength: number;
}

interface Path {
  matches: (Match | null)[];
  used1: Uint8Array;
  used2: Uint8Array;
  matches1: number; // Java ints: weighted counts truncated after every addition
  matches2: number;
  chunks: number;
  idx: number;
  distance: number;
  lastMatchEnd: number;
}

const isUsed = (p: Path, m: Match) => {
  for (let k = 0; k < m.length; k++) if (p.used2[m.start + k]) return true;
  for (let k = 0; k < m.matchLength; k++) if (p.used1[m.matchStart + k]) return true;
  return false;
};
const copyPath = (p: Path): Path => ({
  ...p,
  matches: p.matches.slice(),
  used1: p.used1.slice(),
  used2: p.used2.slice(),
});
/** Counts match `m` into `p`: weighted match totals, a new chunk unless it continues the last one, and the cursor. */
const countMatch = (p: Path, m: Match) => {
  p.matches1 = Math.trunc(p.matches1 + m.matchLength * SEARCH_WEIGHTS[m.module]);
  p.matches2 = Math.trunc(p.matches2 + m.length * SEARCH_WEIGHTS[m.module]);
  if (p.lastMatchEnd !== -1 && m.matchStart !== p.lastMatchEnd) p.chunks++;
  p.idx = m.start + m.length;
  p.lastMatchEnd = m.matchStart + m.matchLength;
};
const comparePaths = (x: Path, y: Path) => {
  const d = y.matches1 + y.matches2 - (x.matches1 + x.matches2);
  if (d !== 0) return d > 0 ? 1 : -1;
  return x.chunks - y.chunks || x.distance - y.distance;
};

/** Meteor's sufficient statistics for one segment (or a sum of segments). */
export interface MeteorStats {
  testLength: number;
  referenceLength: number;
  testFunctionWords: number;
  referenceFunctionWords: number;
  testTotalMatches: number;
  referenceTotalMatches: number;
  testStageMatchesContent: number[];
  referenceStageMatchesContent: number[];
  testStageMatchesFunction: number[];
  referenceStageMatchesFunction: number[];
  chunks: number;
  testWordMatches: number;
  referenceWordMatches: number;
}

export class Meteor {
  private readonly stemCache = new Map<string, string>();
  private readonly synCache = new Map<string, Set<number>>();

  /** Number of modules: 3 (exact, stem, synonym) or 4 with a paraphrase table. */
  readonly modules: number;

  constructor(
    readonly resources: MeteorResources,
    readonly params: MeteorParams = METEOR_DEFAULTS,
    /** Meteor's paraphrase table (paraphrase-en.gz, see parseParaphraseTable); enables the fourth module. */
    readonly paraphrases?: ParaphraseTable,
  ) {
    this.modules = paraphrases ? 4 : 3;
  }

  /** The label of this configuration's scores. */
  get label(): 'METEOR' | 'METEOR_no_paraphrase' {
    return this.paraphrases ? 'METEOR' : 'METEOR_no_paraphrase';
  }

  private stemOf(w: string): string {
    let s = this.stemCache.get(w);
    if (s === undefined) {
      s = stem(w);
      this.stemCache.set(w, s);
    }
    return s;
  }

  private synOf(w: string): Set<number> {
    let s = this.synCache.get(w);
    if (!s) {
      s = synsetsOf(this.resources, w);
      this.synCache.set(w, s);
    }
    return s;
  }

  /** Aligns hypothesis words (line 1) to reference words (line 2) and returns the segment statistics. */
  alignStats(hyp: string[], ref: string[]): MeteorStats {
    const n1 = hyp.length;
    const n2 = ref.length;
    const candidates: Match[][] = Array.from({ length: n2 }, () => []);
    const cover1 = new Int32Array(n1);
    const cover2 = new Int32Array(n2);
    const add = (module: number, j: number, i: number, length = 1, matchLength = 1) => {
      candidates[j].push({ module, start: j, length, matchStart: i, matchLength });
      cover1[i]++;
      cover2[j]++;
    };
    const identical = n1 === n2 && hyp.every((w, i) => w === ref[i]);
    for (let j = 0; j < n2; j++) for (let i = 0; i < n1; i++) if (hyp[i] === ref[j]) add(0, j, i);
    if (!identical) {
      const s1 = hyp.map((w) => this.stemOf(w));
      const s2 = ref.map((w) => this.stemOf(w));
      for (let j = 0; j < n2; j++) for (let i = 0; i < n1; i++) if (s1[i] === s2[j] && hyp[i] !== ref[j]) add(1, j, i);
      const y1 = hyp.map((w) => this.synOf(w));
      const y2 = ref.map((w) => this.synOf(w));
      for (let j = 0; j < n2; j++) {
        for (let i = 0; i < n1; i++) {
          if (hyp[i] === ref[j]) continue;
          let syn = false;
          for (const s of y1[i]) {
            if (y2[j].has(s)) {
              syn = true;
              break;
            }
          }
          if (syn) add(2, j, i);
        }
      }
      if (this.paraphrases) this.paraphraseMatches(hyp, ref, candidates, cover1, cover2);
    }
    // One-to-one, non-overlapping matches are fixed.
    const start: Path = {
      matches: new Array(n2).fill(null),
      used1: new Uint8Array(n1),
      used2: new Uint8Array(n2),
      matches1: 0,
      matches2: 0,
      chunks: 0,
      idx: 0,
      distance: 0,
      lastMatchEnd: -1,
    };
    for (let j = 0; j < n2; j++) {
      if (candidates[j].length !== 1) continue;
      const m = candidates[j][0];
      let overlap = false;
      for (let k = 0; k < m.length; k++) if (cover2[j + k] !== 1) overlap = true;
      for (let k = 0; k < m.matchLength; k++) if (cover1[m.matchStart + k] !== 1) overlap = true;
      if (overlap) continue;
      start.matches[j] = m;
      for (let k = 0; k < m.length; k++) start.used2[j + k] = 1;
      for (let k = 0; k < m.matchLength; k++) start.used1[m.matchStart + k] = 1;
    }
    const best = this.resolve(candidates, start);

    const fn1 = hyp.map((w) => this.resources.functionWords.has(w.toLowerCase()));
    const fn2 = ref.map((w) => this.resources.functionWords.has(w.toLowerCase()));
    const K = this.modules;
    const tc = new Array(K).fill(0);
    const rc = new Array(K).fill(0);
    const tf = new Array(K).fill(0);
    const rf = new Array(K).fill(0);
    let chunks = 0;
    let lastMatchEnd = -1;
    for (let idx = 0; idx < n2; ) {
      const m = best.matches[idx];
      if (!m) {
        if (lastMatchEnd !== -1) {
          chunks++;
          lastMatchEnd = -1;
        }
        idx++;
        continue;
      }
      for (let k = 0; k < m.matchLength; k++) {
        if (fn1[m.matchStart + k]) tf[m.module]++;
        else tc[m.module]++;
      }
      for (let k = 0; k < m.length; k++) {
        if (fn2[m.start + k]) rf[m.module]++;
        else rc[m.module]++;
      }
      if (lastMatchEnd !== -1 && m.matchStart !== lastMatchEnd) chunks++;
      idx = m.start + m.length;
      lastMatchEnd = m.matchStart + m.matchLength;
    }
    if (lastMatchEnd !== -1) chunks++;
    const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
    return {
      testLength: n1,
      referenceLength: n2,
      testFunctionWords: fn1.filter(Boolean).length,
      referenceFunctionWords: fn2.filter(Boolean).length,
      testTotalMatches: sum(tc) + sum(tf),
      referenceTotalMatches: sum(rc) + sum(rf),
      testStageMatchesContent: tc,
      referenceStageMatchesContent: rc,
      testStageMatchesFunction: tf,
      referenceStageMatchesFunction: rf,
      chunks,
      testWordMatches: sum(tc) + sum(tf),
      referenceWordMatches: sum(rc) + sum(rf),
    };
  }

  /**
   * ParaphraseMatcher: phrases of the reference whose table paraphrase occurs in the hypothesis,
   * then the other direction. Kept from Meteor 1.5: the second direction adds each match twice.
   */
  private paraphraseMatches(
    hyp: string[],
    ref: string[],
    candidates: Match[][],
    cover1: Int32Array,
    cover2: Int32Array,
  ): void {
    const table = this.paraphrases!;
    const line1 = hyp.map((w) => table.vocab.get(w) ?? -1);
    const line2 = ref.map((w) => table.vocab.get(w) ?? -1);
    const occurs = (line: number[], at: number, words: Int32Array) => {
      for (let k = 0; k < words.length; k++) if (at + k === line.length || line[at + k] !== words[k]) return false;
      return true;
    };
    for (let j = 0; j < line2.length; j++) {
      for (const [len, par] of table.pathsFrom(line2, j)) {
        const words = table.paraphrases[par];
        for (let i = 0; i < line1.length; i++) {
          if (!occurs(line1, i, words)) continue;
          cover1[i]++;
          cover2[j]++;
          candidates[j].push({ module: 3, start: j, length: len, matchStart: i, matchLength: words.length });
        }
      }
    }
    for (let i = 0; i < line1.length; i++) {
      for (const [len, par] of table.pathsFrom(line1, i)) {
        const words = table.paraphrases[par];
        for (let j = 0; j < line2.length; j++) {
          if (!occurs(line2, j, words)) continue;
          const m: Match = { module: 3, start: j, length: words.length, matchStart: i, matchLength: len };
          candidates[j].push(m, m);
          cover1[i]++;
          cover2[j]++;
        }
      }
    }
  }

  /** Meteor's beam search over the remaining candidate matches, left to right over the reference. */
  private resolve(candidates: Match[][], start: Path): Path {
    const n2 = candidates.length;
    let next: Path[] = [start];
    for (let current = 0; current <= n2; current++) {
      const paths = next.sort(comparePaths);
      next = [];
      for (let rank = 0; rank < this.params.beamSize && rank < paths.length; rank++) {
        const path = paths[rank];
        if (current === n2) {
          if (path.lastMatchEnd !== -1) path.chunks++;
          next.push(path);
          continue;
        }
        if (path.used2[current]) {
          if (current < path.idx) {
            next.push(path);
          } else if (path.matches[path.idx]) {
            const m = path.matches[path.idx]!;
            countMatch(path, m);
            path.distance += Math.abs(m.start - m.matchStart);
            next.push(path);
          }
          continue;
        }
        for (const m of candidates[current]) {
          if (isUsed(path, m)) continue;
          const np = copyPath(path);
          for (let k = 0; k < m.length; k++) np.used2[m.start + k] = 1;
          for (let k = 0; k < m.matchLength; k++) np.used1[m.matchStart + k] = 1;
          np.matches[current] = m;
          countMatch(np, m);
          // Quirk kept from Meteor 1.5: the distance is added to the parent path, not the new one.
          path.distance += Math.abs(m.start - m.matchStart);
          next.push(np);
        }
        if (path.lastMatchEnd !== -1) {
          path.chunks++;
          path.lastMatchEnd = -1;
        }
        path.idx++;
        next.push(path);
      }
      if (next.length === 0) next.push(paths[0]);
    }
    return next.sort(comparePaths)[0];
  }

  /** Meteor score of statistics (computeMetrics), NaN -> 0, clamped at 0. */
  score(s: MeteorStats): number {
    const { alpha, beta, gamma, delta, weights } = this.params;
    const testWeightedLength = delta * (s.testLength - s.testFunctionWords) + (1.0 - delta) * s.testFunctionWords;
    const referenceWeightedLength =
      delta * (s.referenceLength - s.referenceFunctionWords) + (1.0 - delta) * s.referenceFunctionWords;
    let tw = 0;
    let rw = 0;
    const K = s.testStageMatchesContent.length;
    for (let i = 0; i < K; i++) tw += s.testStageMatchesContent[i] * weights[i] * delta;
    for (let i = 0; i < K; i++) rw += s.referenceStageMatchesContent[i] * weights[i] * delta;
    for (let i = 0; i < K; i++) tw += s.testStageMatchesFunction[i] * weights[i] * (1.0 - delta);
    for (let i = 0; i < K; i++) rw += s.referenceStageMatchesFunction[i] * weights[i] * (1.0 - delta);
    const precision = tw / testWeightedLength;
    const recall = rw / referenceWeightedLength;
    const fMean = 1.0 / ((1.0 - alpha) / precision + alpha / recall);
    const perfect =
      s.testTotalMatches === s.testLength && s.referenceTotalMatches === s.referenceLength && s.chunks === 1;
    const frag = perfect ? 0 : s.chunks / ((s.testWordMatches + s.referenceWordMatches) / 2);
    const score = fMean * (1.0 - gamma * frag ** beta);
    return Number.isNaN(score) ? 0 : Math.max(score, 0.0);
  }

  /** Statistics of a hypothesis against several references: those of the best-scoring reference. */
  segmentStats(hypothesis: string, references: readonly string[]): MeteorStats {
    checkCaptionItem(hypothesis, references, 'Meteor.segmentStats');
    return this.bestStats(hypothesis, references);
  }

  /** segmentStats on input already checked. */
  private bestStats(hypothesis: string, references: readonly string[]): MeteorStats {
    const prep = (s: string) =>
      meteorNormalize(s)
        .toLowerCase()
        .split(/[ \t\n\r\f]+/)
        .filter(Boolean);
    const hyp = prep(hypothesis);
    let best: MeteorStats | undefined;
    let bestScore = -1;
    for (const ref of references) {
      const stats = this.alignStats(hyp, prep(ref));
      const sc = this.score(stats);
      if (sc > bestScore) {
        best = stats;
        bestScore = sc;
      }
    }
    if (!best) throw new RangeError('METEOR needs at least one reference');
    return best;
  }

  /** Sums statistics as MeteorStats.addStats (chunks of perfect segments are not added). */
  addStats(total: MeteorStats, s: MeteorStats): MeteorStats {
    const perfect =
      s.testTotalMatches === s.testLength && s.referenceTotalMatches === s.referenceLength && s.chunks === 1;
    const addArr = (a: number[], b: number[]) => a.map((v, i) => v + b[i]);
    return {
      testLength: total.testLength + s.testLength,
      referenceLength: total.referenceLength + s.referenceLength,
      testFunctionWords: total.testFunctionWords + s.testFunctionWords,
      referenceFunctionWords: total.referenceFunctionWords + s.referenceFunctionWords,
      testTotalMatches: total.testTotalMatches + s.testTotalMatches,
      referenceTotalMatches: total.referenceTotalMatches + s.referenceTotalMatches,
      testStageMatchesContent: addArr(total.testStageMatchesContent, s.testStageMatchesContent),
      referenceStageMatchesContent: addArr(total.referenceStageMatchesContent, s.referenceStageMatchesContent),
      testStageMatchesFunction: addArr(total.testStageMatchesFunction, s.testStageMatchesFunction),
      referenceStageMatchesFunction: addArr(total.referenceStageMatchesFunction, s.referenceStageMatchesFunction),
      chunks: total.chunks + (perfect ? 0 : s.chunks),
      testWordMatches: total.testWordMatches + s.testWordMatches,
      referenceWordMatches: total.referenceWordMatches + s.referenceWordMatches,
    };
  }

  emptyStats(): MeteorStats {
    const z = () => new Array<number>(this.modules).fill(0);
    return {
      testLength: 0,
      referenceLength: 0,
      testFunctionWords: 0,
      referenceFunctionWords: 0,
      testTotalMatches: 0,
      referenceTotalMatches: 0,
      testStageMatchesContent: z(),
      referenceStageMatchesContent: z(),
      testStageMatchesFunction: z(),
      referenceStageMatchesFunction: z(),
      chunks: 0,
      testWordMatches: 0,
      referenceWordMatches: 0,
    };
  }

  /**
   * The COCO wrapper: per-image scores and the corpus score from the aggregated statistics. The
   * hypothesis has "|||" removed and double spaces collapsed first, as the wrapper does.
   */
  evaluate(items: readonly { candidate: string; references: readonly string[] }[]): {
    corpus: number;
    perImage: number[];
  } {
    items.forEach((it, i) => checkCaptionItem(it?.candidate, it?.references, `Meteor.evaluate: item ${i}`));
    let total = this.emptyStats();
    const perImage = items.map(({ candidate, references }) => {
      const hyp = candidate.split('|||').join('').replace(/ {2}/g, ' ');
      const stats = this.bestStats(hyp, references);
      total = this.addStats(total, stats);
      return this.score(stats);
    });
    return { corpus: this.score(total), perImage };
  }
}
