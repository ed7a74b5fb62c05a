/** Bad input to a metric: names the file (when known), the entry and the field. */
export class MetricInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetricInputError';
  }
}

/** Prefix for messages: `file: ` when a file name is known. */
export const where = (file?: string) => (file ? `${file}: ` : '');

/**
 * A value as an error message shows it: JSON's form, but numbers as JS prints them (JSON.parse reads
 * 1e999 as Infinity, which JSON.stringify would show as null) and cut after about `max` characters,
 * so that a whole data file passed where one entry belongs does not become the message.
 */
export function show(x: unknown, max = 120): string {
  let out = '';
  const seen = new Set<object>();
  const put = (v: unknown): boolean => {
    if (out.length > max) return false;
    if (typeof v === 'number') out += Object.is(v, -0) ? '-0' : String(v);
    else if (typeof v === 'string') out += JSON.stringify(v);
    else if (typeof v === 'bigint') out += `${v}n`;
    else if (v === null || typeof v === 'boolean') out += String(v);
    else if (typeof v !== 'object')
      out += String(v); // undefined, a function, a symbol
    else if (seen.has(v)) out += '[circular]';
    else if (v instanceof Map || v instanceof Set) out += `a ${v.constructor.name} of ${v.size}`;
    else {
      seen.add(v);
      const list = Array.isArray(v);
      out += list ? '[' : '{';
      const entries = list ? v.map((e, i) => [i, e] as const) : Object.entries(v);
      for (const [i, [k, e]] of entries.entries()) {
        if (i > 0) out += ',';
        if (!list) out += `${JSON.stringify(k)}:`;
        if (!put(e)) return false;
      }
      out += list ? ']' : '}';
      seen.delete(v);
    }
    return out.length <= max;
  };
  return put(x) ? out : `${out.slice(0, max)}…`;
}

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
