// VQA accuracy per question type (run/vqa-types.ts) and the other-image pairing of the controls.
import { describe, expect, it } from 'vitest';
import { QUESTION_TYPES, type WorldBaselines } from '@fiber-vl/trainer';
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

const floors = (counts: Partial<Record<string, number>>): WorldBaselines['vqa']['byType'] =>
  Object.fromEntries(
    QUESTION_TYPES.map((t) => [
      t,
      { majority: t === 'yesno' ? 'yes' : 'x', accuracy: 0.25, questions: counts[t] ?? 0 },
    ]),
  ) as WorldBaselines['vqa']['byType'];

describe('VQA by question type', () => {
  const examples = [q(0, 'shape', 'star'), q(1, 'shape', 'circle'), q(0, 'yesno', 'yes'), q(1, 'count', '2')];

  it('scores each type present, in the world order, with both images, next to its train majority', () => {
    const own = ['star', 'circle', 'no', '2'];
    const other = ['circle', 'circle', 'no', '3'];
    expect(vqaTypeResults(examples, own, other, floors({ shape: 2, yesno: 1, count: 1 }))).toEqual([
      { type: 'shape', questions: 2, ownImage: 1, otherImage: 0.5, majorityAnswer: 'x', majority: 0.25 },
      { type: 'count', questions: 1, ownImage: 1, otherImage: 0, majorityAnswer: 'x', majority: 0.25 },
      { type: 'yesno', questions: 1, ownImage: 0, otherImage: 0, majorityAnswer: 'yes', majority: 0.25 },
    ]);
  });

  it('applies the official answer normalisation only where it applies (one true answer: exact match)', () => {
    const [shape] = vqaTypeResults(examples.slice(0, 2), ['Star', 'circle.'], ['star', 'circle'], floors({ shape: 2 }));
    // ten identical ground-truth answers: the official script compares the prediction unnormalised
    expect(shape.ownImage).toBe(0);
    expect(shape.otherImage).toBe(1);
  });

  it('refuses answers that do not line up with the questions, or baselines counted on other questions', () => {
    expect(() => vqaTypeResults(examples, ['a'], ['a', 'b', 'c', 'd'], floors({}))).toThrow(
      'VQA by type: 4 questions, 1 own-image and 4 other-image answers',
    );
    expect(() => vqaTypeResults(examples, ['a', 'b', 'c', 'd'], ['a', 'b', 'c', 'd'], floors({ shape: 3 }))).toThrow(
      'VQA by type: 2 "shape" questions, but the baseline was counted on 3',
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
