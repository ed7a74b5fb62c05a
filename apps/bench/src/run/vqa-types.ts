// VQA accuracy per question type, with the question's own image and with another scene's: where the
// overall accuracy comes from, and whether each type's answers come from the image at all (a type the
// model answers from the question alone scores the same with either image).
import { QUESTION_TYPES, type QuestionType, type WorldBaselines } from '@fiber-vl/trainer';
import type { VqaExample } from './data.js';
import { vqaScore } from './coarse-tasks.js';

export interface VqaTypeResult {
  type: QuestionType;
  questions: number;
  /** Accuracy (the official formula) with each question's own image, and with another test scene's. */
  ownImage: number;
  otherImage: number;
  /** The type's majority answer in the train split, and its accuracy on these questions (its part of the VQA baseline). */
  majorityAnswer: string;
  majority: number;
}

/**
 * Per-type accuracies of predictions on `examples`, with their own and other images; `floors` are the
 * world's majority baselines on the same questions (an error names a type whose count differs).
 */
export function vqaTypeResults(
  examples: VqaExample[],
  ownImage: string[],
  otherImage: string[],
  floors: WorldBaselines['vqa']['byType'],
): VqaTypeResult[] {
  if (ownImage.length !== examples.length || otherImage.length !== examples.length)
    throw new RangeError(
      `VQA by type: ${examples.length} questions, ${ownImage.length} own-image and ${otherImage.length} other-image answers`,
    );
  return QUESTION_TYPES.flatMap((type) => {
    const idx = examples.flatMap((x, i) => (x.type === type ? [i] : []));
    if (!idx.length) return [];
    const floor = floors[type];
    if (floor.questions !== idx.length)
      throw new RangeError(
        `VQA by type: ${idx.length} "${type}" questions, but the baseline was counted on ${floor.questions}`,
      );
    const of = (answers: string[]) =>
      vqaScore(
        idx.map((i) => examples[i]),
        idx.map((i) => answers[i]),
      );
    return [
      {
        type,
        questions: idx.length,
        ownImage: of(ownImage),
        otherImage: of(otherImage),
        majorityAnswer: floor.majority,
        majority: floor.accuracy,
      },
    ];
  });
}
