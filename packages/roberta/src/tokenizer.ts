// RoBERTa's byte-level BPE tokenizer (GPT-2 scheme): text -> UTF-8 bytes mapped to printable
// characters -> GPT-2 pre-tokenisation regex -> BPE merges by rank -> ids, with the special tokens
// <s> </s> <pad> <unk> <mask>, truncation, padding, attention masks and character offsets.
//
// Written here rather than taken from a library because none on npm returns character offsets
// (grounding needs them to map phrases to token spans) together with RoBERTa's offset trimming.
// Loads a HF `tokenizer.json`, or `vocab.json` + `merges.txt` (users bring roberta-base's files).

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

export const ROBERTA_SPECIAL_TOKENS: SpecialTokens = { bos: '<s>', eos: '</s>', pad: '<pad>', unk: '<unk>', mask: '<mask>' };

export interface EncodeOptions {
  /** Add <s> ... </s> (default true). */
  addSpecialTokens?: boolean;
  /** Truncate to this many ids, special tokens included. */
  maxLength?: number;
  /** 'max_length' pads to maxLength (FIBER's setting), 'longest' (batch) to the longest, false: none. */
  padding?: 'max_length' | 'longest' | false;
}

export interface Encoding {
  ids: number[];
  tokens: string[];
  attentionMask: number[];
  /** [start, end) character offsets into the input string; [0, 0] for special and padding tokens. */
  offsets: [number, number][];
  /** Tokens cut by truncation. */
  overflow: number;
}

export class ByteLevelBpeTokenizer {
  private readonly ranks = new Map<string, number>();
  private readonly idToToken: string[] = [];
  private readonly cache = new Map<string, string[]>();
  readonly special: SpecialTokens;

  constructor(
    readonly vocab: Map<string, number>,
    merges: readonly [string, string][],
    special: Partial<SpecialTokens> = {},
  ) {
    merges.forEach(([a, b], i) => this.ranks.set(`${a} ${b}`, i));
    for (const [t, id] of vocab) this.idToToken[id] = t;
    this.special = { ...ROBERTA_SPECIAL_TOKENS, ...special };
    for (const [name, token] of Object.entries(this.special)) {
      if (!vocab.has(token)) throw new Error(`tokenizer: the vocabulary has no ${name} token "${token}"`);
    }
  }

