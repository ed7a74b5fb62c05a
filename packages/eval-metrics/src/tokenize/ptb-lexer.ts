// The token rules of Stanford CoreNLP 3.4.1's PTBLexer, in the configuration pycocoevalcap runs
// (default PTB3 normalisations + tokenizeNLs), re-expressed as a longest-match scanner over
// JS regular expressions. Semantics follow the JFlex lexer it was generated from:
// - at each position every rule is tried; the longest match wins, ties go to the earlier rule;
// - a rule `r1/r2` (trailing context) competes with the length of r1 r2 but emits r1 only;
// - literal text is case-insensitive (%caseless) while character classes are not, so `[A]bout`
//   below only matches an upper-case A followed by any-case "bout";
// - input is read in UTF-16 code units (a surrogate is never a letter and is dropped);
// - rules that push characters back (`cannot` -> `can`, then `not`) resume scanning inside the match.
// Character classes come from ./ptb-unicode.ts (measured on the reference, frozen at its Unicode
// version). Regular expressions here never use the `u` flag, so that they see code units too.
import { PTB_DIGIT, PTB_LETTER, PTB_PLAIN_LETTER, PTB_UPPER } from './ptb-unicode.js';

/** The token that marks a line break in the output (CoreNLP's `*NL*`). */
export const NEWLINE = '\n';

/** A regex class body for the ranges of a ./ptb-unicode.ts table. */
function classBody(table: string): string {
  let prev = 0;
  let out = '';
  for (const item of table.split(' ')) {
    const [gap, len = '0'] = item.split('-');
    const a = prev + parseInt(gap, 16);
    const b = a + parseInt(len, 16);
    out += b > a ? `${u(a)}-${u(b)}` : u(a);
    prev = b;
  }
  return out;
}
const u = (c: number) => `\\u${c.toString(16).padStart(4, '0')}`;

/** A literal matched case-insensitively (JFlex %caseless), with regex metacharacters escaped. */
function ci(literal: string): string {
  let out = '';
  for (const ch of literal) {
    const lo = ch.toLowerCase();
    const up = ch.toUpperCase();
    const cased = lo !== up && lo.length === 1 && up.length === 1;
    out += cased ? `[${lo}${up}]` : ch.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  }
  return out;
}
/** Case-insensitive alternation of literals, longest first (a regex alternation prefers the first that fits). */
const ciAlt = (words: string) =>
  `(?:${words
    .split('|')
    .sort((a, b) => b.length - a.length)
    .map(ci)
    .join('|')})`;

// ---- character classes (bodies, without brackets)
const LETTER_ONLY = classBody(PTB_LETTER); // letters of the word rules ...
const EXTRA_LETTER = '\\u00ad'; // ... which also take the soft hyphen (removed from the token later)
const PLAIN = classBody(PTB_PLAIN_LETTER);
const DIG = classBody(PTB_DIGIT);
const UPPER = classBody(PTB_UPPER);
const SPACE_C = ' \\t\\u00a0\\u2000-\\u200a\\u3000';
const NL_C = '\\r\\n\\u2028\\u2029\\u000b\\u000c\\u0085';

// ---- building blocks (regex source)
const SPACE = `[${SPACE_C}]`;
const SPACENL = `[${SPACE_C}${NL_C}]`;
const DIGIT = `[${DIG}]`;
/** An HTML entity for an accented vowel (&eacute;) counts as a letter. */
const ENTITY_LETTER = `&[aeiouAEIOU]${ciAlt('acute|grave|uml')};`;
const LETTER = `(?:[${LETTER_ONLY}${EXTRA_LETTER}]|${ENTITY_LETTER})`;
const LETTER_DIGIT = `(?:[${LETTER_ONLY}${EXTRA_LETTER}${DIG}]|${ENTITY_LETTER})`;
const PL = `[${PLAIN}]`;
const PLD = `[${PLAIN}${DIG}]`;
const SGML =
  `<(?:[!?][A-Za-z-][^>\\r\\n]*|[A-Za-z][A-Za-z0-9_:.-]*(?: +(?:[A-Za-z][A-Za-z0-9_:.-]* *= *(?:'[^']*'|"[^"]*")` +
  `|[A-Za-z][A-Za-z0-9_:.-]*))* *\\/?|\\/[A-Za-z][A-Za-z0-9_:.-]*) *>`;
