import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricInputError } from '../errors.js';
import { vqaAccuracy } from './evaluate.js';
import { normalizeVqaAnswer, processPunctuation, processDigitArticle } from './normalize.js';

const fx = JSON.parse(readFileSync(join(__dirname, '../../test/fixtures/vqa.json'), 'utf8'));

describe('VQA accuracy (official vqaEval.py)', () => {
  const r = vqaAccuracy({ annotations: fx.annotations, questions: fx.questions, predictions: fx.predictions });
  const e = fx.expected;
  it('per question, unrounded and officially rounded', () => {
    expect(Object.keys(r.perQuestion).sort()).toEqual(Object.keys(e.per_question_accuracy).sort());
    for (const [q, v] of Object.entries(e.per_question_accuracy))
      expect(r.perQuestion[q], `question ${q}`).toBeCloseTo(v as number, 12);
    expect(r.official.perQuestion).toEqual(e.per_question_accuracy_official_rounded);
  });
  it('overall, per answer type and per question type', () => {
    expect(Math.abs(r.overall - e.overall_accuracy_percent_unrounded)).toBeLessThan(1e-9);
    expect(r.official.overall).toBe(e.overall_accuracy_percent_official_rounded);
    for (const [k, v] of Object.entries(e.per_answer_type_percent_unrounded))
      expect(Math.abs(r.perAnswerType[k] - (v as number))).toBeLessThan(1e-9);
    for (const [k, v] of Object.entries(e.per_question_type_percent_unrounded))
      expect(Math.abs(r.perQuestionType[k] - (v as number))).toBeLessThan(1e-9);
    expect(r.official.perAnswerType).toEqual(e.per_answer_type_percent_official_rounded);
    expect(r.official.perQuestionType).toEqual(e.per_question_type_percent_official_rounded);
  });
  it('normalises answers with the official quirks', () => {
    expect(processPunctuation('t-shirt')).toBe('t shirt');
    expect(processPunctuation('1,000')).toBe('1000');
    expect(processPunctuation('u.s.a.')).toBe('usa');
    expect(processPunctuation('3.5')).toBe('3.5');
    expect(processPunctuation('t-shirt - red')).toBe('tshirt  red');
    expect(processDigitArticle('None of the Two dont')).toBe("0 of 2 don't");
  });
  it('names the bad entry and field', () => {
    const ann = fx.annotations.slice(0, 2);
    expect(() =>
      vqaAccuracy({
        annotations: ann,
        predictions: [{ question_id: ann[0].question_id, answer: 'x' }],
        files: { predictions: 'R.json' },
      }),
    ).toThrow(`R.json: no prediction for 1 annotated question(s): ${ann[1].question_id}`);
    const dup = [
      { question_id: ann[0].question_id, answer: 'x' },
      { question_id: ann[0].question_id, answer: 'y' },
    ];
    expect(() => vqaAccuracy({ annotations: ann, predictions: dup, files: { predictions: 'R.json' } })).toThrow(
      `R.json: [1]: duplicate question_id ${ann[0].question_id}`,
    );
    expect(() =>
      vqaAccuracy({ annotations: ann, predictions: [{ question_id: ann[0].question_id, answer: 3 as any }] }),
    ).toThrow(/"answer" is not a string/);
  });
  it('refuses empty inputs and a questions file without questions (typed errors naming the file)', () => {
    expect(() => vqaAccuracy({ annotations: [], predictions: [], files: { annotations: 'A.json' } })).toThrow(
      'A.json: "annotations" is empty: no questions to evaluate',
    );
    expect(() => vqaAccuracy({ annotations: { annotations: [] }, predictions: [] })).toThrow(MetricInputError);
    const ann = fx.annotations;
    const predictions = fx.predictions;
    const files = { questions: 'Q.json' };
    expect(() => vqaAccuracy({ annotations: ann, predictions, questions: { info: {} } as any, files })).toThrow(
      'Q.json: expected a VQA questions file with a "questions" list',
    );
    expect(() => vqaAccuracy({ annotations: ann, predictions, questions: null as any, files })).toThrow(
      MetricInputError,
    );
    expect(() =>
      vqaAccuracy({ annotations: ann, predictions, questions: { questions: [{ question: 'x' }] } as any, files }),
    ).toThrow('Q.json: questions[0]: "question_id" is missing or not an integer');
  });
});

describe('VQA answer normalisation on values that are not strings', () => {
  // what a JS caller, or JSON with a number for an answer, can pass
  const loose = (f: (x: string) => string) => f as (x: unknown) => string;
  it('names the function and the value instead of failing inside a string method', () => {
    expect(() => loose(normalizeVqaAnswer)(null)).toThrow(
      new TypeError('normalizeVqaAnswer: the answer is not a string (null)'),
    );
    expect(() => loose(processPunctuation)(5)).toThrow(
      new TypeError('processPunctuation: the answer is not a string (5)'),
    );
    expect(() => loose(processDigitArticle)(['two'])).toThrow(/^processDigitArticle: the answer is not a string/);
    expect(normalizeVqaAnswer('Two dogs.')).toBe('2 dogs');
  });
});
