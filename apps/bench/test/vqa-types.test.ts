// VQA accuracy per question type (run/vqa-types.ts) and the other-image pairing of the controls.
import { describe, expect, it } from 'vitest';
import { QUESTION_TYPES, type QuestionType } from '@fiber-vl/trainer';
import { otherScene, type VqaExample } from '../src/run/data.js';
import { VQA_TYPE_IDS } from '../src/run/schema.js';
import { vqaTypeResults } from '../src/run/vqa-types.js';

const q = (scene: number, type: string, answer: string): VqaExample => ({
  scene,
  question: `${type}?`,
  answer,
  type,
  novel: false,
});

const majorities = (m: Partial<Record<string, string>>) =>
  Object.fromEntries(QUESTION_TYPES.map((t) => [t, { majority: m[t] ?? 'x' }])) as Record<
    QuestionType,
    { majority: string }
  >;

describe('VQA by question type', () => {
  const examples = [q(0, 'shape', 'star'), q(1, 'shape', 'circle'), q(0, 'yesno', 'yes'), q(1, 'count', '2')];

  it('scores each type present, in the world order, with both images, next to its train majority on the same questions', () => {
    const own = ['star', 'circle', 'no', '2'];
    const other = ['circle', 'circle', 'no', '3'];
    expect(vqaTypeResults(examples, own, other, majorities({ shape: 'star', yesno: 'yes' }))).toEqual([
      { type: 'shape', questions: 2, ownImage: 1, otherImage: 0.5, majorityAnswer: 'star', majority: 0.5 },
      { type: 'count', questions: 1, ownImage: 1, otherImage: 0, majorityAnswer: 'x', majority: 0 },
      { type: 'yesno', questions: 1, ownImage: 0, otherImage: 0, majorityAnswer: 'yes', majority: 1 },
    ]);
  });

  it('scores with the official formula (one true answer, ten times: compared unnormalised)', () => {
    const [shape] = vqaTypeResults(examples.slice(0, 2), ['Star', 'circle.'], ['star', 'circle'], majorities({}));
    expect(shape.ownImage).toBe(0);
    expect(shape.otherImage).toBe(1);
  });

  it('refuses answers that do not line up with the questions', () => {
    expect(() => vqaTypeResults(examples, ['a'], ['a', 'b', 'c', 'd'], majorities({}))).toThrow(
      'VQA by type: 4 questions, 1 own-image and 4 other-image answers',
    );
  });

  it("the schema's type ids are the world's", () => {
    expect([...VQA_TYPE_IDS]).toEqual([...QUESTION_TYPES]);
  });
});

describe('otherScene', () => {
  it('pairs every evaluated scene with another one, each used once', () => {
    for (let n = 2; n <= 40; n++) {
      const paired = Array.from({ length: n }, (_, i) => otherScene(i, n));
      expect(new Set(paired).size).toBe(n);
      expect(paired.every((j, i) => j !== i && j >= 0 && j < n)).toBe(true);
    }
    expect(otherScene(0, 200)).toBe(100);
    expect(otherScene(150, 200)).toBe(50);
  });

  it('names what is wrong', () => {
    expect(() => otherScene(0, 1)).toThrow('other image: needs 2 or more scenes, got 1');
    expect(() => otherScene(5, 5)).toThrow('other image: scene 5 is not one of the 5 evaluated');
    expect(() => otherScene(0.5, 5)).toThrow('scene 0.5 is not one of the 5 evaluated');
  });
});