const APOS = `(?:['\\u0092\\u2019]|${ci('&apos;')})`;
const APOS_ANY = `(?:${APOS}|[\`\\u0091\\u2018\\u201b])`; // also the marks that appear inside words
const HYPHEN = '[-_\\u058a\\u2010\\u2011]';
const WORD = `${LETTER}${LETTER_DIGIT}*(?:[.!?]${LETTER}${LETTER_DIGIT}*)*`;
/** A word before a clitic 'n't' (it cannot end in n: "do|n't", "ca|n't"). */
const WORD_BEFORE_NT = '[A-Za-z\\u00ad]*[A-MO-Za-mo-z]\\u00ad*';
const CLITIC = `${APOS}(?:[msdMSD]|${ciAlt('re|ve|ll')})`;
const CLITIC_NT = `[nN]${APOS_ANY}[tT]`;
const NUM = `(?:${DIGIT}*(?:[.:,\\u00ad\\u066b\\u066c]${DIGIT}+)+|${DIGIT}+)`;
/** Hyphenated words; a part may start with an elided d'/o'/l' ("o'clock", "d'artagnan"). */
const ELIDED = `(?:[dDoOlL]${APOS_ANY}${PLD})?`;
const HYPHENATED = `${ELIDED}${PLD}+(?:${HYPHEN}${ELIDED}${PLD}+)*`;
const CAPS_AMP = `[A-Z]+(?:(?:${ci('&amp;')}|[+&])[A-Z]+)+`;
const SINGLE_LETTER_ACRONYM = '[A-Za-z](?:\\.[A-Za-z])*';
const ACRONYM_ALTS = [
  SINGLE_LETTER_ACRONYM,
  `${ciAlt('Canada|Sino|Korean|EU|Japan|non')}-${ci('U.S')}`,
  `${ci('U.S.-')}(?:${ci('U.S.S.R')}|${ci('U.K')})`,
];
const ACRONYM2 = `(?:[A-Za-z](?:\\.[A-Za-z])+|${ACRONYM_ALTS[1]}|${ACRONYM_ALTS[2]})`;
const NUMBER_HYPHENATED = `[A-Za-z0-9][A-Za-z0-9.,\\u00ad]*(?:-(?:${ACRONYM2}\\.|[A-Za-z0-9\\u00ad]+))+`;

// Abbreviations (literal, case-insensitive; a bracketed first letter is case-sensitive).
const MONTHS = 'Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec';
const DAYS = 'Mon|Tue|Tues|Wed|Thu|Thurs|Fri';
const STATES =
  'Ala|Ariz|[A]z|[A]rk|Calif|Colo|Conn|Ct|Dak|[D]el|Fla|Ga|[I]ll|Ind|Kan|Kans|Ky|[L]a|[M]ass|Md|Mich|Minn|[M]iss|Mo|' +
  'Mont|Neb|Nev|Okla|[O]re|[P]a|Penn|Tenn|[T]ex|Va|Vt|[W]ash|Wis|Wisc|Wyo';
const COMPANIES =
  'Inc|Co|Cos|Corp|Pt[y]|Pt[e]|Pt[y]s|Pt[e]s|Ppt[y]|Ppt[e]|Ppt[y]s|Ppt[e]s|Ltd|Plc|Rt|Bancorp|Bhd|Assn|Univ|Intl|Sys';
