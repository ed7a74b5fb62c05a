// The COCO caption tokenisation (pycocoevalcap PTBTokenizer, metrics-spec §2): Stanford CoreNLP
// 3.4.1's PTBTokenizer run with -preserveLines -lowerCase on all captions of one call joined by
// line feeds, then the removal of punctuation tokens. The lexer (./ptb-lexer.ts) re-expresses
// CoreNLP's token rules, so outputs agree with the reference token for token, including where a
// caption's tokens depend on the next caption (an acronym before a line starting with "The").
// One deliberate deviation: the reference wrapper replaces only '\n' inside a caption, so a '\r'
// (or U+2028, U+2029, VT, FF) starts a new output line and shifts every later caption by one; here
// those characters are spaces.
import { show } from '../errors.js';
import { NEWLINE, ptbLex } from './ptb-lexer.js';

/** Tokens the COCO wrapper drops after tokenisation (exact, upper-case bracket names). */
export const PTB_PUNCTUATION: ReadonlySet<string> = new Set([
  "''",
  "'",
  '``',
  '`',
  '-LRB-',
  '-RRB-',
  '-LCB-',
  '-RCB-',
  '.',
  '?',
  '!',
  ',',
  ':',
  '-',
  '--',
  '...',
  ';',
]);

/** Tokens of each caption of one tokenizer call (lower-cased, before the punctuation filter). */
function tokenLines(captions: readonly string[], fn: string): string[][] {
  if (!Array.isArray(captions)) throw new TypeError(`${fn}: expected an array of captions, got ${show(captions)}`);
  captions.forEach((c, i) => {
    if (typeof c !== 'string') throw new TypeError(`${fn}: caption ${i} is not a string (${show(c)})`);
  });
  const text = captions.map((c) => c.replace(/[\n\r\u2028\u2029\u000b\u000c]/g, ' ')).join('\n');
  const lines: string[][] = [[]];
  ptbLex(text, (token) => {
    if (token === NEWLINE) lines.push([]);
    else lines[lines.length - 1].push(lowerCase(token));
  });
  return lines;
}

/**
 * Java's String.toLowerCase. It differs from JS only in when a capital sigma takes the final form:
 * Java looks for a cased letter on either side up to a word boundary of its BreakIterator
 * ("ΣΟΦΟΣ4a" keeps σ), JS only past case-ignorable characters. WORD_CHAR approximates what that
 * BreakIterator keeps inside a word (measured: letters, marks, numbers, connector and dash
 * punctuation, format characters, '.' and "'", but not Han or kana).
 */
function lowerCase(token: string): string {
  if (!token.includes('\u03a3')) return token.toLowerCase();
  let out = '';
  for (let i = 0; i < token.length; i++) {
    const ch = token[i];
    if (ch !== '\u03a3') out += ch.toLowerCase();
    else out += casedWithinWord(token, i, -1) && !casedWithinWord(token, i, 1) ? '\u03c2' : '\u03c3';
  }
  return out;
}
const CASED = /[\p{Lowercase}\p{Uppercase}\p{Lt}]/u;
const WORD_CHAR = /(?![\p{sc=Han}\p{sc=Hiragana}\p{sc=Katakana}])[\p{L}\p{M}\p{N}\p{Pc}\p{Pd}\p{Cf}.']/u;
function casedWithinWord(s: string, i: number, step: 1 | -1): boolean {
  for (let j = i + step; j >= 0 && j < s.length && WORD_CHAR.test(s[j]); j += step) if (CASED.test(s[j])) return true;
  return false;
}

/** Python's str.rstrip(): the wrapper strips each output line before splitting it on spaces. */
const PY_SPACE = /[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/;

/** The tokens the wrapper sees: a line's last token may end in a no-break space (inside a URL). */
function wrapperTokens(tokens: string[]): string[] {
  const last = tokens[tokens.length - 1];
  if (last === undefined || !PY_SPACE.test(last)) return tokens;
  return tokens.join(' ').replace(PY_SPACE, '').split(' ');
}

/**
 * The tokenizer's output lines for one call (`-preserveLines -lowerCase`): one line per caption,
 * tokens joined by one space, punctuation still there.
 */
export function ptbTokenizeLines(captions: readonly string[]): string[] {
  return tokenLines(captions, 'ptbTokenizeLines').map((tokens) => tokens.join(' '));
}

/** The tokenizer's output line for one caption tokenised on its own. */
export function ptbTokenizeLine(caption: string): string {
  if (typeof caption !== 'string')
    throw new TypeError(`ptbTokenizeLine: the caption is not a string (${show(caption)})`);
  return ptbTokenizeLines([caption])[0];
}

/**
 * pycocoevalcap's PTBTokenizer.tokenize on the captions of one call (in call order): tokenise,
 * lower-case, drop the punctuation tokens, join with single spaces. Bracket tokens (-lrb-, ...) are
 * not dropped, as in the reference (it compares against upper-case names after lower-casing).
 */
export function ptbTokenize(captions: readonly string[]): string[] {
  return tokenLines(captions, 'ptbTokenize').map((tokens) => {
    let out = '';
    for (const t of wrapperTokens(tokens)) if (!PTB_PUNCTUATION.has(t)) out = out ? `${out} ${t}` : t;
    return out;
  });
}