  /** From a HF tokenizer.json (BPE model, merges as "a b" strings or [a, b] pairs; added tokens). */
  static fromTokenizerJson(json: unknown, special?: Partial<SpecialTokens>): ByteLevelBpeTokenizer {
    const j = json as { model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] }; added_tokens?: { id: number; content: string }[] };
    if (!j?.model?.vocab || !Array.isArray(j.model.merges)) throw new Error('tokenizer.json: expected a BPE "model" with "vocab" and "merges"');
    if (j.model.type && j.model.type !== 'BPE') throw new Error(`tokenizer.json: model type ${j.model.type} is not BPE`);
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
  static fromVocabAndMerges(vocabJson: Record<string, number> | string, mergesTxt: string, special?: Partial<SpecialTokens>): ByteLevelBpeTokenizer {
    const vocab = new Map(Object.entries(typeof vocabJson === 'string' ? (JSON.parse(vocabJson) as Record<string, number>) : vocabJson));
    const merges = mergesTxt
      .split(/\r?\n/)
      .filter((l, i) => l.trim() && !(i === 0 && l.startsWith('#version')))
      .map((l, i) => {
        const pair = l.split(' ');
        if (pair.length !== 2) throw new Error(`merges.txt: line ${i + 1} is not a pair: ${JSON.stringify(l)}`);
        return pair as [string, string];
      });
    return new ByteLevelBpeTokenizer(vocab, merges, special);
  }

  get vocabSize(): number {
    return this.vocab.size;
  }

  id(token: string): number {
    const id = this.vocab.get(token);
    return id ?? this.vocab.get(this.special.unk)!;
  }

  /** BPE of one pre-token already mapped to byte characters. */
  private bpe(word: string): string[] {
    const hit = this.cache.get(word);
    if (hit) return hit;
    let parts = Array.from(word);
    while (parts.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < parts.length - 1; i++) {
        const r = this.ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const [a, b] = [parts[best], parts[best + 1]];
      const merged: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (i < parts.length - 1 && parts[i] === a && parts[i + 1] === b) {
          merged.push(a + b);
          i++;
        } else merged.push(parts[i]);
      }
      parts = merged;
    }
    if (this.cache.size < 100_000) this.cache.set(word, parts);
    return parts;
  }

  /** Tokens and offsets of plain text (no special tokens inside) starting at `base`. */
  private tokenizeText(text: string, base: number, out: { tokens: string[]; offsets: [number, number][] }) {
    const encoder = new TextEncoder();
    for (const m of text.matchAll(PRETOKENIZE)) {
      const piece = m[0];
      const start = base + m.index!;
      // for each byte of the piece: the [start, end) of the character (UTF-16 indices) it belongs to
      const charStart: number[] = [];
      const charEnd: number[] = [];
      let bytes = '';
      let ci = 0;
      for (const ch of piece) {
        for (const x of encoder.encode(ch)) {
          bytes += BYTE_TO_CHAR[x];
          charStart.push(ci);
          charEnd.push(ci + ch.length);
        }
        ci += ch.length;
      }
      let bi = 0;
      for (const tok of this.bpe(bytes)) {
        const n = Array.from(tok).length;
        // a token holding part of a multi-byte character spans the whole character (as HF does)
        let s = charStart[bi];
        const e = charEnd[bi + n - 1];
        // RoBERTa trims offsets: a leading space belongs to no character span.
        while (s < e && /\s/.test(piece[s])) s++;
        out.tokens.push(tok);
        out.offsets.push([start + s, start + Math.max(s, e)]);
        bi += n;
      }
    }
  }

  /** Tokens and offsets of `text`, recognising special tokens written in it (`<mask>` absorbs a space before it). */
  tokenize(text: string): { tokens: string[]; offsets: [number, number][] } {
    const specials = Object.values(this.special);
    const pattern = new RegExp(specials.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
    const out = { tokens: [] as string[], offsets: [] as [number, number][] };
    let last = 0;
    for (const m of text.matchAll(pattern)) {
      let end = m.index!;
      if (m[0] === this.special.mask) while (end > last && text[end - 1] === ' ') end--;
      this.tokenizeText(text.slice(last, end), last, out);
      out.tokens.push(m[0]);
      out.offsets.push([m.index!, m.index! + m[0].length]);
      last = m.index! + m[0].length;
    }
    this.tokenizeText(text.slice(last), last, out);
    return out;
  }

  encode(text: string, { addSpecialTokens = true, maxLength, padding = false }: EncodeOptions = {}): Encoding {
    if (typeof text !== 'string') throw new TypeError(`tokenizer.encode: expected a string, got ${typeof text}`);
    const { tokens, offsets } = this.tokenize(text);
    const room = maxLength === undefined ? Infinity : maxLength - (addSpecialTokens ? 2 : 0);
    if (room < 0) throw new RangeError(`tokenizer.encode: maxLength ${maxLength} leaves no room for <s> and </s>`);
    const overflow = Math.max(0, tokens.length - room);
    const keep = tokens.slice(0, tokens.length - overflow);
    const keepOffsets = offsets.slice(0, keep.length);
    const allTokens = addSpecialTokens ? [this.special.bos, ...keep, this.special.eos] : keep;
    const allOffsets: [number, number][] = addSpecialTokens ? [[0, 0], ...keepOffsets, [0, 0]] : keepOffsets;
    const enc: Encoding = { tokens: allTokens, ids: allTokens.map((t) => this.id(t)), attentionMask: allTokens.map(() => 1), offsets: allOffsets, overflow };
    if (padding === 'max_length') {
      if (maxLength === undefined) throw new RangeError("tokenizer.encode: padding 'max_length' needs maxLength");
      this.pad(enc, maxLength);
    }
    return enc;
  }

  /** Encodes several texts; 'longest' pads to the longest of the batch. */
  encodeBatch(texts: readonly string[], options: EncodeOptions = {}): Encoding[] {
    const encs = texts.map((t, i) => {
      try {
        return this.encode(t, { ...options, padding: options.padding === 'max_length' ? 'max_length' : false });
      } catch (e) {
        throw new TypeError(`tokenizer.encodeBatch: text ${i}: ${(e as Error).message}`);
      }
    });
    if (options.padding === 'longest') {
      const longest = Math.max(...encs.map((e) => e.ids.length));
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
