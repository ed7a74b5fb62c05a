// Answer normalisation of the official VQA v2 evaluation (GT-Vision-Lab/VQA vqaEval.py), quirks
// included (metrics-spec §8).
import { show } from '../errors.js';

function checkString(fn: string, text: unknown): asserts text is string {
  if (typeof text !== 'string') throw new TypeError(`${fn}: the answer is not a string (${show(text)})`);
}

/** The official contraction table (keys with capitals can never match after lower-casing: kept as is). */
const CONTRACTIONS: Record<string, string> = {
  aint: "ain't",
  arent: "aren't",
  cant: "can't",
  couldve: "could've",
  couldnt: "couldn't",
  "couldn'tve": "couldn't've",
  "couldnt've": "couldn't've",
  didnt: "didn't",
  doesnt: "doesn't",
  dont: "don't",
  hadnt: "hadn't",
  "hadnt've": "hadn't've",
  "hadn'tve": "hadn't've",
  hasnt: "hasn't",
  havent: "haven't",
  hed: "he'd",
  "hed've": "he'd've",
  "he'dve": "he'd've",
  hes: "he's",
  howd: "how'd",
  howll: "how'll",
  hows: "how's",
  "Id've": "I'd've",
  "I'dve": "I'd've",
  Im: "I'm",
  Ive: "I've",
  isnt: "isn't",
  itd: "it'd",
  "itd've": "it'd've",
  "it'dve": "it'd've",
  itll: "it'll",
  "let's": "let's",
  maam: "ma'am",
  mightnt: "mightn't",
  "mightnt've": "mightn't've",
  "mightn'tve": "mightn't've",
  mightve: "might've",
  mustnt: "mustn't",
  mustve: "must've",
  neednt: "needn't",
  notve: "not've",
  oclock: "o'clock",
  oughtnt: "oughtn't",
  "ow's'at": "'ow's'at",
  "'ows'at": "'ow's'at",
  "'ow'sat": "'ow's'at",
  shant: "shan't",
  "shed've": "she'd've",
  "she'dve": "she'd've",
  "she's": "she's",
  shouldve: "should've",
  shouldnt: "shouldn't",
  "shouldnt've": "shouldn't've",
  "shouldn'tve": "shouldn't've",
  "somebody'd": 'somebodyd',
  "somebodyd've": "somebody'd've",
  "somebody'dve": "somebody'd've",
  somebodyll: "somebody'll",
  somebodys: "somebody's",
  someoned: "someone'd",
  "someoned've": "someone'd've",
  "someone'dve": "someone'd've",
  someonell: "someone'll",
  someones: "someone's",
  somethingd: "something'd",
  "somethingd've": "something'd've",
  "something'dve": "something'd've",
  somethingll: "something'll",
  thats: "that's",
  thered: "there'd",
  "thered've": "there'd've",
  "there'dve": "there'd've",
  therere: "there're",
  theres: "there's",
  theyd: "they'd",
  "theyd've": "they'd've",
  "they'dve": "they'd've",
  theyll: "they'll",
  theyre: "they're",
  theyve: "they've",
  twas: "'twas",
  wasnt: "wasn't",
  "wed've": "we'd've",
  "we'dve": "we'd've",
  weve: "we've",
  werent: "weren't",
  whatll: "what'll",
  whatre: "what're",
  whats: "what's",
  whatve: "what've",
  whens: "when's",
  whered: "where'd",
  wheres: "where's",
  whereve: "where've",
  whod: "who'd",
  "whod've": "who'd've",
  "who'dve": "who'd've",
  wholl: "who'll",
  whos: "who's",
  whove: "who've",
  whyll: "why'll",
  whyre: "why're",
  whys: "why's",
  wont: "won't",
  wouldve: "would've",
  wouldnt: "wouldn't",
  "wouldnt've": "wouldn't've",
  "wouldn'tve": "wouldn't've",
  yall: "y'all",
  "yall'll": "y'all'll",
  "y'allll": "y'all'll",
  "yall'd've": "y'all'd've",
  "y'alld've": "y'all'd've",
  "y'all'dve": "y'all'd've",
  youd: "you'd",
  "youd've": "you'd've",
  "you'dve": "you'd've",
  youll: "you'll",
  youre: "you're",
  youve: "you've",
};

const NUMBER_WORDS: Record<string, string> = {
  none: '0',
  zero: '0',
  one: '1',
  two: '2',
  three: '3',
  four: '4',
  five: '5',
  six: '6',
  seven: '7',
  eight: '8',
  nine: '9',
  ten: '10',
};
const ARTICLES = new Set(['a', 'an', 'the']);
const PUNCT = [
  ';',
  '/',
  '[',
  ']',
  '"',
  '{',
  '}',
  '(',
  ')',
  '=',
  '+',
  '\\',
  '_',
  '-',
  '>',
  '<',
  '@',
  '`',
  ',',
  '?',
  '!',
];
const COMMA_BETWEEN_DIGITS = /\d,\d/;
const own = (o: object, k: string) => Object.hasOwn(o, k);

/**
 * processPunctuation: each of 21 characters is deleted when it has a space beside it somewhere in
 * the original string (or the string has digit-comma-digit), else replaced by a space; then every
 * period not followed by a digit is deleted (at most 32: the official code passes re.UNICODE as
 * the count).
 */
export function processPunctuation(text: string): string {
  checkString('processPunctuation', text);
  let out = text;
  const commaNumber = COMMA_BETWEEN_DIGITS.test(text);
  for (const p of PUNCT) {
    const del = text.includes(`${p} `) || text.includes(` ${p}`) || commaNumber;
    out = out.split(p).join(del ? '' : ' ');
  }
  let removed = 0;
  return out.replace(/\.(?!\d)/g, (m) => (removed++ < 32 ? '' : m));
}

/** processDigitArticle: lower-case, number words -> digits, drop articles, contractions. */
export function processDigitArticle(text: string): string {
  checkString('processDigitArticle', text);
  const words: string[] = [];
  for (const w of text.toLowerCase().split(/\s+/).filter(Boolean)) {
    const mapped = own(NUMBER_WORDS, w) ? NUMBER_WORDS[w] : w;
    if (!ARTICLES.has(mapped)) words.push(mapped);
  }
  return words.map((w) => (own(CONTRACTIONS, w) ? CONTRACTIONS[w] : w)).join(' ');
}

/** The whitespace clean-up applied to every answer first: \n and \t to spaces, then strip. */
export function cleanAnswer(answer: string): string {
  return answer.replace(/[\n\t]/g, ' ').replace(/^[\s]+|[\s]+$/g, '');
}

/** Both normalisation steps, as applied when a question's 10 answers are not all identical. */
export function normalizeVqaAnswer(answer: string): string {
  checkString('normalizeVqaAnswer', answer);
  return processDigitArticle(processPunctuation(answer));
}
