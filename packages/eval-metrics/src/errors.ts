/** Bad input to a metric: names the file (when known), the entry and the field. */
export class MetricInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetricInputError';
  }
}

/** Prefix for messages: `file: ` when a file name is known. */
export const where = (file?: string) => (file ? `${file}: ` : '');

/** Rounds half away from zero on the exact binary value, as Python 2's round(x, n) (used by the official VQA script). */
export function roundPy2(x: number, digits: number): number {
  if (!Number.isFinite(x)) return x;
  const s = Math.abs(x).toFixed(digits);
  return Math.sign(x) * Number(s);
}

/** Arithmetic mean; NaN for an empty list. */
export function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}