const BEFORE_NUMBER = 'tel|est|ext|sq';
const PERSON_SUFFIX = 'Jr|Sr|Bros|Ed.D|Ph.D|Blvd|Rd|Esq';
/** Normally followed by lower-case words: a following upper-case word means a sentence ends here. */
const ABBREV1 = words(`${MONTHS}|${DAYS}|${STATES}|${COMPANIES}|${BEFORE_NUMBER}|${PERSON_SUFFIX}|etc|al|seq|Bldg`);
const TITLES =
  'Mr|Mrs|Ms|[M]iss|Dr|Drs|Prof|Profs|Sen|Sens|Rep|Reps|Atty|Attys|Lt|Col|Gen|Messrs|Gov|Govs|Adm|Rev|Maj|Sgt|Cpl|' +
  'Pvt|Capt|St|Ste|Ave|Pres|Lieut|Hon|Brig|Cmdr|Comdr|Pfc|Spc|Supt|Supts|Det|Mt|Ft|Adj|Adv|Asst|Assoc|Ens|Insp|' +
  'Mlle|Mme|Msgr|Sfc';
/** Normally followed by an upper-case word (titles, acronyms): never taken as sentence-final. */
const ABBREV4_WORDS = words(`${TITLES}|vs|Alex|Wm|Jos|Cie|a.k.a|cf|TREAS|Ph|Invt|Elec|Natl|M[f]g|M[t]g|Dept`);
const ABBREV4_ALTS = [ABBREV4_WORDS, ...ACRONYM_ALTS];
/** Only before a number ("ca. 1900", "fig. 3"). */
const ABBREV3 = `${words('ca|fig|figs|prop|no|nos|art|bldg|pp|op')}\\.`;
/** After an acronym, these words (case-sensitive first letter) mean the acronym ended a sentence. */
const SENTENCE_STARTS = words(
  '[A]bout|[A]ccording|[A]dditionally|[A]fter|[A]n|[A]|[A]s|[A]t|[B]ut|[E]arlier|[H]e|[H]er|[H]ere|[H]owever|[I]f|' +
    '[I]n|[I]t|[L]ast|[M]any|[M]ore|[M]r.|[M]s.|[N]ow|[O]nce|[O]ne|[O]ther|[O]ur|[S]he|[S]ince|[S]o|[S]ome|[S]uch|' +
    '[T]hat|[T]he|[T]heir|[T]hen|[T]here|[T]hese|[T]hey|[T]his|[W]e|[W]hen|[W]hile|[W]hat|[Y]et|[Y]ou',
);

/** Alternation of `|`-separated words: literal letters case-insensitive, `[X]` case-sensitive, longest first. */
function words(list: string): string {
  const alts = list.split('|').sort((a, b) => b.replace(/[[\]]/g, '').length - a.replace(/[[\]]/g, '').length);
  const word = (w: string) =>
    w
      .split(/(\[[^\]]+\])/)
      .map((part) => (part.startsWith('[') ? part : ci(part)))
      .join('');
  return `(?:${alts.map(word).join('|')})`;
}

const FILE_EXTENSIONS =
  'bat|bmp|c|class|cgi|cpp|dll|doc|docx|exe|gif|gz|h|htm|html|jar|java|jpeg|jpg|mov|mp3|pdf|php|pl|png|ppt|ps|py|sql|' +
  'tar|txt|wav|x|xml|zip';
const URL_PATH = '(?:\\/[^ \\t\\n\\f\\r"<>|()]+[^ \\t\\n\\f\\r"<>|.!?(){},-])?';
const EMAIL =
  `(?:${ci('&lt;')}|<)?[a-zA-Z0-9][^ \\t\\n\\f\\r"<>|()\\u00a0{}]*@(?:[^ \\t\\n\\f\\r"<>|(){}.\\u00a0]+\\.)*` +
  `[^ \\t\\n\\f\\r"<>|(){}.\\u00a0]+(?:${ci('&gt;')}|>)?`;
const PHONE_ALTS = [
  '(?:\\([0-9]{2,3}\\)[ \\u00a0]?|(?:\\+\\+?)?(?:[0-9]{2,4}[- \\u00a0])?[0-9]{2,4}[- \\u00a0])' +
    '[0-9]{3,4}[- \\u00a0]?[0-9]{3,5}',
  '(?:(?:\\+\\+?)?[0-9]{2,4}\\.)?[0-9]{2,4}\\.[0-9]{3,4}\\.[0-9]{3,5}',
];
const QUOTE_CHARS =
  '[`\\u2018\\u2019\\u201a\\u201b\\u201c\\u201d\\u0091\\u0092\\u0093\\u0094\\u201e\\u201f\\u2039\\u203a\\u00ab\\u00bb]';
