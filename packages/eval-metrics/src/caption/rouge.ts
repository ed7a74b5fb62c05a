// ROUGE-L as pycocoevalcap's rouge.py (metrics-spec §4): tokens split on single spaces, LCS
// precision and recall maximised independently over references, beta = 1.2.

import { checkCaptionItem } from './check.js';

const BETA = 1.2;

/** Length of the longest common subsequence of two token lists (O(min) memory). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  const [long, short] = a.length >= b.length ? [a, b] : [b, a];
  let prev = new Int32Array(short.length + 1);
  let cur = new Int32Array(short.length + 1);
  for (let i = 1; i <= long.length; i++) {
    for (let j = 1; j <= short.length; j++) {
      cur[j] = long[i - 1] === short[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[short.length];
}

export function rougeL(candidate: string, references: readonly string[]): number {
  checkCaptionItem(candidate, references, 'rougeL');
  return rougeLScore(candidate, references);
}

/** rougeL on input already checked (evaluateCaptions checks every image first). */
export function rougeLScore(candidate: string, references: readonly string[]): number {
  const c = candidate.split(' ');
  let p = 0;
  let r = 0;
  for (const ref of references) {
    const t = ref.split(' ');
    const lcs = lcsLength(t, c);
    p = Math.max(p, lcs / c.length);
    r = Math.max(r, lcs / t.length);
  }
  return p !== 0 && r !== 0 ? ((1 + BETA ** 2) * p * r) / (r + BETA ** 2 * p) : 0;
}
