import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ptbTokenize, ptbTokenizeLine } from './ptb.js';

const fx = JSON.parse(readFileSync(join(__dirname, '../../test/fixtures/ptb_tokenizer.json'), 'utf8'));

describe('PTB tokenizer (CoreNLP 3.4.1 as the COCO wrapper runs it)', () => {
  it.each(fx.cases.map((c: any): [string, any] => [c.input, c]) as [string, any][])('%j', (_input, c: any) => {
    expect(ptbTokenize([c.input])[0]).toBe(c.tokenized);
  });
  it.each(fx.cases.map((c: any): [string, any] => [c.input, c]) as [string, any][])('raw line of %j', (_input, c: any) => {
    // The raw line differs only where CoreNLP adds a sentence-final "." after an abbreviation.
    const expected = c.ptb_output_before_punct_removal.replace(/(\S\.) \.$/, '$1');
    expect(ptbTokenizeLine(c.input).replace(/(\S\.) \.$/, '$1')).toBe(expected);
  });
});
