import { MetricInputError, roundPy2, where } from '../errors.js';
import { cleanAnswer, normalizeVqaAnswer } from './normalize.js';

export interface VqaAnswerEntry {
  answer: string;
  answer_confidence?: string;
  answer_id: number;
}
export interface VqaAnnotation {
  question_id: number;
  image_id?: number;
  question_type: string;
  answer_type: string;
  multiple_choice_answer?: string;
  answers: VqaAnswerEntry[];
}
export interface VqaQuestion {
  question_id: number;
  image_id?: number;
  question: string;
}
export interface VqaPrediction {
  question_id: number;
  answer: string;
}

export interface VqaScores {
  /** Mean accuracy in percent, unrounded (the official script prints it rounded to 2 decimals). */
  overall: number;
  perAnswerType: Record<string, number>;
  perQuestionType: Record<string, number>;
  /** Accuracy of each question in [0, 1], unrounded. */
  perQuestion: Record<string, number>;
  /** The official script's rounded values: round(100 * acc, 2), Python 2 rounding. */
  official: {
    overall: number;
    perAnswerType: Record<string, number>;
    perQuestionType: Record<string, number>;
    perQuestion: Record<string, number>;
  };
}

export interface VqaInput {
  annotations: VqaAnnotation[] | { annotations: VqaAnnotation[] };
  predictions: VqaPrediction[];
  /** Optional: checked to cover the same question ids. */
  questions?: VqaQuestion[] | { questions: VqaQuestion[] };
  /** File names, for error messages. */
  files?: { annotations?: string; predictions?: string; questions?: string };
}

/**
 * VQA accuracy exactly as the official evaluation: min(1, #matching other answers / 3) averaged
 * over the 10 leave-one-out subsets, with the answer normalisation applied only when the 10 ground
 * truth answers are not all identical.
 */
