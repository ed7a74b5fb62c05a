// SPICE-style semantic propositional scores (Anderson et al. 2016) with an APPROXIMATE parser.
//
// Official SPICE parses captions with Stanford CoreNLP 3.6 and the Stanford scene-graph rules
// (Java, ~380 MB of models), which cannot run here. This module builds scene graphs from the
// part-of-speech tags and lemmas of wink-nlp (a maintained npm NLP package) with a small set of
// rules: noun phrases give objects, their adjectives / numbers / noun modifiers give attributes,
// verbs and prepositions between noun phrases give relations, copulas give attributes. Tuples
// are matched exactly or through shared WordNet synsets (Meteor's synonym data, as SPICE does),
// then scored with SPICE's F-measure. The numbers approximate SPICE; they are never SPICE, and
// every printed label says so (`SPICE_approx`).
import { checkCaptionItem } from './check.js';
import winkNLP, { type ItsFunction, type WinkMethods } from 'wink-nlp';
import model from 'wink-eng-lite-web-model';
import { mean } from '../errors.js';
import { synsetsOf, type MeteorResources } from './meteor/resources.js';

export type Tuple = [string] | [string, string] | [string, string, string];
export type TupleCategory = 'object' | 'attribute' | 'relation' | 'color' | 'count' | 'size';

const COLORS = new Set(
  'black white red green blue yellow brown orange pink purple gray grey silver gold tan beige maroon navy teal'.split(
    ' ',
  ),
);
const SIZES = new Set('big small large little tall short huge tiny long giant massive wide narrow'.split(' '));
const NUMBER_WORDS = new Set(
  'one two three four five six seven eight nine ten eleven twelve several many few couple some multiple dozen'.split(
    ' ',
  ),
);

interface Tok {
  text: string;
  pos: string;
  lemma: string;
}

export interface SceneGraph {
  objects: string[];
  attributes: [string, string][];
  relations: [string, string, string][];
}

let nlp: WinkMethods | undefined;
const getNlp = () => (nlp ??= winkNLP(model));

/** The tuple set of a scene graph: (object), (object, attribute), (subject, relation, object). */
export function graphTuples(g: SceneGraph): Tuple[] {
  const seen = new Set<string>();
  const out: Tuple[] = [];
  const push = (t: Tuple) => {
    const k = t.join('\u0000');
    if (!seen.has(k)) {
      seen.add(k);
      out.push(t);
    }
  };
  g.objects.forEach((o) => push([o]));
  g.attributes.forEach((a) => push(a));
  g.relations.forEach((r) => push(r));
  return out;
}

export function tupleCategories(t: Tuple): TupleCategory[] {
  if (t.length === 1) return ['object'];
  if (t.length === 3) return ['relation'];
  const cats: TupleCategory[] = ['attribute'];
  if (COLORS.has(t[1])) cats.push('color');
  if (SIZES.has(t[1])) cats.push('size');
  if (NUMBER_WORDS.has(t[1]) || /^\d+$/.test(t[1])) cats.push('count');
  return cats;
}

/** A wink-nlp item function (what `its.*` holds). */
function isItsFunction(f: unknown): f is ItsFunction<string> {
  return typeof f === 'function';
}

export class ApproxSceneGraphParser {
  constructor(private readonly resources: MeteorResources) {}

  /**
   * Lemma of a tagged word. wink's lemmatiser misses some -ing forms (riding -> "rid"), so verbs in
   * -ing are undone with English spelling rules checked against WordNet; irregular forms come
   * from WordNet's exception list.
   */
  private lemma(word: string, pos: string, winkLemma: string): string {
    const bases = this.resources.bases.get(word);
    if (bases?.length && (pos === 'NOUN' || pos === 'VERB')) return bases[0];
    if (pos === 'VERB' && word.endsWith('ing') && word.length > 4) {
      const stem = word.slice(0, -3);
      if (/([b-df-hj-np-tv-z])\1$/.test(stem) && !/(ll|ss|zz)$/.test(stem)) return stem.slice(0, -1); // sitting -> sit
      if (/[^aeiou][aeiou][^aeiouwxy]$/.test(stem) && this.resources.synsets.has(`${stem}e`)) return `${stem}e`; // riding -> ride
      if (this.resources.synsets.has(stem)) return stem;
    }
    return winkLemma || word;
  }

