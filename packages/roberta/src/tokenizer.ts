// RoBERTa's byte-level BPE tokenizer (GPT-2 scheme): text -> UTF-8 bytes mapped to printable
// characters -> GPT-2 pre-tokenisation regex -> BPE merges by rank -> ids, with the special tokens
// <s> </s> <pad> <unk> <mask>, truncation, padding, attention masks and character offsets.
//
// Written here rather than taken from a library because none on npm returns character offsets
// (grounding needs them to map phrases to token spans) together with RoBERTa's offset trimming.
// Loads a HF `tokenizer.json`, or `vocab.json` + `merges.txt` (users bring roberta-base's files).
//
// Work is bounded on any input: the merge loop is O(n log n) in a word's length (a heap of pair
// ranks over a linked list of symbols, instead of rescanning the word after every merge), and with
// `maxLength` tokenisation stops once enough tokens exist, so a 1 MiB text costs what its first
// words cost (the word that crosses the limit is still merged whole, so the ids equal those of
// tokenising everything and truncating).

/** GPT-2's reversible byte -> printable character map. */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i])));
  return out;
}

export const BYTE_TO_CHAR = bytesToUnicode();
const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));
/** GPT-2 pre-tokenisation. */
export const PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export interface SpecialTokens {
  bos: string;
  eos: string;
  pad: string;
  unk: string;
  mask: string;
}

export const ROBERTA_SPECIAL_TOKENS: SpecialTokens = {
  bos: '<s>',
  eos: '</s>',
  pad: '<pad>',
  unk: '<unk>',
  mask: '<mask>',
};

export interface EncodeOptions {
  /** Add <s> ... </s> (default true). */
  addSpecialTokens?: boolean;
  /** Truncate to this many ids, special tokens included. */
  maxLength?: number;
  /**
   * 'max_length' pads to maxLength (FIBER's setting), 'longest' (batch) to the longest, false: none;
   * true is 'longest', as HF's `padding=True`. 'max_length' takes a maxLength of at most
   * MAX_PADDED_LENGTH (2^16) tokens.
   */
  padding?: 'max_length' | 'longest' | boolean;
}

export interface Encoding {
  ids: number[];
  tokens: string[];
  attentionMask: number[];
  /** [start, end) character offsets into the input string; [0, 0] for special and padding tokens. */
  offsets: [number, number][];
  /** Whether truncation to maxLength cut tokens off. */
  truncated: boolean;
}

/**
 * Byte-pair merging of one word's symbols by merge rank, with GPT-2's semantics: repeatedly take the
 * lowest-ranked adjacent pair present and merge all of its (non-overlapping, left-to-right)
 * occurrences. O(n log n): a min-heap of candidate pairs keyed by (rank, position) over a doubly
 * linked list of symbols; a heap entry whose symbols have changed since it was pushed is skipped.
 * Pairs created while one rank's occurrences are merged wait until that rank is done, as in
 * GPT-2's loop. `rankOf` is called at most 3n times.
 */
