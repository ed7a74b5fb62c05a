import { MetricInputError, show } from '../errors.js';

/**
 * One image's input to a caption scorer: a candidate string and at least one reference string
 * (pycocoevalcap's scorers assert `len(refs) > 0`; with none, BLEU came out as its smoothing
 * constants and CIDEr-D as NaN). `at` names the item in the message.
 */
export function checkCaptionItem(candidate: unknown, references: unknown, at: string): void {
  if (typeof candidate !== 'string')
    throw new MetricInputError(`${at}: the candidate is not a string (${show(candidate)})`);
  if (!Array.isArray(references))
    throw new MetricInputError(`${at}: references must be a list of strings, got ${show(references)}`);
  if (references.length === 0) throw new MetricInputError(`${at}: no references (every image needs at least one)`);
  references.forEach((r, j) => {
    if (typeof r !== 'string') throw new MetricInputError(`${at}: references[${j}] is not a string (${show(r)})`);
  });
}

/** The n-gram order of BLEU: a positive integer. */
export function checkOrder(n: unknown, what: string): void {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1)
    throw new MetricInputError(`${what}: n must be a positive integer, got ${show(n)}`);
}