const DOUBLE_QUOTE = `(?:"|${ci('&quot;')})`;
const SMILEY = `[<>]?[:;=][-o*']?[()DPdpO\\\\{@|[\\]]`;
const ASIAN_SMILEY_ALTS = [
  `[\\^x=~<>]\\.\\[\\^${ci('x')}=~<>\\]`, // sic: a literal "[^x=~<>]" in the reference, so "^.^" is not one
  "[-^x=~<>']_[-^x=~<>']",
  "\\([-^x=~<>'][_.]?[-^x=~<>']\\)",
  "\\([\\^x=~<>']-[\\^x=~<>'`]\\)",
];
const MISC_SYMBOL =
  '[+%&~^|\\\\\\u00a6\\u00a7\\u00a8\\u00a9\\u00ac\\u00ae\\u00af\\u00b0-\\u00ba\\u00d7\\u00f7\\u0387\\u05be' +
  '\\u05c0\\u05c3\\u05c6\\u05f3\\u05f4\\u0600-\\u0603\\u0606-\\u060a\\u060c\\u0614\\u061b\\u061e\\u066a' +
  '\\u066d\\u0703-\\u070d\\u07f6-\\u07f8\\u0964\\u0965\\u0e4f\\u1fbd\\u2016\\u2017\\u2020-\\u2023' +
  '\\u2030-\\u2038\\u203b\\u203e-\\u2042\\u2044\\u207a-\\u207f\\u208a-\\u208e\\u2100-\\u214f\\u2190-\\u21ff' +
  '\\u2200-\\u2bff\\u3012\\u30fb\\uff01-\\uff0f\\uff1a-\\uff20\\uff3b-\\uff40\\uff5b-\\uff65]';

