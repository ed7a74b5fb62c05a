// Meteor's English resources: function words and the WordNet-derived synonym tables
// (data/meteor-en in this package), parsed from their text so that browsers can fetch them too.

export interface MeteorResources {
  functionWords: Set<string>;
  /** word -> synset ids */
  synsets: Map<string, Set<number>>;
  /** inflected form -> base forms (english.exceptions) */
  bases: Map<string, string[]>;
}

/** Parses the contents of english.words, english.synsets and english.exceptions. */
export function parseMeteorResources(files: { words: string; synsets: string; exceptions: string }): MeteorResources {
  const lines = (s: string) => s.split(/\r?\n/);
  const functionWords = new Set(lines(files.words).filter((l, i, all) => l !== '' || i < all.length - 1));
  const synsets = new Map<string, Set<number>>();
  const syn = lines(files.synsets);
  for (let i = 0; i + 1 < syn.length; i += 2) {
    if (syn[i] === '' && i === syn.length - 1) break;
    synsets.set(syn[i], new Set(syn[i + 1].split(/\s+/).filter(Boolean).map(Number)));
  }
  const bases = new Map<string, string[]>();
  const exc = lines(files.exceptions);
  for (let i = 0; i + 1 < exc.length; i += 2) {
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
