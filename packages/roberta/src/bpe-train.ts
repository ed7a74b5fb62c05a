// Byte-level BPE training (the algorithm of HF tokenizers' BpeTrainer with a ByteLevel
// pre-tokenizer): GPT-2 pre-tokenisation -> words of byte characters with counts -> repeatedly merge
// the most frequent adjacent pair (ties: the pair of lower token ids) until the vocabulary is full or
// no pair reaches `minFrequency`. The result loads into `ByteLevelBpeTokenizer`, so a small model can
// have a real tokenizer built from its own corpus without a download.
import { BYTE_TO_CHAR, PRETOKENIZE, ROBERTA_SPECIAL_TOKENS, type SpecialTokens } from './tokenizer.js';

export interface BpeTrainOptions {
  /** Size of the whole vocabulary: special tokens, the 256 byte characters and the merged tokens. */
  vocabSize: number;
  /** A pair is merged only if it occurs at least this often (HF's ByteLevelBPETokenizer default: 2). */
  minFrequency?: number;
  /** RoBERTa's layout: bos=0, pad=1, eos=2, unk=3, mask=the last id. */
  specialTokens?: Partial<SpecialTokens>;
}

/** A trained model in vocab.json / merges.txt form; load it with
 * `new ByteLevelBpeTokenizer(new Map(Object.entries(vocab)), merges)`. */
export interface BpeModel {
  vocab: Record<string, number>;
  merges: [string, string][];
}

/** Max-heap entry: a pair of token ids and its count when pushed (may be stale). */
interface Candidate {
  count: number;
  a: number;
  b: number;
}

/** Higher count first, then the smaller (a, b): HF's `Merge` ordering. */
function before(x: Candidate, y: Candidate): boolean {
  if (x.count !== y.count) return x.count > y.count;
  return x.a !== y.a ? x.a < y.a : x.b < y.b;
}