export function vqaAccuracy({ annotations, predictions, questions, files = {} }: VqaInput): VqaScores {
  const anns = Array.isArray(annotations) ? annotations : annotations?.annotations;
  if (!Array.isArray(anns)) throw new MetricInputError(`${where(files.annotations)}expected an "annotations" list`);
  if (anns.length === 0)
    throw new MetricInputError(`${where(files.annotations)}"annotations" is empty: no questions to evaluate`);
  if (!Array.isArray(predictions))
    throw new MetricInputError(`${where(files.predictions)}expected a list of {question_id, answer}`);
  const gts = new Map<number, VqaAnnotation>();
  anns.forEach((a, i) => {
    const at = `${where(files.annotations)}annotations[${i}]`;
    if (!Number.isInteger(a?.question_id))
      throw new MetricInputError(`${at}: "question_id" is missing or not an integer`);
    if (gts.has(a.question_id)) throw new MetricInputError(`${at}: duplicate question_id ${a.question_id}`);
    if (!Array.isArray(a.answers) || a.answers.length === 0)
      throw new MetricInputError(`${at} (question ${a.question_id}): "answers" must be a non-empty list`);
    a.answers.forEach((x, j) => {
      if (typeof x?.answer !== 'string')
        throw new MetricInputError(`${at} (question ${a.question_id}): answers[${j}].answer is not a string`);
    });
    for (const f of ['question_type', 'answer_type'] as const) {
      if (typeof a[f] !== 'string') throw new MetricInputError(`${at} (question ${a.question_id}): "${f}" is missing`);
    }
    gts.set(a.question_id, a);
  });
  const res = new Map<number, string>();
  predictions.forEach((p, i) => {
    const at = `${where(files.predictions)}[${i}]`;
    if (!Number.isInteger(p?.question_id))
      throw new MetricInputError(`${at}: "question_id" is missing or not an integer`);
    if (typeof p.answer !== 'string')
      throw new MetricInputError(`${at} (question ${p.question_id}): "answer" is not a string`);
    if (res.has(p.question_id)) throw new MetricInputError(`${at}: duplicate question_id ${p.question_id}`);
    if (!gts.has(p.question_id))
      throw new MetricInputError(`${at}: question_id ${p.question_id} is not in the annotations`);
    res.set(p.question_id, p.answer);
  });
  const missing = [...gts.keys()].filter((q) => !res.has(q));
  if (missing.length) {
    throw new MetricInputError(
      `${where(files.predictions)}no prediction for ${missing.length} annotated question(s): ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''}`,
    );
  }
  if (questions !== undefined) {
    const qs: unknown = Array.isArray(questions) ? questions : (questions as { questions?: unknown } | null)?.questions;
    if (!Array.isArray(qs)) {
      throw new MetricInputError(`${where(files.questions)}expected a VQA questions file with a "questions" list`);
    }
    const ids = new Set<number>();
    qs.forEach((q: unknown, i) => {
      const id = (q as { question_id?: unknown } | null)?.question_id;
      if (!Number.isInteger(id)) {
        throw new MetricInputError(
          `${where(files.questions)}questions[${i}]: "question_id" is missing or not an integer`,
        );
      }
      ids.add(id as number);
    });
    const notAsked = [...gts.keys()].filter((q) => !ids.has(q));
    if (notAsked.length)
      throw new MetricInputError(
        `${where(files.questions)}annotated question(s) missing from the questions file: ${notAsked.slice(0, 10).join(', ')}`,
      );
  }

  const perQuestion: Record<string, number> = {};
  const all: number[] = [];
  const byAnswerType = new Map<string, number[]>();
  const byQuestionType = new Map<string, number[]>();
  for (const [qid, gt] of gts) {
    let gtAnswers = gt.answers.map((a) => cleanAnswer(a.answer));
    let pred = cleanAnswer(res.get(qid)!);
    if (new Set(gtAnswers).size > 1) {
      gtAnswers = gtAnswers.map(normalizeVqaAnswer);
      pred = normalizeVqaAnswer(pred);
    }
    // "Other" answers are the entries that differ as dicts; with unique answer_ids that is every other index.
    let sum = 0;
    for (let i = 0; i < gtAnswers.length; i++) {
      let matching = 0;
      for (let j = 0; j < gtAnswers.length; j++) {
        if (
          j !== i &&
          !sameAnswerEntry(gt.answers[i], gt.answers[j], gtAnswers[i], gtAnswers[j]) &&
          gtAnswers[j] === pred
        )
          matching++;
      }
      sum += Math.min(1, matching / 3);
    }
    const acc = sum / gtAnswers.length;
    perQuestion[qid] = acc;
    all.push(acc);
    push(byAnswerType, gt.answer_type, acc);
    push(byQuestionType, gt.question_type, acc);
  }
  const pct = (xs: number[]) => (100 * xs.reduce((a, b) => a + b, 0)) / xs.length;
  const perAnswerType = Object.fromEntries([...byAnswerType].map(([k, v]) => [k, pct(v)]));
  const perQuestionType = Object.fromEntries([...byQuestionType].map(([k, v]) => [k, pct(v)]));
  const overall = pct(all);
  const r2 = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, roundPy2(v, 2)]));
  return {
    overall,
    perAnswerType,
    perQuestionType,
    perQuestion,
    official: {
      overall: roundPy2(overall, 2),
      perAnswerType: r2(perAnswerType),
      perQuestionType: r2(perQuestionType),
      perQuestion: Object.fromEntries(Object.entries(perQuestion).map(([k, v]) => [k, roundPy2(100 * v, 2)])),
    },
  };
}

/** The official `item != gtAnsDatum` compares whole dicts (answer after normalisation, confidence, id). */
function sameAnswerEntry(a: VqaAnswerEntry, b: VqaAnswerEntry, answerA: string, answerB: string): boolean {
  return answerA === answerB && a.answer_confidence === b.answer_confidence && a.answer_id === b.answer_id;
}

function push(map: Map<string, number[]>, key: string, v: number) {
  const list = map.get(key);
  if (list) list.push(v);
  else map.set(key, [v]);
}