  private tag(caption: string): Tok[] {
    const doc = getNlp().readDoc(caption.toLowerCase());
    const its = getNlp().its;
    const words = doc.tokens().out() as string[];
    const pos = doc.tokens().out(its.pos) as string[];
    // wink-nlp's typings omit the `lemma` item function that its English model provides at runtime
    const lemmaOf: unknown = Reflect.get(its, 'lemma');
    if (!isItsFunction(lemmaOf)) throw new Error('wink-nlp: its.lemma is missing (the English model has a lemmatizer)');
    const lemmas = doc.tokens().out(lemmaOf);
    const toks = words.map((w, i) => ({ text: w, pos: pos[i], lemma: lemmas[i] }));
    // Repairs of tagger errors common in captions.
    toks.forEach((t, i) => {
      const prev = toks[i - 1];
      if (
        t.pos === 'NOUN' &&
        t.text.endsWith('ing') &&
        prev?.pos === 'NOUN' &&
        toks[i + 1] &&
        ['ADP', 'DET', 'NUM', 'ADJ'].includes(toks[i + 1].pos)
      )
        t.pos = 'VERB';
      if (
        t.pos === 'ADV' &&
        toks[i + 1] &&
        ['ADJ', 'NOUN'].includes(toks[i + 1].pos) &&
        prev &&
        ['DET', 'NUM', 'ADJ'].includes(prev.pos)
      )
        t.pos = 'ADJ';
      t.lemma = this.lemma(t.text, t.pos, t.lemma);
    });
    return toks;
  }

  /** Scene graph of one caption. */
  parse(caption: string): SceneGraph {
    const toks = this.tag(caption);
    const objects: string[] = [];
    const attributes: [string, string][] = [];
    const relations: [string, string, string][] = [];
    type NP = { head: string; start: number; end: number };
    const nps: NP[] = [];
    // Noun phrases: (DET|NUM|ADJ|NOUN|PROPN)* ending in a NOUN/PROPN.
    for (let i = 0; i < toks.length; ) {
      let j = i;
      while (
        j < toks.length &&
        ['DET', 'NUM', 'ADJ', 'NOUN', 'PROPN', 'PRON'].includes(toks[j].pos) &&
        !(toks[j].pos === 'PRON' && j > i)
      )
        j++;
      let last = -1;
      for (let k = i; k < j; k++) if (toks[k].pos === 'NOUN' || toks[k].pos === 'PROPN') last = k;
      if (last >= 0) {
        const head = toks[last].lemma;
        nps.push({ head, start: i, end: last + 1 });
        objects.push(head);
        for (let k = i; k < last; k++) {
          const t = toks[k];
          if (t.pos === 'ADJ') attributes.push([head, t.lemma]);
          else if (t.pos === 'NUM' && t.lemma !== 'one') attributes.push([head, t.lemma]);
          else if (t.pos === 'NOUN' || t.pos === 'PROPN') attributes.push([head, t.lemma]);
        }
        i = last + 1;
      } else {
        i = Math.max(j, i + 1);
      }
    }
    const subject = nps[0];
    // Relations and copula attributes between consecutive noun phrases.
    for (let n = 0; n < nps.length; n++) {
      const from = nps[n];
      const to = nps[n + 1];
      const gapEnd = to ? to.start : toks.length;
      const gap = toks.slice(from.end, gapEnd);
      const verbs = gap.filter((t) => t.pos === 'VERB').map((t) => t.lemma);
      const preps = gap
        .filter(
          (t) =>
            t.pos === 'ADP' ||
            (t.pos === 'ADJ' && t.text === 'next') ||
            (t.pos === 'ADJ' && t.text === 'top') ||
            (t.pos === 'NOUN' && t.text === 'top'),
        )
        .map((t) => t.text);
      const hasCopula = gap.some((t) => t.pos === 'AUX' && t.lemma === 'be');
      if (hasCopula && !verbs.length) {
        for (const t of gap) if (t.pos === 'ADJ' && t.text !== 'next') attributes.push([from.head, t.lemma]);
      }
      if (!to) break;
      const conj = gap.length > 0 && gap.every((t) => t.pos === 'CCONJ' || t.pos === 'PUNCT');
      if (conj) {
        // "broccoli and rice": the second phrase repeats the relation that led to the first.
        const prev = relations.find((r) => r[2] === from.head);
        if (prev) relations.push([prev[0], prev[1], to.head]);
        continue;
      }
      const rel = [...verbs, ...preps].join(' ');
      if (!rel) continue;
      const subj = verbs.length ? subject.head : from.head;
      if (subj !== to.head || verbs.length) relations.push([subj, rel, to.head]);
    }
    return { objects, attributes, relations };
  }

