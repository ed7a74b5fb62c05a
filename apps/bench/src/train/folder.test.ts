import { ByteLevelBpeTokenizer, trainByteLevelBpe } from '@fiber-vl/roberta';
import type { DetectionRecord, GroundingRecord } from '@fiber-vl/trainer';
import { arraySource } from '@fiber-vl/trainer';
import { describe, expect, it } from 'vitest';
import { type FolderBatchOptions, type PromptCuts, fineTargets, promptClassOrder, skipsBatch } from './folder.js';

const { vocab, merges } = trainByteLevelBpe(['a red square left of a blue disc', 'the square', 'the disc'], {
  vocabSize: 300,
});
const tokenizer = new ByteLevelBpeTokenizer(new Map(Object.entries(vocab)), merges);

const options = (task: 'pretrain-fine' | 'detection', maxQueryLen: number, classNames?: string[]) =>
  ({
    task,
    tokenizer,
    batch: 2,
    seed: 0,
    imageSize: 64,
    maxTextLen: 16,
    maxQueryLen,
    data: { source: arraySource('test', []), classNames, files: [] },
  }) satisfies FolderBatchOptions;

const text = 'the square left of a blue disc';
const grounding: GroundingRecord = {
  id: 'g',
  kind: 'grounding',
  image: 'x.png',
  text,
  boxes: [
    [0, 0, 4, 4],
    [5, 5, 9, 9],
  ],
  spans: [[[0, 10]], [[21, 30]]], // "the square", "blue disc"
};
const tokensOf = (s: string) => tokenizer.encode(s, { addSpecialTokens: false }).ids.length;
const sample = (record: GroundingRecord | DetectionRecord, index = 0) => ({ record, epoch: 0, index });

