// Meteor's English resources: function words and the WordNet-derived synonym tables
// (data/meteor-en in this package), parsed from their text so that browsers can fetch them too.
import { MetricInputError, show } from '../../errors.js';

export interface MeteorResources {
  functionWords: Set<string>;
  /** word -> synset ids */
  synsets: Map<string, Set<number>>;
  /** inflected form -> base forms (english.exceptions) */
  bases: Map<string, string[]>;
}

/**
 * Parses the contents of english.words, english.synsets and english.exceptions. What cannot be
 * Meteor's data (an empty file, a synset line that is not integer ids, a line without its pair) is
 * a MetricInputError naming the file and line, as Meteor itself fails on it, not a silently
 * different score. `names` name the files in messages (default: their usual names).
 */
export function parseMeteorResources(
  files: { words: string; synsets: string; exceptions: string },
  names: { words?: string; synsets?: string; exceptions?: string } = {},
): MeteorResources {
  const file = { words: 'english.words', synsets: 'english.synsets', exceptions: 'english.exceptions', ...names };
  const lines = (key: keyof typeof files) => {
    const all = files[key].split(/\r?\n/);
    if (all.at(-1) === '') all.pop();
    if (all.length === 0) throw new MetricInputError(`${file[key]}: the file is empty`);
    return all;
  };
  const paired = (key: 'synsets' | 'exceptions', all: string[]) => {
    if (all.length % 2 !== 0)
      throw new MetricInputError(`${file[key]}: ${all.length} lines, not pairs of lines (a word, then its entries)`);
  };
  const functionWords = new Set(lines('words'));
  const synsets = new Map<string, Set<number>>();
  const syn = lines('synsets');
  paired('synsets', syn);
  for (let i = 0; i < syn.length; i += 2) {
    const ids = syn[i + 1].split(/\s+/).filter(Boolean);
    if (!ids.every((id) => /^\d+$/.test(id)))
      throw new MetricInputError(
        `${file.synsets}: line ${i + 2}: synset ids must be integers, got ${show(syn[i + 1])}`,
      );
    synsets.set(syn[i], new Set(ids.map(Number)));
  }
  const bases = new Map<string, string[]>();
  const exc = lines('exceptions');
  paired('exceptions', exc);
  for (let i = 0; i < exc.length; i += 2) {
    const base = exc[i];
    for (const form of exc[i + 1].split(/\s+/).filter(Boolean)) {
      const list = bases.get(form);
      if (list) list.push(base);
      else bases.set(form, [base]);
    }
  }
  return { functionWords, synsets, bases };
}

// WordNet 3 morphology (morphy's suffix rules) as Meteor's SynonymDictionary applies them.
const SUFFIX = [
  's',
  'ses',
  'xes',
  'zes',
  'ches',
  'shes',
  'men',
  'ies',
  's',
  'ies',
  'es',
  'es',
  'ed',
  'ed',
  'ing',
  'ing',
  'er',
  'est',
  'er',
  'est',
];
const ENDING = ['', 's', 'x', 'z', 'ch', 'sh', 'man', 'y', '', 'y', 'e', '', 'e', '', 'e', '', '', '', 'e', 'e'];

function morph(r: MeteorResources, word: string): string {
  // Quirk kept from Meteor: a word ending in "ful" gets "ful" appended to the base it finds.
  const end = word.endsWith('ful') ? 'ful' : '';
  if (word.endsWith('ss') || word.length <= 2) return word;
  for (let i = 0; i < SUFFIX.length; i++) {
    if (!word.endsWith(SUFFIX[i])) continue;
    const base = word.slice(0, word.length - SUFFIX[i].length) + ENDING[i];
    if (r.synsets.has(base)) return base + end;
  }
  return '';
}

const EMPTY = new Set<number>();

/** getSynSets(word) U getStemSynSets(word) of Meteor's SynonymDictionary. */
export function synsetsOf(r: MeteorResources, word: string): Set<number> {
  const out = new Set(r.synsets.get(word) ?? EMPTY);
  const bases = r.bases.get(word);
  if (bases) {
    for (const b of bases) for (const s of r.synsets.get(b) ?? EMPTY) out.add(s);
  } else {
    for (const s of r.synsets.get(morph(r, word)) ?? EMPTY) out.add(s);
  }
  return out;
}
