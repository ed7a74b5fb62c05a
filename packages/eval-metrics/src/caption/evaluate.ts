import { MetricInputError, mean, show, where } from '../errors.js';
import { checkCaptionItem } from './check.js';
import { ptbTokenize } from '../tokenize/ptb.js';
import { BleuCounter, bleuFromStats, sumBleuStats, type BleuStats } from './bleu.js';
import { ciderDSentences } from './cider.js';
import { NgramIndex } from './ngrams.js';
import { rougeLScore } from './rouge.js';
import { Meteor } from './meteor/meteor.js';
import type { MeteorResources } from './meteor/resources.js';
import type { ParaphraseTable } from './meteor/paraphrase.js';

export type CaptionMetric = 'BLEU_1' | 'BLEU_2' | 'BLEU_3' | 'BLEU_4' | 'ROUGE_L' | 'CIDEr_D';
/** METEOR without the paraphrase module, and SPICE computed with an approximate parser: never the official numbers. */
export type ApproximateMetric = 'METEOR_no_paraphrase' | 'SPICE_approx';
/** METEOR with all four modules: only when a paraphrase table is supplied. */
export type CaptionScores = Record<CaptionMetric, number> & Partial<Record<ApproximateMetric | 'METEOR', number>>;

export interface CaptionEvalInput {
  /** References per image id (raw captions, or tokenised when `tokenized`). */
  references: Map<string | number, readonly string[]> | Record<string, readonly string[]>;
  /** One candidate per image id. */
  candidates: Map<string | number, string> | Record<string, string>;
  /** The inputs are already PTB-tokenised (lower-case, punctuation removed): skip tokenisation. */
  tokenized?: boolean;
  files?: { references?: string; candidates?: string };
  /** Meteor's English resources: adds METEOR_no_paraphrase (and is needed for SPICE_approx). */
  meteor?: MeteorResources;
  /** Meteor's paraphrase table: adds the paraphrase module, and the score is labelled METEOR. */
  meteorParaphrases?: ParaphraseTable;
  /**
   * Also compute SPICE_approx: pass `spiceApprox` from `@fiber-vl/eval-metrics/spice` (a separate
   * entry, so that the NLP model it needs is not in every bundle). Needs `meteor` for WordNet synonyms.
   */
  spice?: SpiceScorer;
}

export interface CaptionEvalResult {
  /** Corpus scores: BLEU from summed statistics, ROUGE-L and CIDEr-D means over images. */
  corpus: CaptionScores;
  perImage: Map<string, CaptionScores>;
  bleuStats: Map<string, BleuStats>;
  corpusBleuStats: BleuStats;
  /** The tokenised strings the scores were computed from. */
  tokenized: Map<string, { references: string[]; candidate: string }>;
}

/**
 * The COCO caption evaluation (pycocoevalcap COCOEvalCap) without METEOR and SPICE: PTB
 * tokenisation, BLEU-1..4, ROUGE-L, CIDEr-D. Image id sets of references and candidates must be
 * equal. Values are on the raw scale (CIDEr-D in [0, 10]).
 */
/** The signature of `spiceApprox` (`@fiber-vl/eval-metrics/spice`). */
export type SpiceScorer = (
  resources: MeteorResources,
  items: readonly { candidate: string; references: readonly string[] }[],
) => { corpus: number; perImage: { f: number }[] };