export function bpeMerge(
  symbols: readonly string[],
  rankOf: (left: string, right: string) => number | undefined,
): string[] {
  const n = symbols.length;
  if (n < 2) return [...symbols];
  const sym = [...symbols];
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  /** Bumped whenever a symbol changes or dies: invalidates the heap entries that saw it. */
  const version = new Uint32Array(n);
  // heap entries (at most n - 1 initial pairs + 2 per merge < 3n) in typed arrays: the key
  // rank * 2^32 + left (ordering by rank, then position), left and right symbol, and their
  // versions when pushed; `heap` holds entry ids ordered by key
  const capacity = 3 * n;
  const key = new Float64Array(capacity);
  const left = new Int32Array(capacity);
  const right = new Int32Array(capacity);
  const vLeft = new Uint32Array(capacity);
  const vRight = new Uint32Array(capacity);
  const heap = new Int32Array(capacity);
  let entries = 0;
  let size = 0;
  const push = (l: number) => {
    const r = next[l];
    if (r < 0) return;
    const k = rankOf(sym[l], sym[r]);
    if (k === undefined) return;
    const id = entries++;
    key[id] = k * 2 ** 32 + l;
    left[id] = l;
    right[id] = r;
    vLeft[id] = version[l];
    vRight[id] = version[r];
    let i = size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (key[id] >= key[heap[parent]]) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = id;
  };
  const pop = (): number => {
    const top = heap[0];
    const last = heap[--size];
    let i = 0;
    for (;;) {
      const a = 2 * i + 1;
      if (a >= size) break;
      const m = a + 1 < size && key[heap[a + 1]] < key[heap[a]] ? a + 1 : a;
      if (key[heap[m]] >= key[last]) break;
      heap[i] = heap[m];
      i = m;
    }
    heap[i] = last;
    return top;
  };
  for (let i = 0; i < n - 1; i++) push(i);
  const created: number[] = [];
  const rankOfEntry = (id: number) => Math.floor(key[id] / 2 ** 32);
  while (size) {
    const r = rankOfEntry(heap[0]);
    // one round: every occurrence of the pair of rank r, left to right
    while (size && rankOfEntry(heap[0]) === r) {
      const e = pop();
      const l = left[e];
      const rt = right[e];
      if (next[l] !== rt || version[l] !== vLeft[e] || version[rt] !== vRight[e]) continue;
      sym[l] += sym[rt];
      version[l]++;
      version[rt]++;
      next[l] = next[rt];
      if (next[rt] >= 0) prev[next[rt]] = l;
      next[rt] = -2; // dead
      created.push(l);
    }
    for (const l of created) {
      if (next[l] === -2) continue;
      if (prev[l] >= 0) push(prev[l]);
      push(l);
    }
    created.length = 0;
  }
  const out: string[] = [];
  for (let i = 0; i >= 0; i = next[i]) out.push(sym[i]);
  return out;
}

const PADDINGS: readonly unknown[] = ['max_length', 'longest', true, false, undefined];

/** The padding of `options` ('longest' for true), naming one that is not a padding. */
function paddingOf(options: EncodeOptions, where: string): 'max_length' | 'longest' | false {
  const { padding } = options;
  if (!PADDINGS.includes(padding))
    throw new RangeError(
      `${where}: padding must be 'max_length', 'longest', true or false, got ${JSON.stringify(padding) ?? String(padding)}`,
    );
  return padding === true ? 'longest' : (padding ?? false);
}

/**
 * The longest padding 'max_length' makes: 128 times RoBERTa's 512 positions. Each padded text is
 * four arrays of that length, about 6 MB at the bound.
 */
export const MAX_PADDED_LENGTH = 2 ** 16;

/**
 * maxLength must be a whole number of tokens with room for <s> and </s>, and no more than
 * MAX_PADDED_LENGTH where the texts are padded to it.
 */
function checkMaxLength(
  maxLength: number | undefined,
  addSpecialTokens: boolean,
  padding: 'max_length' | 'longest' | false,
  where: string,
): void {
  if (maxLength === undefined) return;
  const min = addSpecialTokens ? 2 : 0;
  if (typeof maxLength !== 'number' || !Number.isSafeInteger(maxLength) || maxLength < min) {
    throw new RangeError(
      `${where}: maxLength must be an integer >= ${min}${addSpecialTokens ? ' (room for <s> and </s>)' : ''}, got ${String(maxLength)}`,
    );
  }
  if (padding === 'max_length' && maxLength > MAX_PADDED_LENGTH)
    throw new RangeError(
      `${where}: padding 'max_length' pads every text to maxLength, at most ${MAX_PADDED_LENGTH} tokens, got ${maxLength}`,
    );
}

/** UTF-8 length of a code point (a lone surrogate encodes as U+FFFD, 3 bytes). */
const utf8Length = (cp: number) => (cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);

/** Words longer than this (in bytes) are not cached. */
const MAX_CACHED_WORD = 64;

/** The largest token id accepted: 2^24 - 1, some 60 times the largest vocabularies in use (256k). */
const MAX_TOKEN_ID = 2 ** 24 - 1;

export class ByteLevelBpeTokenizer {
  private readonly ranks = new Map<string, number>();
  private readonly idToToken: string[] = [];
  private readonly cache = new Map<string, string[]>();
  readonly special: SpecialTokens;

  /** token -> id. */
  readonly vocab: Map<string, number>;

