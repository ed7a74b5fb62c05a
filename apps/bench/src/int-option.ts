// Numeric command-line values, read the same way by every fiber-bench command. Integers: decimal
// digits only (spaces around them allowed), so that "1e3", "0x10", "2.0", "" and "-1" are refused
// instead of being read as numbers. Other numbers (--lr, --epochs, --max-case-seconds): decimal
// notation with an optional exponent ("5e-4", ".5", "2."), so that "0x10", "0b1", "Infinity" and
// "" are refused where Number() would read them.

/** `v` as a safe integer >= min, or undefined when it is not one. */
export function parseIntOption(v: string, min: number): number | undefined {
  const t = v.trim();
  if (!/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isSafeInteger(n) && n >= min ? n : undefined;
}

/** `v` as a finite number in decimal notation (an exponent allowed), or undefined when it is not one. */
export function parseNumberOption(v: string): number | undefined {
  const t = v.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t)) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}
