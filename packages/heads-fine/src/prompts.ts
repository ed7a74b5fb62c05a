// The text side of grounding: detection prompts from class names (`create_queries_and_maps`,
// `od_to_grounding`), phrase character spans -> token positive maps (`create_positive_map` with its
// char_to_token fallbacks), MAX_QUERY_LEN padding/truncation that reports what was cut, and token
// scores back to phrases.
import type { ByteLevelBpeTokenizer } from '@fiber-vl/roberta';

/** `MODEL.LANGUAGE_BACKBONE.MAX_QUERY_LEN`: prompts are padded (and truncated) to this many tokens. */
export const MAX_QUERY_LEN = 256;
/** `DATASETS.SEPARATION_TOKENS` of the fine-grained configs. */
export const SEPARATION_TOKENS = '. ';

/**
 * A prompt that cannot be built; `field` names the offending input (e.g. `classNames[2]`,
 * `phrases[0]`), `detail` says what is wrong with it (the message is `${field}: ${detail}`).
 */
export class PromptError extends Error {
  constructor(
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${field}: ${detail}`);
    this.name = 'PromptError';
  }
}

/** `clean_name`: drop "(...)" (greedy), "_" -> " ", then one pass of "  " -> " ". */
export function cleanName(name: string): string {
  return name
    .replace(/\(.*\)/g, '')
    .replace(/_/g, ' ')
    .replace(/ {2}/g, ' ');
}

/** [start, end) character range in a caption. */
export type CharSpan = readonly [number, number];

export interface DetectionPrompt {
  /** The class names (cleaned) joined with the separator, nothing before or after. */
  caption: string;
  /** The cleaned names, in prompt order. */
  names: string[];
  /** Character span of each name in the caption. */
  spans: [number, number][];
}

/**
 * The detection prompt of `create_queries_and_maps` / `convert_od_to_grounding_simple`:
 * "person. bicycle. car" with each class's span covering its cleaned name only.
 */
export function detectionPrompt(
  classNames: readonly string[],
  { separator = SEPARATION_TOKENS, clean = true }: { separator?: string; clean?: boolean } = {},
): DetectionPrompt {
  if (!Array.isArray(classNames))
    throw new PromptError('classNames', `expected a list of class names, got ${typeof classNames}`);
  if (classNames.length === 0) throw new PromptError('classNames', 'the class list is empty');
  let caption = '';
  const names: string[] = [];
  const spans: [number, number][] = [];
  classNames.forEach((raw, i) => {
    if (typeof raw !== 'string') throw new PromptError(`classNames[${i}]`, `expected a string, got ${typeof raw}`);
    const name = clean ? cleanName(raw) : raw;
    if (name.trim() === '')
      throw new PromptError(
        `classNames[${i}]`,
        `the class name ${JSON.stringify(raw)} is empty${clean ? ' after clean_name' : ''}`,
      );
    const start = caption.length;
    caption += name;
    names.push(name);
    spans.push([start, caption.length]);
    if (i !== classNames.length - 1) caption += separator;
  });
  return { caption, names, spans };
}

/** The token whose [start, end) offsets contain character `char`, or undefined (HF `char_to_token`). */
export function charToToken(offsets: readonly (readonly [number, number])[], char: number): number | undefined {
  for (let t = 0; t < offsets.length; t++) if (offsets[t][0] <= char && char < offsets[t][1]) return t;
  return undefined;
}

/**
 * First and last token of a character span, with `create_positive_map`'s fallbacks: the start
 * tries beg, beg + 1, beg + 2 and the end end - 1, end - 2, end - 3 (spaces and trimmed offsets
 * map to no token). Undefined when either side finds none.
 */
export function spanToTokens(
  offsets: readonly (readonly [number, number])[],
  span: CharSpan,
): [number, number] | undefined {
  return spanVia((c) => charToToken(offsets, c), span);
}

function spanVia(tokenAt: (char: number) => number | undefined, [beg, end]: CharSpan): [number, number] | undefined {
  const first = tokenAt(beg) ?? tokenAt(beg + 1) ?? tokenAt(beg + 2);
  const last = tokenAt(end - 1) ?? tokenAt(end - 2) ?? tokenAt(end - 3);
  return first === undefined || last === undefined ? undefined : [first, last];
}

/**
 * `charToToken` for every character of a caption at once (each character's first token), so that
 * a prompt of thousands of class names maps its spans in linear time, not one scan per lookup.
 */
function charTokenIndex(
  offsets: readonly (readonly [number, number])[],
  length: number,
): (char: number) => number | undefined {
  const first = new Int32Array(length).fill(-1);
  offsets.forEach(([s, e], t) => {
    for (let c = Math.max(s, 0); c < Math.min(e, length); c++) if (first[c] < 0) first[c] = t;
  });
  return (c) => (c >= 0 && c < length && first[c] >= 0 ? first[c] : undefined);
}

/** One phrase (a detection class or a grounded phrase) of an encoded prompt. */
export interface PromptPhrase {
  /** The phrase text (the class name, or the caption text of its spans joined with " "). */
  text: string;
  spans: [number, number][];
  /** Token positions of the phrase within the MAX_QUERY_LEN encoding (empty if truncation removed it). */
  tokens: number[];
  /** Its tokens before truncation. */
  fullTokens: number[];
}

export interface TruncationReport {
  truncated: boolean;
  /** Caption tokens cut to fit MAX_QUERY_LEN (specials excluded). */
  droppedTokens: number;
  /** Phrases that lost tokens: index, text, and how many of their tokens were cut. */
  phrases: { index: number; text: string; lostTokens: number; totalTokens: number }[];
  /** A sentence saying the above, or '' when nothing was cut. */
  message: string;
}

/** A caption encoded for the fine-grained model with its phrase <-> token maps. */
export interface GroundingPrompt {
  caption: string;
  /** [maxQueryLen] token ids, <s> ... </s> then <pad>. */
  inputIds: number[];
  /** [maxQueryLen] 1 on real tokens (the text mask of the loss). */
  attentionMask: number[];
  offsets: [number, number][];
  maxQueryLen: number;
  phrases: PromptPhrase[];
  /** `positive_map_label_to_token`: label k + 1 -> tokens of phrase k (the inference map). */
  labelToTokens: number[][];
  /**
   * [P, maxQueryLen] `create_positive_map`: 1 on each phrase's tokens, rows normalised by
   * (sum + 1e-6). The official collator casts it to bool, so the loss sees it as 0/1.
   */
  positiveMap: Float32Array;
  truncation: TruncationReport;
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

function tokensOf(tokenAt: (char: number) => number | undefined, spans: readonly CharSpan[]): number[] {
  const set = new Set<number>();
  for (const span of spans) {
    const hit = spanVia(tokenAt, span);
    if (hit) for (const t of range(hit[0], hit[1])) set.add(t);
  }
  return [...set].sort((a, b) => a - b);
}

/** Phrases the truncation message names one by one; the rest are counted. */
const DESCRIBED_PHRASES = 10;

function describe(kind: string, dropped: number, maxLen: number, lost: TruncationReport['phrases']): string {
  if (dropped === 0) return '';
  const more = lost.length - DESCRIBED_PHRASES;
  const what =
    lost.length === 0
      ? `no ${kind} lost tokens`
      : lost
          .slice(0, DESCRIBED_PHRASES)
          .map(
            (p) =>
              `${kind} ${p.index} ${JSON.stringify(p.text)} lost ` +
              `${p.lostTokens === p.totalTokens ? 'all' : p.lostTokens} of ${p.totalTokens} tokens`,
          )
          .join('; ') +
        (more > 0
          ? `; and ${more} more ${kind === 'class' ? 'classes' : `${kind}s`} (truncation.phrases lists them)`
          : '');
  return `the prompt is longer than MAX_QUERY_LEN ${maxLen}: ${dropped} ${dropped === 1 ? 'token was' : 'tokens were'} cut; ${what}`;
}

export interface EncodePromptOptions {
  maxQueryLen?: number;
  /** Display text of each phrase (defaults to the caption text of its spans). */
  names?: readonly string[];
  /** Word used for the phrases in the truncation message ('phrase' or 'class'). */
  kind?: string;
  /**
   * A phrase whose spans cover no token even before truncation (a span of whitespace, or one
   * whose first or last three characters are, beyond the fallbacks' reach): 'throw' (the
   * default: a PromptError naming it) or 'empty', the official training datasets' behaviour
   * (`create_positive_map` skips the span, leaving its row empty): no tokens, a zero row.
   */
  uncovered?: 'throw' | 'empty';
}

/**
 * Encodes a caption padded to MAX_QUERY_LEN and maps each phrase's character spans (one or more per
 * phrase, `tokens_positive`) to tokens of the truncated encoding, as the official dataset code does
 * (a span whose end was cut falls back to end - 2, end - 3 and is otherwise dropped). The
 * `truncation` report says which phrases lost tokens.
 */
export function encodeGroundingPrompt(
  tokenizer: ByteLevelBpeTokenizer,
  caption: string,
  phrases: readonly (readonly CharSpan[])[],
  { maxQueryLen = MAX_QUERY_LEN, names, kind = 'phrase', uncovered = 'throw' }: EncodePromptOptions = {},
): GroundingPrompt {
  if (uncovered !== 'throw' && uncovered !== 'empty')
    throw new PromptError('uncovered', `expected 'throw' or 'empty', got ${JSON.stringify(uncovered)}`);
  if (typeof caption !== 'string' || caption.trim() === '') throw new PromptError('caption', 'the caption is empty');
  if (!Array.isArray(phrases) || phrases.length === 0) throw new PromptError('phrases', 'no phrases to ground');
  if (!(Number.isInteger(maxQueryLen) && maxQueryLen >= 3))
    throw new PromptError('maxQueryLen', `${maxQueryLen} leaves no room for <s>, a token and </s>`);
  if (names && names.length !== phrases.length)
    throw new PromptError('names', `${names.length} names for ${phrases.length} phrases`);
  phrases.forEach((spans: readonly CharSpan[], i) => {
    if (!Array.isArray(spans) || spans.length === 0)
      throw new PromptError(`phrases[${i}]`, 'the phrase has no character span');
    spans.forEach(([s, e], j) => {
      if (!(Number.isInteger(s) && Number.isInteger(e) && 0 <= s && s < e && e <= caption.length)) {
        throw new PromptError(
          `phrases[${i}][${j}]`,
          `span [${s}, ${e}) is not inside the ${caption.length}-character caption`,
        );
      }
    });
  });
  const full = tokenizer.encode(caption);
  const enc = tokenizer.encode(caption, { maxLength: maxQueryLen, padding: 'max_length' });
  const fullAt = charTokenIndex(full.offsets, caption.length);
  const encAt = charTokenIndex(enc.offsets, caption.length);
  const out: PromptPhrase[] = phrases.map((spans: readonly CharSpan[], i) => {
    const text = names?.[i] ?? spans.map(([s, e]) => caption.slice(s, e)).join(' ');
    const fullTokens = tokensOf(fullAt, spans);
    if (fullTokens.length === 0 && uncovered === 'throw')
      throw new PromptError(`phrases[${i}]`, `${JSON.stringify(text)} covers no token of the caption`);
    return {
      text,
      spans: spans.map(([s, e]) => [s, e] as [number, number]),
      tokens: tokensOf(encAt, spans),
      fullTokens,
    };
  });
  const positiveMap = new Float32Array(out.length * maxQueryLen);
  out.forEach((p, i) => {
    const v = Math.fround(1 / Math.fround(p.tokens.length + 1e-6));
    for (const t of p.tokens) positiveMap[i * maxQueryLen + t] = v;
  });
  const lost = out
    .map((p, index) => ({
      index,
      text: p.text,
      lostTokens: p.fullTokens.length - p.tokens.length,
      totalTokens: p.fullTokens.length,
    }))
    .filter((p) => p.lostTokens > 0);
  // the untruncated encoding counts every caption token; the truncated one keeps maxQueryLen - 2 of them
  const dropped = full.ids.length - enc.attentionMask.reduce((n, m) => n + m, 0);
  return {
    caption,
    inputIds: enc.ids,
    attentionMask: enc.attentionMask,
    offsets: enc.offsets,
    maxQueryLen,
    phrases: out,
    labelToTokens: out.map((p) => [...p.tokens]),
    positiveMap,
    truncation: {
      truncated: enc.truncated,
      droppedTokens: dropped,
      phrases: lost,
      message: describe(kind, dropped, maxQueryLen, lost),
    },
  };
}

/** `detectionPrompt` + `encodeGroundingPrompt`: one phrase per class, label k + 1 = class k. */
export function encodeDetectionPrompt(
  tokenizer: ByteLevelBpeTokenizer,
  classNames: readonly string[],
  options: { maxQueryLen?: number; separator?: string; clean?: boolean } = {},
): GroundingPrompt & { names: string[] } {
  const prompt = detectionPrompt(classNames, options);
  const enc = encodeGroundingPrompt(
    tokenizer,
    prompt.caption,
    prompt.spans.map((s) => [s]),
    { maxQueryLen: options.maxQueryLen, names: prompt.names, kind: 'class' },
  );
  return { ...enc, names: prompt.names };
}

/**
 * Character spans of every occurrence of each phrase in the caption (case-insensitive), for
 * `ground(caption, phrases)`. Occurrences inside longer words count too, as the official demo's
 * `re.finditer` finds them ("cat" in "a scattered rug"): give explicit spans where that matters.
 */
export function findPhraseSpans(caption: string, phrases: readonly string[]): [number, number][][] {
  if (!Array.isArray(phrases) || phrases.length === 0) throw new PromptError('phrases', 'no phrases to ground');
  const { lower, start, end } = lowerWithOffsets(caption);
  return phrases.map((phrase, i) => {
    if (typeof phrase !== 'string' || phrase.trim() === '')
      throw new PromptError(`phrases[${i}]`, 'the phrase is empty');
    const needle = phrase.toLowerCase();
    const spans: [number, number][] = [];
    for (let at = lower.indexOf(needle); at >= 0; at = lower.indexOf(needle, at + needle.length))
      spans.push(start ? [start[at], end[at + needle.length - 1]] : [at, at + needle.length]);
    if (spans.length === 0)
      throw new PromptError(`phrases[${i}]`, `${JSON.stringify(phrase)} does not occur in the caption`);
    return spans;
  });
}

/**
 * The caption in lower case, and, where lowering changes its length ('İ' becomes two code units),
 * each lowered unit's [start, end) in the caption, so that a match is a span of the caption itself.
 */
function lowerWithOffsets(caption: string): { lower: string; start?: number[]; end: number[] } {
  const whole = caption.toLowerCase();
  if (whole.length === caption.length) return { lower: whole, end: [] };
  let lower = '';
  const start: number[] = [];
  const end: number[] = [];
  let at = 0;
  for (const ch of caption) {
    const lc = ch.toLowerCase();
    for (let j = 0; j < lc.length; j++) {
      start.push(at);
      end.push(at + ch.length);
    }
    lower += lc;
    at += ch.length;
  }
  return { lower, start, end };
}

/**
 * Token scores back to phrases: the mean (or max) of `tokenScores` [T] over each phrase's tokens;
 * NaN for a phrase without tokens (truncated away).
 */
export function phraseScores(
  tokenScores: ArrayLike<number>,
  labelToTokens: readonly (readonly number[])[],
  aggregation: 'mean' | 'max' = 'mean',
): Float32Array {
  return Float32Array.from(labelToTokens, (tokens, k) => {
    if (tokens.length === 0) return NaN;
    let acc = aggregation === 'max' ? -Infinity : 0;
    for (const t of tokens) {
      if (!(t >= 0 && t < tokenScores.length))
        throw new RangeError(
          `phraseScores: phrase ${k} points at token ${t}, outside the ${tokenScores.length} scores`,
        );
      acc = aggregation === 'max' ? Math.max(acc, tokenScores[t]) : acc + tokenScores[t];
    }
    return aggregation === 'max' ? acc : acc / tokens.length;
  });
}