export function evaluateCaptions({
  references,
  candidates,
  tokenized = false,
  files = {},
  meteor,
  meteorParaphrases,
  spice,
}: CaptionEvalInput): CaptionEvalResult {
  if (spice && !meteor) throw new MetricInputError('SPICE_approx needs the Meteor synonym resources (pass `meteor`)');
  for (const [name, m, file] of [
    ['references', references, files.references],
    ['candidates', candidates, files.candidates],
  ] as const) {
    if (!(m instanceof Map) && (typeof m !== 'object' || m === null || Array.isArray(m))) {
      throw new MetricInputError(`${where(file)}${name} must be a Map or an object keyed by image id, got ${show(m)}`);
    }
  }
  const refs =
    references instanceof Map
      ? new Map([...references].map(([k, v]) => [String(k), v]))
      : new Map(Object.entries(references));
  const cands =
    candidates instanceof Map
      ? new Map([...candidates].map(([k, v]) => [String(k), v]))
      : new Map(Object.entries(candidates));
  const onlyRefs = [...refs.keys()].filter((k) => !cands.has(k));
  const onlyCands = [...cands.keys()].filter((k) => !refs.has(k));
  if (onlyRefs.length || onlyCands.length) {
    const parts = [];
    if (onlyRefs.length)
      parts.push(
        `${onlyRefs.length} image id(s) have references but no candidate (${onlyRefs.slice(0, 5).join(', ')})`,
      );
    if (onlyCands.length)
      parts.push(
        `${onlyCands.length} image id(s) have a candidate but no references (${onlyCands.slice(0, 5).join(', ')})`,
      );
    throw new MetricInputError(
      `${where(files.candidates)}image id sets of references and candidates differ: ${parts.join('; ')}`,
    );
  }
  if (refs.size === 0) throw new MetricInputError(`${where(files.references)}no images to evaluate`);
  const ids = [...refs.keys()];
  for (const id of ids)
    checkCaptionItem(
      cands.get(id),
      refs.get(id),
      `${where(files.references)}image ${id}`,
      `${where(files.candidates)}image ${id}`,
    );
  // Two tokeniser calls, as the reference does (the tokenizer is stateless, so this is only for clarity).
  const tokRefs = tokenized
    ? ids.map((id) => [...refs.get(id)!])
    : regroup(
        ptbTokenize(ids.flatMap((id) => refs.get(id)!)),
        ids.map((id) => refs.get(id)!.length),
      );
  const tokCands = tokenized ? ids.map((id) => cands.get(id)!) : ptbTokenize(ids.map((id) => cands.get(id)!));

  // One n-gram index for BLEU and CIDEr-D.
  const index = new NgramIndex(4);
  const refSentences = tokRefs.map((refs) => refs.map((r) => index.sentence(r)));
  const candSentences = tokCands.map((c) => index.sentence(c));
  const counter = new BleuCounter(index);
  const stats = ids.map((_, i) => counter.stats(candSentences[i], refSentences[i]));
  const rouge = ids.map((_, i) => rougeLScore(tokCands[i], tokRefs[i]));
  const cider = ciderDSentences(index, candSentences, refSentences);
  const perImage = new Map<string, CaptionScores>();
  ids.forEach((id, i) => {
    const b = bleuFromStats(stats[i]);
    perImage.set(id, { BLEU_1: b[0], BLEU_2: b[1], BLEU_3: b[2], BLEU_4: b[3], ROUGE_L: rouge[i], CIDEr_D: cider[i] });
  });
  const corpusBleuStats = sumBleuStats(stats);
  const b = bleuFromStats(corpusBleuStats);
  const corpus: CaptionScores = {
    BLEU_1: b[0],
    BLEU_2: b[1],
    BLEU_3: b[2],
    BLEU_4: b[3],
    ROUGE_L: mean(rouge),
    CIDEr_D: mean(cider),
  };
  const items = ids.map((_, i) => ({ candidate: tokCands[i], references: tokRefs[i] }));
  if (meteor) {
    const scorer = new Meteor(meteor, undefined, meteorParaphrases);
    const m = scorer.evaluate(items);
    corpus[scorer.label] = m.corpus;
    ids.forEach((id, i) => (perImage.get(id)![scorer.label] = m.perImage[i]));
  }
  if (spice && meteor) {
    const sp = spice(meteor, items);
    corpus.SPICE_approx = sp.corpus;
    ids.forEach((id, i) => (perImage.get(id)!.SPICE_approx = sp.perImage[i].f));
  }
  return {
    corpus,
    perImage,
    bleuStats: new Map(ids.map((id, i) => [id, stats[i]])),
    corpusBleuStats,
    tokenized: new Map(ids.map((id, i) => [id, { references: tokRefs[i], candidate: tokCands[i] }])),
  };
}

function regroup(flat: string[], sizes: number[]): string[][] {
  const out: string[][] = [];
  let pos = 0;
  for (const n of sizes) {
    out.push(flat.slice(pos, pos + n));
    pos += n;
  }
  return out;
}
