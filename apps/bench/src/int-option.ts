// Integer command-line values, read the same way by every fiber-bench command: decimal digits only
// (spaces around them allowed), so that "1e3", "0x10", "2.0", "" and "-1" are refused instead of
// being read as numbers.

/** `v` as a safe integer >= min, or undefined when it is not one. */
export function parseIntOption(v: string, min: number): number | undefined {
  const t = v.trim();
  if (!/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isSafeInteger(n) && n >= min ? n : undefined;
}
