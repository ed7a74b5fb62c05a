// The COCO caption tokenisation (pycocoevalcap PTBTokenizer): Stanford CoreNLP 3.4.1
// PTBTokenizer with -preserveLines -lowerCase, then the removal of punctuation tokens
// (metrics-spec §2). A rule-based re-implementation of the tokenizer's behaviour on caption-like
// text, checked against outputs of the real tokenizer; it does not cover every exotic input
// CoreNLP handles. One deliberate deviation: a `\r` inside a caption is treated as a space (the
// reference wrapper lets it shift every later caption by one line).

/** Tokens the COCO wrapper drops after tokenisation (exact, upper-case bracket names). */
export const PTB_PUNCTUATION = new Set(["''", "'", '``', '`', '-LRB-', '-RRB-', '-LCB-', '-RCB-', '.', '?', '!', ',', ':', '-', '--', '...', ';']);

const BRACKETS: Record<string, string> = { '(': '-LRB-', ')': '-RRB-', '[': '-LSB-', ']': '-RSB-', '{': '-LCB-', '}': '-RCB-' };
const CURRENCY: Record<string, string> = { $: '$', '€': '$', '£': '#', '¥': '$' };
const FRACTIONS: Record<string, string> = { '½': '1/2', '¼': '1/4', '¾': '3/4', '⅓': '1/3', '⅔': '2/3', '⅛': '1/8', '⅜': '3/8', '⅝': '5/8', '⅞': '7/8' };
/** Words CoreNLP splits in two. */
const SPLIT_WORDS: Record<string, [number, number]> = { cannot: [3, 3], gonna: [3, 2], gotta: [3, 2], wanna: [3, 2], lemme: [3, 2], gimme: [3, 2] };
/** Abbreviations that keep their period (besides letter.letter. acronyms). */
const ABBREVIATIONS = new Set(
  ('mr mrs ms dr prof sr jr st ave blvd rd mt ft etc inc ltd co corp vs jan feb mar apr jun jul aug sep sept oct nov dec ' +
    'gen col capt lt sgt rev gov sen rep hon pres messrs mme mlle esq vol fig dept univ assn bros approx')
    .split(' '),
);
const CLITIC = /^(.*?[A-Za-z\p{L}])(n't|'s|'m|'re|'ve|'ll|'d)$/iu;

// Patterns tried in order at each position of a whitespace-delimited chunk (sticky).
const P = {
  url: /(?:https?:\/\/|www\.)[^\s]*?(?=[.,!?;:]*$)/uy,
  email: /[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+/uy,
  tag: /<\/?[A-Za-z][A-Za-z0-9]*\s*\/?>/y,
  smiley: /[<>]?[:;=][-o*']?[()DPdpO\\{@|[\]](?![\p{L}\p{N}])/uy,
  ellipsis: /\.{3,}|…/y,
  dashes: /-{2,}|[—–]/y,
  bangs: /[!?]+/y,
  acronym: /\p{L}(?:\.\p{L})+\.?/uy,
  signedNumber: /[-+]\p{N}+(?:[.,:/]\p{N}+)*/uy,
  word: /[\p{L}\p{N}]+(?:(?:[-/&_@]|[.,:](?=\p{N})|['’](?=\p{L}))[\p{L}\p{N}]+)*/uy,
};

function at(re: RegExp, s: string, pos: number): string | undefined {
  re.lastIndex = pos;
  const m = re.exec(s);
  return m?.[0] || undefined;
}

/** Tokenises one whitespace-free chunk; `out` receives PTB tokens (not yet lower-cased). */
function tokenizeChunk(s: string, out: string[]): void {
  let pos = 0;
  const opening = () => pos === 0 || /[([{"“‘`]/.test(s[pos - 1]);
  while (pos < s.length) {
    const c = s[pos];
    let m: string | undefined;
    if ((m = at(P.url, s, pos)) || (m = at(P.email, s, pos)) || (m = at(P.tag, s, pos))) {
      out.push(m);
    } else if ((pos === 0 || !/[\p{L}\p{N}]/u.test(s[pos - 1])) && (m = at(P.smiley, s, pos))) {
      out.push(m.replace(/[()[\]{}]/g, (b) => BRACKETS[b]));
    } else if ((m = at(P.ellipsis, s, pos))) {
      out.push('...');
    } else if ((m = at(P.dashes, s, pos))) {
      out.push('--');
    } else if ((m = at(P.bangs, s, pos))) {
      out.push(m);
    } else if ((m = at(P.acronym, s, pos))) {
      out.push(m);
    } else if (pos === 0 && (m = at(P.signedNumber, s, pos))) {
      out.push(m);
    } else if ((m = at(P.word, s, pos))) {
      const word = m.replace(/’/g, "'");
      let next = pos + m.length;
      const withPeriod = s[next] === '.' && s[next + 1] !== '.' && ABBREVIATIONS.has(word.toLowerCase());
      if (withPeriod) next++;
      pushWord(word + (withPeriod ? '.' : ''), out);
      pos = next;
      continue;
    } else if (c === "'" || c === '’') {
      const rest = s.slice(pos);
      const special = /^['’](n['’])(?![\p{L}])/u.exec(rest) ?? /^['’](t)(?=(?:is|was)(?![\p{L}]))/iu.exec(rest);
      if (special) {
        out.push(`'${special[1].replace('’', "'")}`);
        m = `'${special[1]}`;
      } else {
        out.push(opening() && c === "'" ? '`' : c === '’' ? "'" : opening() ? '`' : "'");
      }
    } else if (c === '‘') {
      out.push('`');
    } else if (c === '"') {
      out.push(opening() ? '``' : "''");
    } else if (c === '“') {
      out.push('``');
    } else if (c === '”') {
      out.push("''");
    } else if (c in BRACKETS) {
      out.push(BRACKETS[c]);
    } else if (c in CURRENCY) {
      out.push(CURRENCY[c]);
    } else if (c in FRACTIONS) {
      out.push(FRACTIONS[c]);
    } else {
      out.push(c);
    }
    pos += (m ?? c).length;
  }
}

function pushWord(word: string, out: string[]): void {
  const lower = word.toLowerCase();
  const split = SPLIT_WORDS[lower];
  if (split) {
    out.push(word.slice(0, split[0]), word.slice(split[0]));
    return;
  }
  if (lower === "y'all") {
    out.push(word.slice(0, 2), word.slice(2));
    return;
  }
  const clitic = CLITIC.exec(word);
  if (clitic) {
    out.push(clitic[1], clitic[2]);
    return;
  }
  out.push(word);
}

/** The tokenizer's output line for one caption (`-preserveLines -lowerCase`), tokens joined by one space. */
export function ptbTokenizeLine(caption: string): string {
  const text = caption
    .replace(/[\r\n]/g, ' ')
    .replace(/&amp;/gi, '&')
    .replace(/(^|\s)\.(?:\s+\.){2,}(?=\s|$)/g, '$1...');
  const tokens: string[] = [];
  for (const chunk of text.split(/[\s\u00a0\u3000]+/u)) if (chunk) tokenizeChunk(chunk, tokens);
  return tokens.map((t) => t.toLowerCase()).join(' ');
}

/**
 * pycocoevalcap's PTBTokenizer.tokenize on a list of captions: tokenise, lower-case, drop the
 * punctuation tokens, join with single spaces. Bracket tokens (-lrb-, ...) are not dropped, as in
 * the reference (it compares against upper-case names after lower-casing).
 */
export function ptbTokenize(captions: readonly string[]): string[] {
  return captions.map((c) =>
    ptbTokenizeLine(c)
      .split(' ')
      .filter((t) => t && !PTB_PUNCTUATION.has(t))
      .join(' '),
  );
}
