import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mergesToText, trainByteLevelBpe, type BpeModel } from './bpe-train.js';
import { ByteLevelBpeTokenizer } from './tokenizer.js';

interface HfFixture {
  tokenizers: string;
  corpus: string[];
  cases: { vocabSize: number; minFrequency: number; vocab: Record<string, number>; merges: [string, string][] }[];
}
const fixture = new URL('../../../fixtures/bpe/hf-bpe-trainer.json', import.meta.url);
const hf = JSON.parse(readFileSync(fixture, 'utf8')) as HfFixture;

const load = ({ vocab, merges }: BpeModel) => new ByteLevelBpeTokenizer(new Map(Object.entries(vocab)), merges);

describe('trainByteLevelBpe', () => {
  it('merges the most frequent pair first, ties to the pair of lower ids (hand-checked)', () => {
    // words zzx x2, aax x2, zz x1. Counts: (z,z) 3, (z,x) 2, (a,a) 2, (a,x) 2 -> (z,z), new id 260.
    // Then (zz,x) 2, (a,a) 2, (a,x) 2 tie: (97, 97) is the lowest -> (a,a), id 261. Then (zz,x) and
    // (aa,x) tie at 2: zz has the lower id (260 < 261) although "aa" < "zz" as strings -> (zz,x), then (aa,x).
    const corpus = ['zzx', 'zzx', 'aax', 'aax', 'zz'];
    const model = trainByteLevelBpe(corpus, { vocabSize: 300, minFrequency: 2 });
    expect(model.merges).toEqual([
      ['z', 'z'],
      ['a', 'a'],
      ['zz', 'x'],
      ['aa', 'x'],
    ]);
    const ids = (...t: string[]) => t.map((x) => model.vocab[x]);
    expect(ids('zz', 'aa', 'zzx', 'aax', '<mask>')).toEqual([260, 261, 262, 263, 264]);
    expect(ids('<s>', '<pad>', '</s>', '<unk>')).toEqual([0, 1, 2, 3]);
    expect(ids('!', 'a', 'Ā')).toEqual([4, 4 + 97 - 33, 4 + 188]);
    expect(Object.keys(model.vocab)).toHaveLength(265);
    // vocabSize caps the vocabulary (the mask keeps the last id); minFrequency stops the merges
    const capped = trainByteLevelBpe(corpus, { vocabSize: 263 });
    expect(capped.merges).toEqual([
      ['z', 'z'],
      ['a', 'a'],
    ]);
    expect(capped.vocab['<mask>']).toBe(262);
    expect(trainByteLevelBpe(corpus, { vocabSize: 300, minFrequency: 3 }).merges).toEqual([['z', 'z']]);
  });

  it("gives HF tokenizers' BpeTrainer merges and ids on a mixed corpus", () => {
    for (const c of hf.cases) {
      const model = trainByteLevelBpe(hf.corpus, { vocabSize: c.vocabSize, minFrequency: c.minFrequency });
      expect(model.merges, `vocabSize ${c.vocabSize}`).toEqual(c.merges);
      expect({ ...model.vocab }).toEqual(c.vocab);
    }
  });

  it('is deterministic and loads into ByteLevelBpeTokenizer, directly and through merges.txt', () => {
    const corpus = ['a small red triangle left of the striped square', 'is there a blue star? yes', 'how many? 3'];
    const a = trainByteLevelBpe(corpus, { vocabSize: 320, minFrequency: 1 });
    const b = trainByteLevelBpe([...corpus], { vocabSize: 320, minFrequency: 1 });
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    const tok = load(a);
    const viaText = ByteLevelBpeTokenizer.fromVocabAndMerges({ ...a.vocab }, mergesToText(a.merges));
    expect(viaText.encode(corpus[0]).ids).toEqual(tok.encode(corpus[0]).ids);
    // minFrequency 1 merges until every word is one token, before the 320 cap
    expect(tok.vocabSize).toBeLessThan(320);
    for (const text of corpus) {
      const words = [...text.matchAll(/ ?[a-z]+| ?[0-9]+| ?[?]/g)].map((m) => m[0].replace(' ', 'Ġ'));
      expect(tok.encode(text, { addSpecialTokens: false }).tokens).toEqual(words);
    }
  });

  it('round-trips world text and arbitrary Unicode, with <mask> as a special token', () => {
    const tok = load(trainByteLevelBpe(hf.corpus, { vocabSize: 400 }));
    const unicode = 'Ünïcödé ✓ 𝔘𝔫𝔦 — \u0000\u007f\ud83d\ude00 \t\n';
    const texts = [...hf.corpus.slice(0, 20), unicode, '', '   ', 'x<mask>y'];
    for (const t of texts) expect(tok.decode(tok.encode(t).ids, { skipSpecialTokens: false })).toBe(`<s>${t}</s>`);
    // random code points, lone surrogates excluded (UTF-8 cannot carry them)
    let s = 1;
    const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (let n = 0; n < 50; n++) {
      const cps = Array.from({ length: 1 + Math.floor(rand() * 12) }, () => {
        const cp = Math.floor(rand() * 0x30000);
        return cp >= 0xd800 && cp < 0xe000 ? 0x20 : cp;
      });
      const t = String.fromCodePoint(...cps);
      expect(tok.decode(tok.encode(t).ids)).toBe(t);
    }
    expect(tok.encode('a <mask>').tokens).toEqual(['<s>', 'a', '<mask>', '</s>']);
    expect(tok.id('<mask>')).toBe(tok.vocabSize - 1);
  });

  it('does not learn merges across special tokens written in the corpus', () => {
    const model = trainByteLevelBpe(['<mask><mask><mask> q<s>q q<s>q'], { vocabSize: 300, minFrequency: 2 });
    expect(model.merges.flat().join('')).not.toMatch(/[<>]/);
  });

  it('rejects bad options and non-string corpus items by name', () => {
    expect(() => trainByteLevelBpe([], { vocabSize: 100 })).toThrow(/vocabSize must be an integer in \[261/);
    expect(() => trainByteLevelBpe([], { vocabSize: 300, minFrequency: 0 })).toThrow(/minFrequency/);
    expect(() => trainByteLevelBpe([], { vocabSize: 300, specialTokens: { pad: '<s>' } })).toThrow(/distinct/);
    function* hostile(): Generator<string> {
      yield 'ok';
      yield JSON.parse('3'); // a number where the type promises a string
    }
    expect(() => trainByteLevelBpe(hostile(), { vocabSize: 300 })).toThrow(/corpus item 1 is a number/);
    // a string type-checks as Iterable<string> (of its characters): refused instead of 0 merges
    expect(() => trainByteLevelBpe('a red star. a red star.', { vocabSize: 300 })).toThrow(
      'trainByteLevelBpe: the corpus is one string; give an iterable of texts (e.g. [text] or text.split("\\n"))',
    );
  });
});
