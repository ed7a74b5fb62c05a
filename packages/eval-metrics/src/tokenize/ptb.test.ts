import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ptbLex } from './ptb-lexer.js';
import { ptbTokenize, ptbTokenizeLine, ptbTokenizeLines } from './ptb.js';

interface Case {
  input: string;
  ptb_output_before_punct_removal: string;
  tokenized: string;
}
interface Call {
  class: string;
  inputs: string[];
  raw: string[];
  tokenized: string[];
}

const pkg = join(__dirname, '../..');
const cases: Case[] = JSON.parse(readFileSync(join(pkg, 'test/fixtures/ptb_tokenizer.json'), 'utf8')).cases;
// CoreNLP 3.4.1 run as pycocoevalcap runs it, one call per entry (scripts/fixtures/make_ptb_reference.py).
const calls: Call[] = JSON.parse(readFileSync(join(pkg, 'test/ptb/ptb_reference.json'), 'utf8')).calls;
const classes = [...new Set(calls.map((c) => c.class))];

/** "input -> got (want)" for every caption of the calls that differs from the reference. */
function mismatches(of: Call[], field: 'raw' | 'tokenized'): string[] {
  return of.flatMap((call) => {
    const got = field === 'raw' ? ptbTokenizeLines(call.inputs) : ptbTokenize(call.inputs);
    const show = JSON.stringify;
    return call.inputs.flatMap((input, i) =>
      got[i] === call[field][i] ? [] : [`${show(input)} -> ${show(got[i])} (${show(call[field][i])})`],
    );
  });
}

describe('PTB tokenizer = CoreNLP 3.4.1 PTBTokenizer as pycocoevalcap runs it', () => {
  it('covers every rule class', () => {
    expect(classes).toEqual([
      'contractions and clitics',
      'unicode normalisation',
      'quotes',
      'dashes and hyphens',
      'ellipses and periods',
      'currency',
      'numbers and dates',
      'urls emails sgml and symbols',
      'abbreviations and acronyms',
      'brackets and parentheses',
      'whitespace and empty',
      'line context',
      'fuzz',
      'unicode fuzz',
    ]);
    expect(calls.reduce((n, c) => n + c.inputs.length, 0)).toBeGreaterThan(2500);
  });

  it.each(classes)('%s: final strings equal the reference', (name) => {
    expect(
      mismatches(
        calls.filter((c) => c.class === name),
        'tokenized',
      ),
    ).toEqual([]);
  });

  it.each(classes)('%s: raw tokenizer lines equal the reference', (name) => {
    expect(
      mismatches(
        calls.filter((c) => c.class === name),
        'raw',
      ),
    ).toEqual([]);
  });

  // The shared fixture's cases were tokenised in one call (":-(" is a smiley only before another character).
  const sharedFinal = ptbTokenize(cases.map((c) => c.input));
  const sharedRaw = ptbTokenizeLines(cases.map((c) => c.input));
  it.each(cases.map((c, i): [string, number] => [c.input, i]))('shared fixture %j', (_input, i) => {
    expect(sharedFinal[i]).toBe(cases[i].tokenized);
    expect(sharedRaw[i]).toBe(cases[i].ptb_output_before_punct_removal);
  });

  it('ptbTokenizeLine is a call with one caption (a smiley at the very end is not one)', () => {
    expect(ptbTokenizeLine('A :) smiley face :-(')).toBe('a :-rrb- smiley face : - -lrb-');
  });

  it('a caption depends on the next one, as in the reference (one call tokenises every caption)', () => {
    // A one-letter acronym before a line starting with "A " loses its period.
    expect(ptbTokenize(['the letter b.', 'A man.'])[0]).toBe('the letter b');
    expect(ptbTokenize(['the letter b.', 'a man.'])[0]).toBe('the letter b.');
    expect(ptbTokenize(['the letter b.'])[0]).toBe('the letter b.');
  });

  it('line breaks the wrapper leaves in a caption are spaces here (the reference shifts later captions)', () => {
    expect(ptbTokenize(['a\rb', 'c\u2028d', 'e\nf', 'g'])).toEqual(['a b', 'c d', 'e f', 'g']);
  });

  it('the first-character filter and the fast path change no token', () => {
    for (const call of calls) {
      const text = call.inputs.join('\n');
      const fast: string[] = [];
      const full: string[] = [];
      ptbLex(text, (t) => fast.push(t));
      ptbLex(text, (t) => full.push(t), { allRules: true });
      expect(fast).toEqual(full);
    }
  });

  it('takes linear time on a hostile caption without spaces', () => {
    const unit = 'a,b.c@d-e/f:g(h)i&amp;j\'k"l1.2$3%...';
    const caption = unit.repeat(Math.ceil(200_000 / unit.length));
    const t = performance.now();
    const [out] = ptbTokenize([caption]);
    expect(performance.now() - t).toBeLessThan(20_000);
    expect(out.length).toBeGreaterThan(100_000);
  });
});

describe('PTB tokenizer on values that are not strings', () => {
  const loose = <T>(f: (x: T) => unknown) => f as (x: unknown) => unknown;
  it('names the function and the caption instead of failing inside a string method', () => {
    expect(() => loose(ptbTokenizeLine)(null)).toThrow(
      new TypeError('ptbTokenizeLine: the caption is not a string (null)'),
    );
    expect(() => loose(ptbTokenize)(['a dog', 7])).toThrow(new TypeError('ptbTokenize: caption 1 is not a string (7)'));
    expect(() => loose(ptbTokenizeLines)('a dog')).toThrow(
      /^ptbTokenizeLines: expected an array of captions, got "a dog"/,
    );
    expect(ptbTokenize(['A dog.'])).toEqual(['a dog']);
  });
});