describe('fiber-bench train: fine targets of a data folder, as the official collator builds them', () => {
  it('keeps a grounding box whose phrase the truncation cut, as a positive with an empty token row', () => {
    // room for "the square" and a little more: "blue disc" is cut entirely
    const maxQueryLen = tokensOf('the square left') + 2;
    const cuts: PromptCuts = { emptyRows: 0, uncovered: 0 };
    const { prompts, targets } = fineTargets([sample(grounding)], options('pretrain-fine', maxQueryLen), cuts);
    expect(targets[0].boxes).toEqual([0, 0, 4, 4, 5, 5, 9, 9]);
    const row = (g: number) => Array.from(targets[0].positiveMap.slice(g * maxQueryLen, (g + 1) * maxQueryLen));
    expect(row(0).filter((v) => v === 1)).toHaveLength(prompts[0].phrases[0].tokens.length);
    expect(prompts[0].phrases[0].tokens.length).toBeGreaterThan(0);
    expect(row(1).every((v) => v === 0)).toBe(true);
    expect(cuts.emptyRows).toBe(1);
    expect(cuts.message).toMatch(/longer than MAX_QUERY_LEN/);
    // without the cut both rows name their tokens and nothing is counted
    const whole: PromptCuts = { emptyRows: 0, uncovered: 0 };
    const full = fineTargets([sample(grounding)], options('pretrain-fine', 32), whole);
    expect(full.targets[0].positiveMap.slice(32, 64).some((v) => v === 1)).toBe(true);
    expect(whole).toEqual({ emptyRows: 0, uncovered: 0 });
  });

  it('detection: the class names in an order drawn per sample (DISABLE_SHUFFLE False), each box on its name', () => {
    const classNames = ['square', 'blue disc', 'red', 'left'];
    const detection: DetectionRecord = {
      id: 'd',
      kind: 'detection',
      image: 'x.png',
      boxes: [
        [0, 0, 4, 4],
        [5, 5, 9, 9],
      ],
      labels: [2, 1],
    };
    const o = options('detection', 32, classNames);
    const orders = new Set<string>();
    for (let index = 0; index < 12; index++) {
      const order = promptClassOrder(4, o.seed, 0, index);
      orders.add(order.join());
      expect(order).toEqual(promptClassOrder(4, o.seed, 0, index)); // a function of (seed, epoch, index)
      const cuts: PromptCuts = { emptyRows: 0, uncovered: 0 };
      const { prompts, targets } = fineTargets([sample(detection, index)], o, cuts);
      expect(prompts[0].caption).toBe(order.map((c) => classNames[c]).join('. '));
      expect(targets[0].boxes).toEqual([0, 0, 4, 4, 5, 5, 9, 9]);
      // box g's row marks exactly the tokens of its class name where the prompt put it
      detection.labels.forEach((label, g) => {
        const phrase = prompts[0].phrases[order.indexOf(label - 1)];
        expect(phrase.text).toBe(classNames[label - 1]);
        const row = Array.from(targets[0].positiveMap.slice(g * 32, (g + 1) * 32));
        expect(row.flatMap((v, t) => (v ? [t] : []))).toEqual(phrase.tokens);
      });
      expect(cuts.emptyRows).toBe(0);
    }
    expect(orders.size).toBeGreaterThan(4); // 24 orders; 12 draws
  });

  it('detection: a box whose class name the truncation cut stays a positive with an empty token row', () => {
    const classNames = ['square', 'blue disc'];
    const detection: DetectionRecord = {
      id: 'd',
      kind: 'detection',
      image: 'x.png',
      boxes: [[5, 5, 9, 9]],
      labels: [2],
    };
    // room for the first name only; find a sample whose order puts "blue disc" second
    const o = options('detection', tokensOf('square. ') + 2, classNames);
    const index = [0, 1, 2, 3, 4, 5, 6, 7].find((i) => promptClassOrder(2, o.seed, 0, i)[0] === 0)!;
    const cuts: PromptCuts = { emptyRows: 0, uncovered: 0 };
    const { targets } = fineTargets([sample(detection, index)], o, cuts);
    expect(targets[0].boxes).toEqual([5, 5, 9, 9]);
    expect(Array.from(targets[0].positiveMap).every((v) => v === 0)).toBe(true);
    expect(cuts.emptyRows).toBe(1);
  });

  it('a phrase span over whitespace only is a positive with an empty row, counted and named, not a crash', () => {
    const spaced: GroundingRecord = { ...grounding, spans: [[[0, 10]], [[10, 11]]] }; // " " after "the square"
    const cuts: PromptCuts = { emptyRows: 0, uncovered: 0 };
    const { targets } = fineTargets([sample(spaced, 7)], options('pretrain-fine', 32), cuts);
    expect(targets[0].boxes).toEqual([0, 0, 4, 4, 5, 5, 9, 9]);
    expect(targets[0].positiveMap.slice(32, 64).every((v) => v === 0)).toBe(true);
    expect(cuts).toEqual({ emptyRows: 0, uncovered: 1, firstUncovered: 'test record 7 (id g), box 1: " "' });
  });

  it('an error a record still causes names the record', () => {
    const wrong: GroundingRecord = { ...grounding, spans: [[[0, 99]], [[0, 3]]] }; // the readers check spans
    expect(() => fineTargets([sample(wrong, 3)], options('pretrain-fine', 32), { emptyRows: 0, uncovered: 0 })).toThrow(
      /^test record 3 \(id g\): phrases\[0\]\[0\]: span \[0, 99\) is not inside the 30-character caption$/,
    );
  });

  it('skips a batch as SOLVER.MAX_NEG_PER_BATCH 0.1 does: all negatives, or more than 10% of them', () => {
    const pos = { boxes: [0, 0, 1, 1] };
    const neg = { boxes: [] };
    expect(skipsBatch([pos, pos])).toBe(false);
    expect(skipsBatch([neg])).toBe(true);
    expect(skipsBatch([pos, neg])).toBe(true);
    expect(skipsBatch([...Array(10).fill(pos), neg])).toBe(false); // 1 of 11 < 1.1
    expect(skipsBatch([...Array(9).fill(pos), neg])).toBe(false); // 1 of 10 is not > 1
    expect(skipsBatch([...Array(8).fill(pos), neg])).toBe(true); // 1 of 9 > 0.9
  });

  it('a grounding record without a phrased box is a negative: the whole text as its prompt, no box', () => {
    const bare: GroundingRecord = { ...grounding, spans: [[], []] };
    const { prompts, targets } = fineTargets([sample(bare)], options('pretrain-fine', 32), {
      emptyRows: 0,
      uncovered: 0,
    });
    expect(targets[0].boxes).toEqual([]);
    expect(prompts[0].caption).toBe(text);
    expect(skipsBatch(targets)).toBe(true);
  });
});