  /**
   * `vocab` as a Map or a vocab.json object; `merges` in rank order. As HF's BPE builder, every part
   * of a merge and its result must be in the vocabulary.
   */
  constructor(
    vocab: Map<string, number> | Readonly<Record<string, number>>,
    merges: readonly (readonly [string, string])[],
    special: Partial<SpecialTokens> = {},
  ) {
    if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab))
      throw new TypeError(
        `tokenizer: vocab must be a Map or an object of token -> id, got ${vocab === null ? 'null' : Array.isArray(vocab) ? 'a list' : typeof vocab}`,
      );
    this.vocab = vocab instanceof Map ? vocab : new Map(Object.entries(vocab));
    if (!Array.isArray(merges))
      throw new TypeError(`tokenizer: merges must be a list of [a, b] pairs, got ${typeof merges}`);
    merges.forEach((m, i) => {
      if (!Array.isArray(m) || m.length !== 2 || typeof m[0] !== 'string' || typeof m[1] !== 'string')
        throw new TypeError(`tokenizer: merges[${i}] is not a pair of strings: ${JSON.stringify(m)}`);
      // HF: MergeTokenOutOfVocabulary (a merge whose result has no id would encode as <unk>)
      for (const t of [m[0], m[1], m[0] + m[1]])
        if (!this.vocab.has(t))
          throw new Error(
            `tokenizer: merges[${i}] ${JSON.stringify(`${m[0]} ${m[1]}`)}: ${JSON.stringify(t)} is not in the vocabulary`,
          );
      this.ranks.set(`${m[0]} ${m[1]}`, i);
    });
    // ids index an embedding table (vocabSize rows): each one a row, once
    for (const [t, id] of this.vocab) {
      if (!(Number.isInteger(id) && id >= 0 && id <= MAX_TOKEN_ID))
        throw new Error(
          // String(): JSON.stringify shows a vocab.json's 1e999 (Infinity) as null
          `tokenizer: the id of ${JSON.stringify(t)} is ${typeof id === 'number' ? String(id) : JSON.stringify(id)}, not an integer in [0, ${MAX_TOKEN_ID}]`,
        );
      if (this.idToToken[id] !== undefined)
        throw new Error(
          `tokenizer: ${JSON.stringify(this.idToToken[id])} and ${JSON.stringify(t)} have the same id ${id}`,
        );
      this.idToToken[id] = t;
    }
    this.special = { ...ROBERTA_SPECIAL_TOKENS, ...special };
    for (const [name, token] of Object.entries(this.special)) {
      if (!this.vocab.has(token)) throw new Error(`tokenizer: the vocabulary has no ${name} token "${token}"`);
    }
  }

  /** From a HF tokenizer.json (BPE model, merges as "a b" strings or [a, b] pairs; added tokens). */
  static fromTokenizerJson(json: unknown, special?: Partial<SpecialTokens>): ByteLevelBpeTokenizer {
    const j = json as {
      model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
      added_tokens?: { id: number; content: string }[];
    };
    if (!j?.model?.vocab || !Array.isArray(j.model.merges))
      throw new Error('tokenizer.json: expected a BPE "model" with "vocab" and "merges"');
    if (j.model.type && j.model.type !== 'BPE')
      throw new Error(`tokenizer.json: model type ${j.model.type} is not BPE`);
    const vocab = new Map(Object.entries(j.model.vocab));
    for (const t of j.added_tokens ?? []) vocab.set(t.content, t.id);
    const merges = j.model.merges.map((m, i) => {
      const pair = typeof m === 'string' ? m.split(' ') : m;
      if (pair.length !== 2) throw new Error(`tokenizer.json: merges[${i}] is not a pair: ${JSON.stringify(m)}`);
      return pair as [string, string];
    });
    return new ByteLevelBpeTokenizer(vocab, merges, special);
  }

  /** From vocab.json (token -> id) and merges.txt ("#version" header, then "a b" lines). */
  static fromVocabAndMerges(
    vocabJson: Record<string, number> | string,
    mergesTxt: string,
    special?: Partial<SpecialTokens>,
  ): ByteLevelBpeTokenizer {
    let parsed: unknown = vocabJson;
    if (typeof vocabJson === 'string') {
      try {
        parsed = JSON.parse(vocabJson);
      } catch (e) {
        throw new Error(`vocab.json: not JSON (${(e as Error).message})`);
      }
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error(
        `vocab.json: expected an object of token -> id, got ${parsed === null ? 'null' : Array.isArray(parsed) ? 'a list' : typeof parsed}`,
      );
    const vocab = new Map(Object.entries(parsed as Record<string, number>));
    const merges: [string, string][] = [];
    mergesTxt.split(/\r?\n/).forEach((l, i) => {
      if (!l.trim() || (i === 0 && l.startsWith('#version'))) return;
      const pair = l.split(' ');
      if (pair.length !== 2) throw new Error(`merges.txt: line ${i + 1} is not a pair: ${JSON.stringify(l)}`);
      merges.push(pair as [string, string]);
    });
    return new ByteLevelBpeTokenizer(vocab, merges, special);
  }

  /** Rows an embedding table needs: the largest id + 1 (the number of tokens when the ids have no gaps). */
  get vocabSize(): number {
    return this.idToToken.length;
  }

  /** The merges in rank order: `mergesToText(tokenizer.merges())` and `vocab` are merges.txt and vocab.json again. */
  merges(): [string, string][] {
    return [...this.ranks].sort((a, b) => a[1] - b[1]).map(([m]) => m.split(' ') as [string, string]);
  }

  id(token: string): number {
    const id = this.vocab.get(token);
    return id ?? this.vocab.get(this.special.unk)!;
  }

  /** BPE of one pre-token already mapped to byte characters (each a single UTF-16 unit). */
  private bpe(word: string): string[] {
    const hit = this.cache.get(word);
    if (hit) return hit;
    const parts = bpeMerge(word.split(''), (a, b) => this.ranks.get(`${a} ${b}`));
    if (word.length <= MAX_CACHED_WORD && this.cache.size < 100_000) this.cache.set(word, parts);
    return parts;
  }

  /**
   * Tokens and offsets of plain text (no special tokens inside) starting at `base`, appended to
   * `out`; stops after the pre-token during which `out` reaches `limit` tokens.
   */
  private tokenizeText(
    text: string,
    base: number,
    out: { tokens: string[]; offsets: [number, number][] },
    limit: number,
  ) {
    const encoder = new TextEncoder();
    for (const m of text.matchAll(PRETOKENIZE)) {
      if (out.tokens.length >= limit) return;
      const piece = m[0];
      const start = base + m.index!;
      const utf8 = encoder.encode(piece);
      // for each byte of the piece: the [start, end) of the character (UTF-16 indices) it belongs to
      const charStart = new Int32Array(utf8.length);
      const charEnd = new Int32Array(utf8.length);
      let bytes = '';
      for (const x of utf8) bytes += BYTE_TO_CHAR[x];
      let bi = 0;
      for (let ci = 0; ci < piece.length; ) {
        const cp = piece.codePointAt(ci)!;
        const units = cp > 0xffff ? 2 : 1;
        for (let k = utf8Length(cp); k > 0; k--, bi++) {
          charStart[bi] = ci;
          charEnd[bi] = ci + units;
        }
        ci += units;
      }
      bi = 0;
      for (const tok of this.bpe(bytes)) {
        const n = tok.length;
        // a token holding part of a multi-byte character spans the whole character (as HF does)
        let s = charStart[bi];
        const e = charEnd[bi + n - 1];
        // RoBERTa's ByteLevel post-processor trims offsets: the space byte (Ġ) at either end of a
        // token belongs to no character span. Only that byte: no byte-level character is Unicode
        // whitespace, so a newline (Ċ), a tab or a no-break space keeps its span, as in HF.
        while (s < e && piece[s] === ' ') s++;
        let t = e;
        while (t > s && piece[t - 1] === ' ') t--;
        out.tokens.push(tok);
        out.offsets.push([start + s, start + t]);
        bi += n;
      }
    }
  }

  /** Tokens and offsets of `text`, recognising special tokens written in it (`<mask>` absorbs a space before it). */
  tokenize(text: string): { tokens: string[]; offsets: [number, number][] } {
    return this.tokenizeUpTo(text, Infinity);
  }

  /** tokenize(), stopping once at least `limit` tokens exist (the tokens so far are the full result's first ones). */
  private tokenizeUpTo(text: string, limit: number): { tokens: string[]; offsets: [number, number][] } {
    const specials = Object.values(this.special);
    const pattern = new RegExp(specials.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
    const out = { tokens: [] as string[], offsets: [] as [number, number][] };
    let last = 0;
    for (const m of text.matchAll(pattern)) {
      if (out.tokens.length >= limit) return out;
      let end = m.index!;
      if (m[0] === this.special.mask) while (end > last && text[end - 1] === ' ') end--;
      this.tokenizeText(text.slice(last, end), last, out, limit);
      out.tokens.push(m[0]);
      out.offsets.push([m.index!, m.index! + m[0].length]);
      last = m.index! + m[0].length;
    }
    this.tokenizeText(text.slice(last), last, out, limit);
    return out;
  }

  encode(text: string, options: EncodeOptions = {}): Encoding {
    const { addSpecialTokens = true, maxLength } = options;
    const padding = paddingOf(options, 'tokenizer.encode');
    if (typeof text !== 'string') throw new TypeError(`tokenizer.encode: expected a string, got ${typeof text}`);
    checkMaxLength(maxLength, addSpecialTokens, padding, 'tokenizer.encode');
    const room = maxLength === undefined ? Infinity : maxLength - (addSpecialTokens ? 2 : 0);
    // one token past the room tells whether anything was cut
    const { tokens, offsets } = this.tokenizeUpTo(text, room + 1);
    const truncated = tokens.length > room;
    const keep = truncated ? tokens.slice(0, room) : tokens;
    const keepOffsets = offsets.slice(0, keep.length);
    const allTokens = addSpecialTokens ? [this.special.bos, ...keep, this.special.eos] : keep;
    const allOffsets: [number, number][] = addSpecialTokens ? [[0, 0], ...keepOffsets, [0, 0]] : keepOffsets;
    const enc: Encoding = {
      tokens: allTokens,
      ids: allTokens.map((t) => this.id(t)),
      attentionMask: allTokens.map(() => 1),
      offsets: allOffsets,
      truncated,
    };
    if (padding === 'max_length') {
      if (maxLength === undefined) throw new RangeError("tokenizer.encode: padding 'max_length' needs maxLength");
      this.pad(enc, maxLength);
    }
    return enc;
  }

  /** Encodes several texts; 'longest' pads to the longest of the batch. */
  encodeBatch(texts: readonly string[], options: EncodeOptions = {}): Encoding[] {
    const padding = paddingOf(options, 'tokenizer.encodeBatch');
    checkMaxLength(options.maxLength, options.addSpecialTokens ?? true, padding, 'tokenizer.encodeBatch');
    const encs = texts.map((t, i) => {
      try {
        return this.encode(t, { ...options, padding: padding === 'max_length' ? 'max_length' : false });
      } catch (e) {
        const Err = e instanceof RangeError ? RangeError : TypeError;
        throw new Err(`tokenizer.encodeBatch: text ${i}: ${(e as Error).message}`);
      }
    });
    if (padding === 'longest') {
      const longest = encs.reduce((m, e) => Math.max(m, e.ids.length), 0); // no spread: 130k texts overflowed the stack
      for (const e of encs) this.pad(e, longest);
    }
    return encs;
  }

  private pad(enc: Encoding, length: number) {
    const padId = this.id(this.special.pad);
    while (enc.ids.length < length) {
      enc.ids.push(padId);
      enc.tokens.push(this.special.pad);
      enc.attentionMask.push(0);
      enc.offsets.push([0, 0]);
    }
  }

  decode(ids: readonly number[], { skipSpecialTokens = true } = {}): string {
    const specials = new Set(Object.values(this.special));
    const text = ids
      .map((id) => this.idToToken[id] ?? this.special.unk)
      .filter((t) => !(skipSpecialTokens && specials.has(t)))
      .join('');
    const bytes = Uint8Array.from(Array.from(text), (c) => CHAR_TO_BYTE.get(c) ?? 63);
    return new TextDecoder().decode(bytes);
  }
}