// ---- token normalisations (PTB3 escaping as the reference configures it)
const PARENS: Record<string, string> = { '(': '-LRB-', ')': '-RRB-' };
const FRACTIONS: Record<string, string> = {
  '\u00bc': '1/4',
  '\u00bd': '1/2',
  '\u00be': '3/4',
  '\u2153': '1/3',
  '\u2154': '2/3',
};
const nbsp = (s: string) => s.replace(/ /g, '\u00a0');
const parens = (s: string) => s.replace(/[()]/g, (p) => PARENS[p]);
const amp = (s: string) => s.replace(/&amp;/gi, '&');
function noSoftHyphens(s: string): string {
  if (!s.includes('\u00ad')) return s;
  return s.replace(/\u00ad/g, '') || '-';
}
/** LaTeX-style quotes: `` and '' for double, ` and ' for single; straight quotes by their guessed side. */
function quotes(s: string, left: boolean): string {
  return s
    .replace(/&apos;|'/g, left ? '`' : "'")
    .replace(/"|&quot;/g, left ? '``' : "''")
    .replace(/[\u0091\u2018\u201b\u2039]/g, '`')
    .replace(/[\u0092\u2019\u203a]/g, "'")
    .replace(/[\u0093\u201c\u00ab]/g, '``')
    .replace(/[\u0094\u201d\u00bb]/g, "''");
}
function currency(s: string): string {
  return s
    .replace(/\u00a2/g, 'cents')
    .replace(/\u00a3/g, '#')
    .replace(/[\u0080\u00a4\u20a0\u20ac]/g, '$');
}

/**
 * What a rule does with its text: the token to emit (null: none), or the token and how many
 * characters of the match the scanner reads again.
 */
type Action = (text: string) => string | null | [token: string, pushback: number];

const keep: Action = (t) => t;
const skip: Action = () => null;
/** Splits off the last `n` characters, which are scanned again ("cannot" -> "can" + "not"). */
const splitLast =
  (n: number): Action =>
  (t) => [t.slice(0, t.length - n), n];
/** The token with its final period, then that period scanned again (a sentence-final "."). */
const repeatPeriod: Action = (t) => [t, 1];

interface Rule {
  /** Sticky regexes of r1 r2, one per alternative of r1 (the rule matches the longest, as the DFA does). */
  res: RegExp[];
  /** With trailing context: sticky `r1(?=r2)` per alternative, to find the token's end. */
  heads?: RegExp[];
  /** A superset of the characters a match can start with (a one-character class); undefined: any. */
  first?: RegExp;
  act: Action;
}

/** A rule r1 or r1/ctx that can only match from a character of `first`. */
function rule(first: string | undefined, alts: string | string[], act: Action, ctx?: string): Rule {
  const list = Array.isArray(alts) ? alts : [alts];
  const firstRe = first === undefined ? undefined : new RegExp(`[${first}]`);
  if (ctx === undefined) return { res: list.map((a) => new RegExp(a, 'y')), first: firstRe, act };
  return {
    res: list.map((a) => new RegExp(`(?:${a})(?:${ctx})`, 'y')),
    heads: list.map((a) => new RegExp(`(?:${a})(?=${ctx})`, 'y')),
    first: firstRe,
    act,
  };
}

// First characters of the main building blocks (for `first`).
const F_LETTER = `${LETTER_ONLY}${EXTRA_LETTER}&`;
const F_APOS = "'\\u0092\\u2019&";
const F_ASCII = 'A-Za-z';

/** The rules in the reference's order (ties between equally long matches go to the earlier one). */
const RULES: Rule[] = [
  rule('cC', `${ci('c')}\\+\\+`, keep),
  rule('cCfF', `[cCfF]#`, keep),
  rule('cC', ci('cannot'), splitLast(3)),
  rule("'", ci("'twas"), splitLast(3)),
  rule("'", ci("'tis"), splitLast(2)),
  rule('gGlLwW', ciAlt('gonna|gotta|lemme|gimme|wanna'), splitLast(2)),
  rule('<', SGML, (t) => nbsp(t)),
  rule(
    '&\\u0096\\u0097\\u2013\\u2014\\u2015',
    [`&${ciAlt('MD|mdash|ndash')};`, '[\\u0096\\u0097\\u2013\\u2014\\u2015]'],
    () => '--',
  ),
  rule('&', ci('&amp;'), amp),
  rule('&', `&(?:${ciAlt('HT|TL|UR|LR|QC|QL|QR|odq|cdq')}|#[0-9]+);`, keep),
  rule(F_LETTER, WORD, noSoftHyphens, CLITIC),
  rule(`${F_ASCII}\\u00ad`, WORD_BEFORE_NT, noSoftHyphens, CLITIC_NT),
  rule(F_LETTER, WORD, noSoftHyphens),
  // Words with an apostrophe inside that stay whole ("o'clock", "rock 'n' roll", "'90s").
  rule(
    `${PLAIN}${F_APOS}`,
    [
      `${APOS}[nN]${APOS}?`,
      `[lLdDjJ]${APOS}`,
      `${ciAlt('Dunkin|somethin|ol')}${APOS}`,
      `${APOS}${ci('em')}`,
      `[A-HJ-XZn]${APOS_ANY}${PL}{2,}`,
      `${APOS}[2-9]0${ci('s')}`,
      `${APOS}${ci('til')}[lL]?`,
      `${PL}+[aeiouyAEIOUY]${APOS_ANY}[aeiouA-Z]${PL}*`,
      `${APOS}${ci('cause')}`,
      `${ci("cont'd")}\\.?`,
      ciAlt("'twas|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l"),
      `${ci('O')}${APOS_ANY}${ci('o')}`,
    ],
    keep,
  ),
  rule('yY', `[yY]${APOS}`, keep, PL),
  rule('hH', `${ci('http')}[sS]?:\\/\\/[^ \\t\\n\\f\\r"<>|(){}]+[^ \\t\\n\\f\\r"<>|.!?(){},-]`, keep),
  rule(
    undefined,
    [
      `${ci('www.')}(?:[^ \\t\\n\\f\\r"<>|.!?(){},]+\\.)+[a-zA-Z]{2,4}${URL_PATH}`,
      `(?:[^ \\t\\n\\f\\r"\`'<>|.!?(){},-_$]+\\.)+${ciAlt('com|net|org|edu')}${URL_PATH}`,
    ],
    keep,
  ),
  rule('&<a-zA-Z0-9', EMAIL, keep),
  rule(`@#`, ['@[a-zA-Z_][a-zA-Z_0-9]*', `#${LETTER}+`], keep),
  rule(F_APOS, CLITIC, (t) => quotes(t, false), '[^A-Za-z]'),
  rule('nN', CLITIC_NT, (t) => quotes(t, false), '[^A-Za-z]'),
  rule(DIG, `${DIGIT}{1,2}[-\\/]${DIGIT}{1,2}[-\\/]${DIGIT}{2,4}`, keep),
  rule(`-+.:,\\u00ad\\u066b\\u066c${DIG}`, `[-+]?${NUM}`, noSoftHyphens),
  rule(
    '\\u207a\\u207b\\u208a\\u208b\\u2070\\u00b9\\u00b2\\u00b3\\u2074-\\u2079\\u2080-\\u2089',
    '[\\u207a\\u207b\\u208a\\u208b]?(?:[\\u2070\\u00b9\\u00b2\\u00b3\\u2074-\\u2079]+|[\\u2080-\\u2089]+)',
    keep,
  ),
  rule(DIG, `(?:${DIGIT}{1,4}[- \\u00a0])?${DIGIT}{1,4}(?:\\\\?\\/|\\u2044)${DIGIT}{1,4}`, (t) => nbsp(t)),
  rule('\\u00bc\\u00bd\\u00be\\u2153-\\u215e', '[\\u00bc\\u00bd\\u00be\\u2153-\\u215e]', (t) => FRACTIONS[t] ?? t),
  rule(
    '-cCpPaAsS',
    [
      `-${ciAlt('RRB|LRB|RCB|LCB|RSB|LSB')}-`,
      ciAlt('C.D.s|pro-|anti-'),
      `${ci('S')}(?:${ci('&amp;')}|&)(?:${ci('P-500')}|${ci('Ls')})`,
      `${ci('Cap')}${APOS}${ci('n')}`,
      `${ci('c')}${APOS}${ci('est')}`,
    ],
    amp,
  ),
  rule('A-Za-z0-9', '[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\\\?\\/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}', keep),
  rule('A-Z$#', ['[A-Z]*\\$', '#'], keep),
  rule(
    '\\u00a2-\\u00a5\\u0080\\u20a0\\u20ac\\u060b\\u0e3f\\u20a4\\uffe0\\uffe1\\uffe5\\uffe6',
    '[\\u00a2\\u00a3\\u00a4\\u00a5\\u0080\\u20a0\\u20ac\\u060b\\u0e3f\\u20a4\\uffe0\\uffe1\\uffe5\\uffe6]',
    currency,
  ),
  // An acronym before a word that usually starts a sentence ends the sentence: "U.S. The" -> "U.S." "." "The";
  // a one-letter one gives its letter then the period ("I. The" -> "I" ".").
  rule(
    F_ASCII,
    ACRONYM_ALTS.map((a) => `${a}\\.`),
    (t) => (t.length === 2 ? splitLast(1)(t) : repeatPeriod(t)),
    `${SPACENL}+(?:${SENTENCE_STARTS}|${SGML})${SPACENL}`,
  ),
  rule(F_ASCII, ABBREV3, keep, `${SPACENL}?${DIGIT}`),
  rule('pPcC', `(?:${ci('pt')}[eyEY]|${ci('co')})\\.`, keep, `${SPACE}${ciAlt('ltd|lim')}`),
  rule(F_ASCII, `${ABBREV1}\\.`, repeatPeriod, `${SPACENL}(?:${SPACENL}|[${UPPER}]|${SGML})`),
  rule(F_ASCII, `${ABBREV1}\\.`, keep, '[^][^]'),
  // Only at the end of the input (the rule above takes any two characters):
  rule(F_ASCII, `${ABBREV1}\\.`, repeatPeriod),
  rule(
    F_ASCII,
    ABBREV4_ALTS.map((a) => `${a}\\.`),
    keep,
  ),
  rule(F_ASCII, ABBREV4_ALTS, keep, SPACE),
  rule(F_ASCII, ACRONYM_ALTS, keep, SPACENL),
  rule(F_APOS, `${APOS}[0-9][0-9]`, keep, SPACENL),
  rule(
    `${F_LETTER}${DIG}`,
    `${LETTER_DIGIT}+(?:\\.${LETTER_DIGIT}+)*\\.${ciAlt(FILE_EXTENSIONS)}`,
    keep,
    `${SPACENL}|[.?!,]`,
  ),
  rule(F_LETTER, `${WORD}\\.`, noSoftHyphens, '[,;:\\u3001]'),
  rule('(+0-9', PHONE_ALTS, (t) => parens(nbsp(t))),
  rule('"&', DOUBLE_QUOTE, (t) => quotes(t, true), '[A-Za-z0-9$]'),
  rule('"&', DOUBLE_QUOTE, (t) => quotes(t, false)),
  rule('\\x7f', '\\x7f', skip),
  rule('<&', `<|${ci('&lt;')}`, () => '<'),
  rule('>&', `>|${ci('&gt;')}`, () => '>'),
  rule('<>:;=', SMILEY, parens, '[^A-Za-z0-9]'),
  rule("\\^x=~<>'(-", ASIAN_SMILEY_ALTS, parens),
  rule('{', '\\{', () => '-LCB-'),
  rule('}', '\\}', () => '-RCB-'),
  rule('\\[', '\\[', () => '-LSB-'),
  rule('\\]', '\\]', () => '-RSB-'),
  rule('(', '\\(', () => '-LRB-'),
  rule(')', '\\)', () => '-RRB-'),
  rule('-', '-+', (t) => (t.length === 3 || t.length === 4 ? '--' : t)),
  rule('.\\u0085\\u2026', ['\\.{3,5}', '(?:\\.[ \\u00a0]){2,4}\\.', '[\\u0085\\u2026]'], () => '...'),
  rule('@#_', ['@+', '#+', '_+'], keep),
  rule('*\\\\', ['\\*+', '(?:\\\\\\*){1,3}'], keep),
  rule(',;:\\u3001', '[,;:\\u3001]', keep),
  rule('?!', '[?!]+', keep),
  rule(
    '.\\u00a1\\u00bf\\u037e\\u0589\\u061f\\u06d4\\u0700-\\u0702\\u07fa\\u3002',
    '[.\\u00a1\\u00bf\\u037e\\u0589\\u061f\\u06d4\\u0700-\\u0702\\u07fa\\u3002]',
    keep,
  ),
  rule('=', '=', keep),
  rule('/', '\\/', keep),
  rule('A-Za-z0-9', `${NUMBER_HYPHENATED}\\.`, noSoftHyphens, '[,;:\\u3001]'),
  rule('A-Za-z0-9', NUMBER_HYPHENATED, noSoftHyphens),
  rule(`${PLAIN}${DIG}`, `${HYPHENATED}\\.`, keep, '[,;:\\u3001]'),
  rule(`${PLAIN}${DIG}`, HYPHENATED, keep),
  rule('A-Z', `${CAPS_AMP}\\.`, amp, '[,;:\\u3001]'),
  rule('A-Z', CAPS_AMP, amp),
  rule("'", "'", (t) => quotes(t, true), '[A-Za-z][^ \\t\\n\\r\\u00a0]'),
  rule(F_APOS, CLITIC, (t) => quotes(t, false)),
  rule('nN', CLITIC_NT, (t) => quotes(t, false)),
  rule(`${F_APOS}${QUOTE_CHARS.slice(1, -1)}`, [APOS, "''", `${QUOTE_CHARS}{1,2}`], (t) => quotes(t, false)),
  rule('<>', '<<|>>', keep),
  rule(MISC_SYMBOL.slice(1, -1), MISC_SYMBOL, keep),
  rule(`\\x00${SPACE_C}\\u200b\\u200e\\u200f\\ufeff`, `\\x00|${SPACE}+|[\\u200b\\u200e\\u200f\\ufeff]`, skip),
  rule(NL_C, `\\r\\n|[${NL_C}]`, () => NEWLINE),
  rule('&', ci('&nbsp;'), skip),
  rule(undefined, '[^\\n]', skip), // untokenizable: dropped, as the reference does by default
];

/** The rules that can match from each code unit (filled on first use). */
const candidates: (Rule[] | undefined)[] = new Array(0x10000);
function rulesFrom(c: number): Rule[] {
  let list = candidates[c];
  if (!list) {
    const ch = String.fromCharCode(c);
    list = RULES.filter((r) => r.first === undefined || r.first.test(ch));
    candidates[c] = list;
  }
  return list;
}

/**
 * Longest look-ahead of any rule: matches are searched in a window of this many code units, so that a
 * hostile run without spaces costs linear time (the reference has no such limit, but no token of a
 * caption comes near it).
 */
const WINDOW = 1024;

/**
 * Tokenises `text` as CoreNLP's PTBLexer: `emit` receives each token (not lower-cased) and NEWLINE per
 * line break. `allRules` tries every rule at every position (for tests of the first-character filter).
 */
export function ptbLex(text: string, emit: (token: string) => void, { allRules = false } = {}): void {
  const n = text.length;
  let win = '';
  let base = 0;
  let pos = 0;
  while (pos < n) {
    const c = text.charCodeAt(pos);
    if (c === 32) {
      pos++;
      continue;
    }
    if (c === 10) {
      emit(NEWLINE);
      pos++;
      continue;
    }
    // Fast path: an ASCII word up to a space, a line end or the end is one token, except the words
    // the reference splits ("cannot", "gonna", ...). No other rule matches such a word differently.
    if (isAsciiLetter(c) && !allRules) {
      let j = pos + 1;
      while (j < n && isAsciiLetter(text.charCodeAt(j))) j++;
      const next = j < n ? text.charCodeAt(j) : 32;
      if ((next === 32 || next === 10) && !(j - pos >= 5 && j - pos <= 6 && SPLIT_WORDS.test(text.slice(pos, j)))) {
        emit(text.slice(pos, j));
        pos = j;
        continue;
      }
    }
    if (pos + WINDOW > base + win.length && base + win.length < n) {
      base = pos;
      win = text.slice(pos, pos + 2 * WINDOW);
    }
    const at = pos - base;
    // Longest match; `test` + lastIndex measure it without allocating match arrays.
    let bestLen = 0;
    let best: Rule | undefined;
    let bestAlt = 0;
    for (const r of allRules ? RULES : rulesFrom(c)) {
      for (let k = 0; k < r.res.length; k++) {
        const re = r.res[k];
        re.lastIndex = at;
        if (re.test(win) && re.lastIndex - at > bestLen) {
          bestLen = re.lastIndex - at;
          best = r;
          bestAlt = k;
        }
      }
    }
    // The last rule takes any character but a line feed, and line feeds were handled above.
    const rule = best!;
    let len = bestLen;
    if (rule.heads) {
      const head = rule.heads[bestAlt];
      head.lastIndex = at;
      head.test(win);
      len = head.lastIndex - at;
    }
    const out = rule.act(win.slice(at, at + len));
    if (Array.isArray(out)) {
      emit(out[0]);
      pos += len - out[1];
    } else {
      if (out !== null) emit(out);
      pos += len;
    }
  }
}

const isAsciiLetter = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
const SPLIT_WORDS = /^(?:cannot|gonna|gotta|lemme|gimme|wanna)$/i;
