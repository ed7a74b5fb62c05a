// VQAv2: `v2_OpenEnded_mscoco_<subtype>_questions.json` + `v2_mscoco_<subtype>_annotations.json`,
// with the answer vocabulary and soft scores of ViLT's `write_vqa.py`, which FIBER uses.
import { normalizeVqaAnswer } from '@fiber-vl/eval-metrics';
import type { VqaRecord } from '../records.js';
import { DataSkipError } from '../skips.js';
import { checkIndex, entryOf, idText, type RecordSource, type SourceEntry } from '../source.js';
import { arr, isObject, num, requireText, requireUnique, str, topArray } from '../validate.js';

/**
 * ViLT's `normalize_word` (FIBER `utils/glossary.py`): the official VQA evaluation normaliser
 * (punctuation, digits, articles, contractions) followed by deleting every comma.
 */
export function normalizeVqaWord(answer: string): string {
  return normalizeVqaAnswer(answer).replaceAll(',', '');
}

/** write_vqa.py's get_score: 1, 2, 3, >= 4 annotators -> 0.3, 0.6, 0.9, 1 (min(1, 0.3 n), without float drift). */
export function vqaScore(count: number): number {
  return count <= 0 ? 0 : count === 1 ? 0.3 : count === 2 ? 0.6 : count === 3 ? 0.9 : 1;
}

export interface VqaVocab {
  /** label -> answer. */
  answers: string[];
  /** answer -> label. */
  index: Map<string, number>;
}

export interface VqaVocabOptions {
  /**
   * Minimum count of a normalised multiple_choice_answer over the files; write_vqa.py uses 9 (3129 answers on
   * train+val).
   */
  minCount?: number;
  /** The files' names for messages (default: "annotation file <index>"). */
  names?: readonly string[];
}

/**
 * The answer vocabulary of write_vqa.py: normalised `multiple_choice_answer` strings of the given
 * annotation files (train then val), kept when counted at least `minCount` times, in first-occurrence order.
 */
export function buildVqaVocab(
  annotationFiles: readonly unknown[],
  { minCount = 9, names = [] }: VqaVocabOptions = {},
): VqaVocab {
  const counts = new Map<string, number>();
  annotationFiles.forEach((file, f) => {
    const name = names[f] ?? `annotation file ${f}`;
    topArray(file, 'annotations', name).forEach((a, i) => {
      const mc = isObject(a) ? a.multiple_choice_answer : undefined;
      // write_vqa.py counts every one (a missing answer fails there too)
      if (typeof mc !== 'string')
        throw new TypeError(
          `${name}: annotations[${i}].multiple_choice_answer is ${mc === undefined ? 'missing' : JSON.stringify(mc)}, not a string`,
        );
      const w = normalizeVqaWord(mc);
      counts.set(w, (counts.get(w) ?? 0) + 1);
    });
  });
  const answers = [...counts].filter(([, n]) => n >= minCount).map(([w]) => w);
  return { answers, index: new Map(answers.map((w, i) => [w, i])) };
}

/**
 * Labels and scores of one question, exactly as write_vqa.py: each distinct *raw* answer string
 * (the annotators' answers are not normalised there) that is in the vocabulary, in first-occurrence
 * order, scored by how many annotators gave it.
 */
export function vqaTargets(answers: readonly string[], vocab: VqaVocab): { labels: number[]; scores: number[] } {
  const count = new Map<string, number>();
  for (const a of answers) count.set(a, (count.get(a) ?? 0) + 1);
  const labels: number[] = [];
  const scores: number[] = [];
  for (const [a, n] of count) {
    const label = vocab.index.get(a);
    if (label === undefined) continue;
    labels.push(label);
    scores.push(vqaScore(n));
  }
  return { labels, scores };
}

export interface VqaOptions {
  /** The parsed questions file. */
  questions: unknown;
  /** The parsed annotations file (train / val); omit for test splits, whose records then have no labels. */
  annotations?: unknown;
  vocab: VqaVocab;
  /**
   * Image path of a question; default `<subtype>/COCO_<subtype>_<12-digit id>.jpg` (the COCO folders), subtype from
   * `data_subtype`.
   */
  imagePath?: (imageId: number, subtype: string) => string;
  name?: string;
}

const cocoImagePath = (imageId: number, subtype: string) =>
  `${subtype}/COCO_${subtype}_${String(imageId).padStart(12, '0')}.jpg`;

/**
 * One record per question. With annotations, a question none of whose answers is in the
 * vocabulary is skipped ('no-answer-in-vocab'), as write_vqa.py drops it from train and val.
 */
export function vqaQuestions(options: VqaOptions): RecordSource<VqaRecord> {
  const name = options.name ?? 'vqa questions';
  const questions = topArray(options.questions, 'questions', name);
  // a repeated question id would be trained twice and written twice to a results file
  requireUnique(questions, name, 'questions', 'question_id');
  const subtypeField = isObject(options.questions) ? options.questions.data_subtype : undefined;
  const subtype = typeof subtypeField === 'string' ? subtypeField : '';
  if (!subtype && !options.imagePath)
    throw new TypeError(`${name}: no "data_subtype" to name the image folder; pass imagePath`);
  const imagePath = options.imagePath ?? cocoImagePath;
  let byQuestion: Map<number, unknown> | undefined;
  if (options.annotations !== undefined) {
    byQuestion = new Map();
    const annotations = topArray(options.annotations, 'annotations', `${name} annotations`);
    // annotations are found by question id: a repeated one would give one question another's answers
    requireUnique(annotations, `${name} annotations`, 'annotations', 'question_id');
    for (const a of annotations) {
      if (isObject(a) && typeof a.question_id === 'number') byQuestion.set(a.question_id, a);
    }
  }
  const entries: SourceEntry<VqaRecord>[] = questions.map((q, i) =>
    entryOf(
      () => {
        const where = `${name} questions[${i}]`;
        const questionId = num(q, 'question_id', where);
        const imageId = num(q, 'image_id', where);
        const text = requireText(str(q, 'question', where), where);
        let targets = { labels: [] as number[], scores: [] as number[] };
        if (byQuestion) {
          const ann = byQuestion.get(questionId);
          if (ann === undefined)
            throw new DataSkipError('missing-annotation', `${where}: no annotation for question ${questionId}`);
          const answers = arr(ann, 'answers', `annotation of question ${questionId}`).map((a, k) =>
            str(a, 'answer', `annotation of question ${questionId}.answers[${k}]`),
          );
          targets = vqaTargets(answers, options.vocab);
          if (targets.labels.length === 0) {
            throw new DataSkipError(
              'no-answer-in-vocab',
              `${where}: no answer of question ${questionId} is in the ${options.vocab.answers.length}-answer vocabulary`,
            );
          }
        }
        return {
          kind: 'vqa',
          id: String(questionId),
          image: imagePath(imageId, subtype),
          text,
          questionId,
          ...targets,
        };
      },
      idText(isObject(q) ? q.question_id : undefined),
    ),
  );
  const source: RecordSource<VqaRecord> = {
    name,
    length: entries.length,
    get(index) {
      checkIndex(source, index);
      return entries[index];
    },
  };
  return source;
}
