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
 * A sentence of an NgramIndex: its word ids at `words[wordStart ...]`; with n-grams, the ids of its
 * 1-grams, then its 2-grams, ... at `grams[start ...]`, each block in word order (block k starts at
 * `start + offset(length, k)`).
 */
export interface Sentence {
  /** Number of words. */
  length: number;
  wordStart: number;
  start: number;
}

/** Start of the block of (k+1)-grams in a sentence's n-gram ids. */
export function offset(length: number, k: number): number {
  let o = 0;
  for (let j = 0; j < k; j++) o += Math.max(0, length - j);
  return o;
}

/**
 * An open-addressing hash table from (prefix id + 1, word id) pairs to dense ids 0, 1, 2, ...: an
 * n-gram is its (n-1)-gram prefix's id and its last word (a 1-gram's prefix is 0).
 */
export class PairTable {
  private keyPrefix: Int32Array;
  private keyWord: Int32Array;
  private ids: Int32Array;
  /** Slots in use, to clear the table without touching all of it. */
  private slots: IdList = new IdList();
  size = 0;

  constructor(capacity = 64) {
    this.keyPrefix = new Int32Array(capacity);
    this.keyWord = new Int32Array(capacity);
    this.ids = new Int32Array(capacity).fill(-1);
  }

  /** The id of (prefix, word), a new one if the pair is new. */
  intern(prefix: number, word: number): number {
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
    this.slots.push(h);
    if (this.size * 2 > this.ids.length) this.grow();
    return id;
  }

  /** Forgets every pair (ids restart at 0). */
  clear(): void {
    for (let s = 0; s < this.slots.length; s++) this.ids[this.slots.items[s]] = -1;
    this.slots.length = 0;
    this.size = 0;
  }

  private grow(): void {
    const [oldPrefix, oldWord, oldIds] = [this.keyPrefix, this.keyWord, this.ids];
    const cap = oldIds.length * 2;
    this.keyPrefix = new Int32Array(cap);
    this.keyWord = new Int32Array(cap);
    this.ids = new Int32Array(cap).fill(-1);
    this.slots.length = 0;
    const mask = cap - 1;
    for (let s = 0; s < oldIds.length; s++) {
      if (oldIds[s] < 0) continue;
      let h = (Math.imul(oldPrefix[s], 0x9e3779b1) ^ Math.imul(oldWord[s] + 0x7f4a7c15, 0x85ebca77)) & mask;
      while (this.ids[h] >= 0) h = (h + 1) & mask;
      this.keyPrefix[h] = oldPrefix[s];
      this.keyWord[h] = oldWord[s];
      this.ids[h] = oldIds[s];
      this.slots.push(h);
    }
  }
}

/**
 * Word ids by an open-addressing table on the words' FNV-1a hashes, compared in place in the
 * sentence text, so that a known word costs no substring.
 */
class Vocabulary {
  private readonly words: string[] = [];
  private hashes = new Int32Array(1024);
  private ids = new Int32Array(1024).fill(-1);

  /** The id of text[begin, end) whose hash is `hash`. */
  intern(text: string, begin: number, end: number, hash: number): number {
    const len = end - begin;
    let mask = this.ids.length - 1;
    let h = hash & mask;
    for (;;) {
      const id = this.ids[h];
      if (id < 0) break;
      if (this.hashes[h] === hash) {
        const w = this.words[id];
        if (w.length === len && text.startsWith(w, begin)) return id;
      }
      h = (h + 1) & mask;
    }
    const id = this.words.length;
    this.words.push(text.slice(begin, end));
    this.hashes[h] = hash;
    this.ids[h] = id;
    if (2 * this.words.length > this.ids.length) {
      const [oldHashes, oldIds] = [this.hashes, this.ids];
      this.hashes = new Int32Array(2 * oldIds.length);
      this.ids = new Int32Array(2 * oldIds.length).fill(-1);
      mask = this.ids.length - 1;
      for (let s = 0; s < oldIds.length; s++) {
        if (oldIds[s] < 0) continue;
        let k = oldHashes[s] & mask;
        while (this.ids[k] >= 0) k = (k + 1) & mask;
        this.hashes[k] = oldHashes[s];
        this.ids[k] = oldIds[s];
      }
    }
    return id;
  }
}

/**
 * Interns the words of sentences and, unless `grams` is false, all their n-grams (n <= maxN) to
 * dense ids shared by the whole corpus (CIDEr-D's document frequencies need corpus-wide ids; BLEU
 * only compares n-grams within an image and works from the word ids).
 */
export class NgramIndex {
  private readonly vocab = new Vocabulary();
  private readonly table = new PairTable(1024);
  /** Word ids of every sentence (see Sentence); reallocated as it grows. */
  words = new Int32Array(1024);
  /** N-gram ids of every sentence (see Sentence); reallocated as it grows. */
  grams = new Int32Array(1024);
  private usedWords = 0;
  private usedGrams = 0;

  constructor(
    readonly maxN = 4,
    private readonly withGrams = true,
  ) {}

  /** Number of distinct n-grams (of every order) so far. */
  get size(): number {
    return this.table.size;
  }

  /** Interns the words of `text` (split as Python's str.split()) and all their n-grams up to maxN. */
  sentence(text: string): Sentence {
    const wordStart = this.usedWords;
    let L = 0;
    let begin = -1;
    let hash = 0;
    for (let i = 0; i <= text.length; i++) {
      const c = i < text.length ? text.charCodeAt(i) : 0x20;
      if (!isPySpace(c)) {
        if (begin < 0) {
          begin = i;
          hash = 0x811c9dc5;
        }
        hash = Math.imul(hash ^ c, 0x01000193); // FNV-1a
        continue;
      }
      if (begin < 0) continue;
      const id = this.vocab.intern(text, begin, i, hash);
      if (wordStart + L === this.words.length) this.words = grown(this.words, 2 * this.words.length);
      this.words[wordStart + L++] = id;
      begin = -1;
    }
    this.usedWords += L;
    const start = this.usedGrams;
    if (this.withGrams) {
      const total = offset(L, this.maxN);
      if (start + total > this.grams.length) this.grams = grown(this.grams, 2 * (start + total));
      const { grams, words } = this;
      let prev = start;
      let at = start;
      for (let k = 0; k < this.maxN && k < L; k++) {
        for (let i = 0; i + k < L; i++) {
          grams[at + i] = this.table.intern(k === 0 ? 0 : grams[prev + i] + 1, words[wordStart + i + k]);
        }
        prev = at;
        at += L - k;
      }
      this.usedGrams += total;
    }
    return { length: L, wordStart, start };
  }
}

/** A copy of `a` in a larger array. */
export function grown(a: Int32Array, size: number): Int32Array<ArrayBuffer> {
  const next = new Int32Array(size);
  next.set(a);
  return next;
}

/** A growable Int32Array of ids. */
export class IdList {
  items = new Int32Array(64);
  length = 0;
  push(id: number): void {
    if (this.length === this.items.length) this.items = grown(this.items, this.length * 2);
    this.items[this.length++] = id;
  }
}
