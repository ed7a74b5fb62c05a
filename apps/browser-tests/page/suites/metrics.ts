// @fiber-vl/eval-metrics' browser entry on its public fixtures (the copies the package tests read,
// served at /metrics-fixtures/): captioning (PTB tokenisation, BLEU, ROUGE-L, CIDEr-D and METEOR
// with the WordNet data fetched from /meteor-en/), VQA accuracy, COCOeval and retrieval recall.
import {
  COCO_STAT_NAMES,
  cocoEvaluate,
  evaluateCaptions,
  parseMeteorResources,
  retrievalRecall,
  vqaAccuracy,
  type CocoDetection,
  type CocoGroundTruth,
  type DirectionScores,
  type SimilarityMatrix,
  type VqaAnnotation,
  type VqaPrediction,
  type VqaQuestion,
} from '@fiber-vl/eval-metrics';
import { compareNumbers } from '../check.js';
import { fetchJson } from '../fixtures.js';
import type { Check, SuiteParams } from '../protocol.js';

const M = ['BLEU_1', 'BLEU_2', 'BLEU_3', 'BLEU_4', 'ROUGE_L', 'CIDEr_D'] as const;
type Scores = Record<(typeof M)[number] | 'METEOR_no_paraphrase', number>;
interface CaptionImage {
  image_id: number;
  references: string[];
  candidate: string;
  references_tokenized: string[];
  candidate_tokenized: string;
  scores: Scores;
}
interface CaptionFixture {
  images: CaptionImage[];
  corpus_scores: Scores;
}
interface VqaFixture {
  annotations: VqaAnnotation[];
  questions: VqaQuestion[];
  predictions: VqaPrediction[];
  expected: {
    per_question_accuracy: Record<string, number>;
    overall_accuracy_percent_unrounded: number;
    overall_accuracy_percent_official_rounded: number;
  };
}
interface CocoFixture {
  cases: {
    name: string;
    ground_truth: CocoGroundTruth;
    detections: CocoDetection[];
    expected: { stats: Record<string, number> };
  }[];
}
interface RetrievalFixture {
  cases: {
    name: string;
    similarity: SimilarityMatrix;
    text_to_image: number[];
    expected: { rsum: number; i2t: DirectionScores; t2i: DirectionScores };
  }[];
}

const text = async (url: string) => {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
  return r.text();
};

export async function metricsSuite(_params: SuiteParams): Promise<{ checks: Check[]; info: Record<string, unknown> }> {
  const checks: Check[] = [];
  const cap = (await fetchJson('/metrics-fixtures/captioning.json')) as CaptionFixture;
  const [words, synsets, exceptions] = await Promise.all(
    ['english.words', 'english.synsets', 'english.exceptions'].map((f) => text(`/meteor-en/${f}`)),
  );
  const meteor = parseMeteorResources({ words, synsets, exceptions });
  const t0 = performance.now();
  const tokenizedRun = evaluateCaptions({
    references: new Map(cap.images.map((im) => [im.image_id, im.references_tokenized])),
    candidates: new Map(cap.images.map((im) => [im.image_id, im.candidate_tokenized])),
    tokenized: true,
    meteor,
  });
  for (const m of [...M, 'METEOR_no_paraphrase'] as const) {
    const tol = m.startsWith('METEOR') ? 1e-6 : 1e-9;
    checks.push(
      compareNumbers(
        `captioning ${m}: corpus and ${cap.images.length} images`,
        [
          [tokenizedRun.corpus[m]!, cap.corpus_scores[m]],
          ...cap.images.map((im): [number, number] => [
            tokenizedRun.perImage.get(String(im.image_id))![m]!,
            im.scores[m],
          ]),
        ],
        tol,
      ),
    );
  }
  // raw strings: the PTB tokeniser in JS gives the reference tokenisation, hence the same scores
  const rawRun = evaluateCaptions({
    references: new Map(cap.images.map((im) => [im.image_id, im.references])),
    candidates: new Map(cap.images.map((im) => [im.image_id, im.candidate])),
  });
  const mismatched = cap.images.filter((im) => {
    const t = rawRun.tokenized.get(String(im.image_id))!;
    return t.candidate !== im.candidate_tokenized || t.references.some((r, i) => r !== im.references_tokenized[i]);
  });
  checks.push({
    name: 'captioning: PTB tokenisation of raw captions',
    maxAbsError: mismatched.length,
    tolerance: 0,
    ok: mismatched.length === 0,
    detail: mismatched
      .slice(0, 3)
      .map((im) => `image ${im.image_id}`)
      .join(', '),
  });
  checks.push(
    compareNumbers('captioning CIDEr_D from raw captions', [[rawRun.corpus.CIDEr_D, cap.corpus_scores.CIDEr_D]], 1e-9),
  );
  const captionMs = performance.now() - t0;

  const vqa = (await fetchJson('/metrics-fixtures/vqa.json')) as VqaFixture;
  const v = vqaAccuracy({ annotations: vqa.annotations, questions: vqa.questions, predictions: vqa.predictions });
  checks.push(
    compareNumbers(
      'VQA accuracy: per question and overall',
      [
        [v.overall, vqa.expected.overall_accuracy_percent_unrounded],
        [v.official.overall, vqa.expected.overall_accuracy_percent_official_rounded],
        ...Object.entries(vqa.expected.per_question_accuracy).map(([q, a]): [number, number] => [v.perQuestion[q], a]),
      ],
      1e-9,
    ),
  );

  const coco = (await fetchJson('/metrics-fixtures/detection_cocoeval.json')) as CocoFixture;
  for (const c of coco.cases) {
    const r = cocoEvaluate(c.ground_truth, c.detections);
    checks.push(
      compareNumbers(
        `COCOeval ${c.name}: 12 stats`,
        COCO_STAT_NAMES.map((s): [number, number] => [r.stats[s], c.expected.stats[s]]),
        1e-12,
      ),
    );
  }

  const ret = (await fetchJson('/metrics-fixtures/retrieval.json')) as RetrievalFixture;
  for (const c of ret.cases) {
    const r = retrievalRecall(c.similarity, c.text_to_image);
    const pairs: [number, number][] = [[r.rsum, c.expected.rsum]];
    const keys = ['R@1', 'R@5', 'R@10', 'medr', 'meanr'] as const;
    for (const d of ['i2t', 't2i'] as const) for (const k of keys) pairs.push([r[d][k], c.expected[d][k]]);
    checks.push(compareNumbers(`retrieval ${c.name}: R@K, medr, meanr, rsum`, pairs, 1e-9));
  }
  return { checks, info: { captionMs, images: cap.images.length } };
}