class MaxHeap {
  private items: Candidate[] = [];
  get size(): number {
    return this.items.length;
  }
  push(c: Candidate) {
    const h = this.items;
    h.push(c);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }
  pop(): Candidate | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l], h[m])) m = l;
        if (r < h.length && before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

/** Ids stay below 2^21, so a pair packs exactly into one double. */
const PAIR_BASE = 2 ** 21;
const pairKey = (a: number, b: number) => a * PAIR_BASE + b;

/** Words (byte-character strings) of the corpus with their counts; special tokens in the text are not words. */
function countWords(corpus: Iterable<string>, specials: readonly string[]): Map<string, number> {
  const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const split = new RegExp(specials.map(escapeRegExp).join('|'), 'g');
  const encoder = new TextEncoder();
  const counts = new Map<string, number>();
  let n = 0;
  for (const text of corpus) {
    if (typeof text !== 'string') {
      throw new TypeError(`trainByteLevelBpe: corpus item ${n} is a ${typeof text}, not a string`);
    }
    n++;
    for (const part of text.split(split)) {
      for (const m of part.matchAll(PRETOKENIZE)) {
        let word = '';
        for (const byte of encoder.encode(m[0])) word += BYTE_TO_CHAR[byte];
        counts.set(word, (counts.get(word) ?? 0) + 1);
      }
    }
  }
  return counts;
}

/**
 * Trains a byte-level BPE vocabulary on `corpus` (any iterable of strings, read once).
 *
 * Ids: bos 0, pad 1, eos 2, unk 3, then the 256 byte characters in code-point order, then merged
 * tokens in merge order, then mask. Deterministic: the same corpus and options give the same model.
 *
 * @example
 * const { vocab, merges } = trainByteLevelBpe(['a red circle', 'a blue square'], { vocabSize: 300 });
 * const tokenizer = new ByteLevelBpeTokenizer(new Map(Object.entries(vocab)), merges);
 */
export function trainByteLevelBpe(corpus: Iterable<string>, options: BpeTrainOptions): BpeModel {
  // a string is an Iterable<string> too, of its characters: training on them learns no merge
  if (typeof corpus === 'string')
    throw new TypeError(
      'trainByteLevelBpe: the corpus is one string; give an iterable of texts (e.g. [text] or text.split("\\n"))',
    );
  const { vocabSize, minFrequency = 2 } = options;
  const special = { ...ROBERTA_SPECIAL_TOKENS, ...options.specialTokens };
  const leading = [special.bos, special.pad, special.eos, special.unk];
  const minSize = leading.length + 256 + 1;
  if (!Number.isInteger(vocabSize) || vocabSize < minSize || vocabSize >= PAIR_BASE) {
    const range = `[${minSize}, ${PAIR_BASE})`;
    throw new RangeError(`trainByteLevelBpe: vocabSize must be an integer in ${range}, got ${vocabSize}`);
  }
  if (!(minFrequency >= 1)) throw new RangeError(`trainByteLevelBpe: minFrequency must be >= 1, got ${minFrequency}`);
  const allSpecials = [...leading, special.mask];
  if (new Set(allSpecials).size !== allSpecials.length || allSpecials.some((s) => !s)) {
    const got = JSON.stringify(special);
    throw new TypeError(`trainByteLevelBpe: special tokens must be distinct non-empty strings, got ${got}`);
  }

  const tokens: string[] = [...leading, ...[...BYTE_TO_CHAR].sort((x, y) => x.codePointAt(0)! - y.codePointAt(0)!)];
  const idOf = new Map(tokens.map((t, i) => [t, i]));
  for (const s of allSpecials) {
    if (BYTE_TO_CHAR.includes(s)) {
      throw new TypeError(`trainByteLevelBpe: special token ${JSON.stringify(s)} is a byte character`);
    }
  }

  const wordCounts = countWords(corpus, allSpecials);
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [w, c] of wordCounts) {
    words.push(Array.from(w, (ch) => idOf.get(ch)!));
    counts.push(c);
  }

  // pair -> total count over the corpus, and the words it (once) occurred in
  const pairCounts = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const addPairs = (wi: number, sign: number, touched?: Set<number>) => {
    const w = words[wi];
    for (let i = 0; i < w.length - 1; i++) {
      const k = pairKey(w[i], w[i + 1]);
      pairCounts.set(k, (pairCounts.get(k) ?? 0) + sign * counts[wi]);
      if (sign > 0) {
        let s = where.get(k);
        if (!s) where.set(k, (s = new Set()));
        s.add(wi);
      }
      touched?.add(k);
    }
  };
  words.forEach((_, wi) => addPairs(wi, 1));

  const heap = new MaxHeap();
  for (const [k, count] of pairCounts) heap.push({ count, a: Math.floor(k / PAIR_BASE), b: k % PAIR_BASE });

  const merges: [string, string][] = [];
  while (tokens.length < vocabSize - 1 && heap.size > 0) {
    const top = heap.pop()!;
    const key = pairKey(top.a, top.b);
    const real = pairCounts.get(key) ?? 0;
    if (top.count !== real) {
      // counts only grow through a fresh push, so a stale entry is too high: correct it and retry
      top.count = real;
      heap.push(top);
      continue;
    }
    if (top.count < 1 || top.count < minFrequency) break;

    const merged = tokens[top.a] + tokens[top.b];
    let newId = idOf.get(merged);
    if (newId === undefined) {
      newId = tokens.length;
      tokens.push(merged);
      idOf.set(merged, newId);
    }
    merges.push([tokens[top.a], tokens[top.b]]);

    const countBefore = new Map<number, number>();
    const touched = new Set<number>();
    for (const wi of where.get(key) ?? []) {
      const w = words[wi];
      let has = false;
      for (let i = 0; i < w.length - 1 && !has; i++) has = w[i] === top.a && w[i + 1] === top.b;
      if (!has) continue;
      for (let i = 0; i < w.length - 1; i++) {
        const k = pairKey(w[i], w[i + 1]);
        if (!countBefore.has(k)) countBefore.set(k, pairCounts.get(k) ?? 0);
      }
      addPairs(wi, -1, touched);
      const out: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i < w.length - 1 && w[i] === top.a && w[i + 1] === top.b) {
          out.push(newId);
          i++;
        } else out.push(w[i]);
      }
      words[wi] = out;
      for (let i = 0; i < out.length - 1; i++) {
        const k = pairKey(out[i], out[i + 1]);
        if (!countBefore.has(k)) countBefore.set(k, pairCounts.get(k) ?? 0);
      }
      addPairs(wi, 1, touched);
    }
    for (const k of touched) {
      const now = pairCounts.get(k) ?? 0;
      if (now > (countBefore.get(k) ?? 0)) heap.push({ count: now, a: Math.floor(k / PAIR_BASE), b: k % PAIR_BASE });
    }
  }

  tokens.push(special.mask);
  const vocab: Record<string, number> = Object.create(null);
  tokens.forEach((t, i) => (vocab[t] = i));
  return { vocab, merges };
}

/** merges.txt text ("#version: 0.2" header, one "a b" pair a line) for `ByteLevelBpeTokenizer.fromVocabAndMerges`. */
export function mergesToText(merges: readonly (readonly [string, string])[]): string {
  return `${['#version: 0.2', ...merges.map(([a, b]) => `${a} ${b}`)].join('\n')}\n`;
}
