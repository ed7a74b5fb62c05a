import { MetricInputError, show } from '../errors.js';

/**
 * One image's input to a caption scorer: at least one reference string and a candidate string
 * (pycocoevalcap's scorers assert `len(refs) > 0`; with none, BLEU came out as its smoothing
 * constants and CIDEr-D as NaN). `at` names the image in the message, `candidateAt` where the
 * candidate comes from when that differs (another file).
 */
export function checkCaptionItem(candidate: unknown, references: unknown, at: string, candidateAt = at): void {
  if (!Array.isArray(references))
    throw new MetricInputError(`${at}: the references are not a list of captions (${show(references)})`);
  if (references.length === 0) throw new MetricInputError(`${at}: needs at least one reference caption`);
  references.forEach((r, i) => {
    if (typeof r !== 'string') throw new MetricInputError(`${at}: reference ${i} is not a string (${show(r)})`);
  });
  if (typeof candidate !== 'string')
    throw new MetricInputError(`${candidateAt}: the caption is not a string (${show(candidate)})`);
}

/** The n-gram order of BLEU: a positive integer. */
export function checkOrder(n: unknown, what: string): void {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1)
    throw new MetricInputError(`${what}: n must be a positive integer, got ${show(n)}`);
}
