// VQA accuracy per question type, with the question's own image and with another scene's: where the
// overall accuracy comes from, and whether each type's answers come from the image at all (a type the
// model answers from the question alone scores the same with either image).
import { QUESTION_TYPES, type QuestionType } from '@fiber-vl/trainer';
import type { VqaExample } from './data.js';
import { vqaScore } from './coarse-tasks.js';

export interface VqaTypeResult {
  type: QuestionType;
  questions: number;
  /** Accuracy (the official formula) with each question's own image, and with another test scene's. */
  ownImage: number;
  otherImage: number;
  /** The type's majority answer in the train split, and its accuracy on these questions (the VQA baseline per type is the better of it and a uniform guess). */
  majorityAnswer: string;
  majority: number;
}

/**
 * Per-type accuracies of predictions on `examples`, with their own and other images, next to each
 * type's train majority answer (`majorities`, e.g. worldBaselines' vqa.byType) scored on the same questions.
 */
export function vqaTypeResults(
  examples: VqaExample[],
  ownImage: string[],
  otherImage: string[],
  majorities: Record<QuestionType, { majority: string }>,
): VqaTypeResult[] {
  if (ownImage.length !== examples.length || otherImage.length !== examples.length)
    throw new RangeError(
      `VQA by type: ${examples.length} questions, ${ownImage.length} own-image and ${otherImage.length} other-image answers`,
    );
  return QUESTION_TYPES.flatMap((type) => {
    const idx = examples.flatMap((x, i) => (x.type === type ? [i] : []));
    if (!idx.length) return [];
    const majorityAnswer = majorities[type].majority;
    const of = (answers: (i: number) => string) =>
      vqaScore(
        idx.map((i) => examples[i]),
        idx.map(answers),
      );
    return [
      {
        type,
        questions: idx.length,
        ownImage: of((i) => ownImage[i]),
        otherImage: of((i) => otherImage[i]),
        majorityAnswer,
        majority: of(() => majorityAnswer),
      },
    ];
  });
}