  /** Merged graph of several references (duplicate tuples merged). */
  parseAll(captions: readonly string[]): Tuple[] {
    const merged: SceneGraph = { objects: [], attributes: [], relations: [] };
    for (const c of captions) {
      const g = this.parse(c);
      merged.objects.push(...g.objects);
      merged.attributes.push(...g.attributes);
      merged.relations.push(...g.relations);
    }
    return graphTuples(merged);
  }
}

export interface SpiceScore {
  f: number;
  precision: number;
  recall: number;
  /** F per tuple category (NaN where neither side has such tuples). */
  byCategory: Record<TupleCategory, number>;
  candidateTuples: Tuple[];
  referenceTuples: Tuple[];
}

/** SPICE's matching: equal strings, or single words sharing a WordNet synset. */
function elementMatches(r: MeteorResources, a: string, b: string): boolean {
  if (a === b) return true;
  if (a.includes(' ') || b.includes(' ')) return false;
  const sa = synsetsOf(r, a);
  for (const s of synsetsOf(r, b)) if (sa.has(s)) return true;
  return false;
}

function fScore(matched: number, nCand: number, nRef: number): { f: number; p: number; r: number } {
  const p = nCand ? matched / nCand : 0;
  const r = nRef ? matched / nRef : 0;
  return { f: p + r > 0 ? (2 * p * r) / (p + r) : 0, p, r };
}

export function spiceScore(resources: MeteorResources, candidate: Tuple[], references: Tuple[]): SpiceScore {
  const matchedCand = candidate.map((c) =>
    references.some((r) => r.length === c.length && r.every((x, i) => elementMatches(resources, c[i], x))),
  );
  const total = fScore(matchedCand.filter(Boolean).length, candidate.length, references.length);
  const cats: TupleCategory[] = ['object', 'attribute', 'relation', 'color', 'count', 'size'];
  const byCategory = Object.fromEntries(
    cats.map((cat) => {
      const ci = candidate.map((t, i) => [t, i] as const).filter(([t]) => tupleCategories(t).includes(cat));
      const nRef = references.filter((t) => tupleCategories(t).includes(cat)).length;
      if (!ci.length && !nRef) return [cat, NaN];
      return [cat, fScore(ci.filter(([, i]) => matchedCand[i]).length, ci.length, nRef).f];
    }),
  ) as Record<TupleCategory, number>;
  return {
    f: total.f,
    precision: total.p,
    recall: total.r,
    byCategory,
    candidateTuples: candidate,
    referenceTuples: references,
  };
}

/** Per-image approximate SPICE and their mean (the corpus value pycocoevalcap reports). */
export function spiceApprox(
  resources: MeteorResources,
  items: readonly { candidate: string; references: readonly string[] }[],
): { corpus: number; perImage: SpiceScore[] } {
  items.forEach((it, i) => checkCaptionItem(it?.candidate, it?.references, `spiceApprox: item ${i}`));
  const parser = new ApproxSceneGraphParser(resources);
  const perImage = items.map((it) =>
    spiceScore(resources, parser.parseAll([it.candidate]), parser.parseAll(it.references)),
  );
  return { corpus: mean(perImage.map((s) => s.f)), perImage };
}
