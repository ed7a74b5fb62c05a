import { describe, expect, it } from 'vitest';
import { worldCorpus, worldTokenizer } from './tokenizer.js';
import { createWorld } from './world.js';

describe('worldTokenizer', () => {
  const world = createWorld({
    seed: 2,
    splits: { train: 200, val: 20, test: 20 },
    nlvr2Pairs: { train: 50, val: 10, test: 10 },
  });
  const tok = worldTokenizer(world, { vocabSize: 800, scenes: 150, pairs: 50 });

  it('has RoBERTa special ids and a small vocabulary', () => {
    expect(tok.vocabSize).toBeLessThanOrEqual(800);
    expect(['<s>', '<pad>', '</s>', '<unk>'].map((t) => tok.id(t))).toEqual([0, 1, 2, 3]);
    expect(tok.id('<mask>')).toBe(tok.vocabSize - 1);
  });

  it('encodes world text in few tokens and round-trips it, including text it never saw', () => {
    const test = Array.from(world.samples('test')).flatMap((s) => [
      ...s.captions.map((c) => c.text),
      ...s.questions.map((q) => q.question),
    ]);
    let words = 0;
    let tokens = 0;
    for (const t of test) {
      const e = tok.encode(t, { addSpecialTokens: false });
      expect(tok.decode(e.ids)).toBe(t);
      words += t.split(' ').length;
      tokens += e.ids.length;
    }
    // nearly every word is one token
    expect(tokens / words).toBeLessThan(1.15);
    for (const t of ['Ünïcödé ✓ 東京', 'a RED Triangle!', '']) expect(tok.decode(tok.encode(t).ids)).toBe(t);
    // every world word is a single token after a space
    for (const w of ['circle', 'crosses', 'checkered', 'bottommost', 'purple'])
      expect(tok.encode(` ${w}`, { addSpecialTokens: false }).tokens).toEqual([`Ġ${w}`]);
  });

  it('is deterministic and built from train text only', () => {
    const again = worldTokenizer(world, { vocabSize: 800, scenes: 150, pairs: 50 });
    expect([...again.vocab]).toEqual([...tok.vocab]);
    const corpus = Array.from(worldCorpus(world, { scenes: 3, pairs: 2 }));
    const train = Array.from(world.samples('train', { end: 3 }));
    expect(corpus[0]).toBe(train[0].captions[0].text);
    expect(corpus.at(-1)).toContain('checkered');
  });
});
