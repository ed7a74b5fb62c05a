// Dense integer ids for the words and n-grams of tokenised sentences, so that BLEU and CIDEr-D
// count n-grams in typed arrays instead of string-keyed maps (the scores are unchanged: only
// integers are counted this way, and every floating-point sum keeps the reference's order).

/** Whether a UTF-16 code unit is whitespace for Python's str.split() (str.isspace). */
function isPySpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c >= 0x1c;
  if (c < 0x85) return false;
  return (
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

/** Words as Python's `s.split()`: runs of Unicode whitespace separate them, none is empty. */
export function splitWords(s: string): string[] {
  const out: string[] = [];
  let start = -1;
  for (let i = 0; i < s.length; i++) {
    if (isPySpace(s.charCodeAt(i))) {
      if (start >= 0) out.push(s.slice(start, i));
      start = -1;
    } else if (start < 0) start = i;
  }
  if (start >= 0) out.push(s.slice(start));
  return out;
}

/**
 * A sentence as n-gram ids, stored in its index's arena from `start`: the ids of its 1-grams, then
 * of its 2-grams, ... each block in word order (block k starts at `start + offset(length, k)`).
 */
export interface Sentence {
  /** Number of words. */
  length: number;
  start: number;
}

/** Start of the block of (k+1)-grams in a sentence's ids. */
export function offset(length: number, k: number): number {
  let o = 0;
  for (let j = 0; j < k; j++) o += Math.max(0, length - j);
  return o;
}

/** Interns words and their n-grams (n <= maxN) to dense ids 0, 1, 2, ... */
export class NgramIndex {
  private readonly words = new Map<string, number>();
  // Open-addressing table (prefix id + 1, word id) -> n-gram id; a 1-gram's prefix is 0.
  private keyPrefix = new Int32Array(64);
  private keyWord = new Int32Array(64);
  private ids = new Int32Array(64).fill(-1);
  private wordIds = new Int32Array(64);
  /** The n-gram ids of every sentence (see Sentence); reallocated as it grows. */
  arena = new Int32Array(1024);
  private used = 0;
  /** Number of distinct n-grams (of every order) so far. */
  size = 0;

  constructor(readonly maxN = 4) {}

  /** Interns the words of `text` (split as Python's str.split()) and all their n-grams up to maxN. */
  sentence(text: string): Sentence {
    let L = 0;
    let begin = -1;
    for (let i = 0; i <= text.length; i++) {
      if (i < text.length && !isPySpace(text.charCodeAt(i))) {
        if (begin < 0) begin = i;
        continue;
      }
      if (begin < 0) continue;
      const word = text.slice(begin, i);
      let id = this.words.get(word);
      if (id === undefined) this.words.set(word, (id = this.words.size));
      if (L === this.wordIds.length) this.wordIds = grown(this.wordIds, L * 2);
      this.wordIds[L++] = id;
      begin = -1;
    }
    const total = offset(L, this.maxN);
    if (this.used + total > this.arena.length) this.arena = grown(this.arena, 2 * (this.used + total));
    const { arena, wordIds } = this;
    const start = this.used;
    let prev = start;
    let at = start;
    for (let k = 0; k < this.maxN && k < L; k++) {
      for (let i = 0; i + k < L; i++) arena[at + i] = this.intern(k === 0 ? 0 : arena[prev + i] + 1, wordIds[i + k]);
      prev = at;
      at += L - k;
    }
    this.used += total;
    return { length: L, start };
  }

  private intern(prefix: number, word: number): number {
    const mask = this.ids.length - 1;
    let h = (Math.imul(prefix, 0x9e3779b1) ^ Math.imul(word + 0x7f4a7c15, 0x85ebca77)) & mask;
    for (;;) {
      const id = this.ids[h];
      if (id < 0) break;
      if (this.keyPrefix[h] === prefix && this.keyWord[h] === word) return id;
      h = (h + 1) & mask;
    }
    const id = this.size++;
    this.keyPrefix[h] = prefix;
    this.keyWord[h] = word;
    this.ids[h] = id;
    if (this.size * 2 > this.ids.length) this.grow();
    return id;
  }

  private grow(): void {
    const [oldPrefix, oldWord, oldIds] = [this.keyPrefix, this.keyWord, this.ids];
    const cap = oldIds.length * 2;
    this.keyPrefix = new Int32Array(cap);
    this.keyWord = new Int32Array(cap);
    this.ids = new Int32Array(cap).fill(-1);
    const mask = cap - 1;
    for (let s = 0; s < oldIds.length; s++) {
      if (oldIds[s] < 0) continue;
      let h = (Math.imul(oldPrefix[s], 0x9e3779b1) ^ Math.imul(oldWord[s] + 0x7f4a7c15, 0x85ebca77)) & mask;
      while (this.ids[h] >= 0) h = (h + 1) & mask;
      this.keyPrefix[h] = oldPrefix[s];
      this.keyWord[h] = oldWord[s];
      this.ids[h] = oldIds[s];
    }
  }
}

/** A copy of `a` in a larger array. */
function grown(a: Int32Array, size: number): Int32Array<ArrayBuffer> {
  const next = new Int32Array(size);
  next.set(a);
  return next;
}

/** A growable Int32Array of n-gram ids. */
export class IdList {
  items = new Int32Array(64);
  length = 0;
  push(id: number): void {
    if (this.length === this.items.length) this.items = grown(this.items, this.length * 2);
    this.items[this.length++] = id;
  }
}
