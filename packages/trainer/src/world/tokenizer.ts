// A tokenizer for the world's text, trained on it: no download, a vocabulary small enough for a tiny model.
import { ByteLevelBpeTokenizer, trainByteLevelBpe } from '@fiber-vl/roberta';
import { NUMBER_WORDS, RELATIONS, SUPERLATIVE_WORDS, WORDS, plural } from './attributes.js';
import type { World } from './world.js';

export interface WorldCorpusOptions {
  /** Train scenes whose captions, questions, answers and expressions are read (default 500). */
  scenes?: number;
  /** Train NLVR2 statements read (default 250). */
  pairs?: number;
}

/** The world's train text, then a line with every word the generator can use (so all are covered). */
export function* worldCorpus(
  world: World,
  { scenes = 500, pairs = 250 }: WorldCorpusOptions = {},
): IterableIterator<string> {
  for (const s of world.samples('train', { end: scenes })) {
    for (const c of s.captions) yield c.text;
    for (const q of s.questions) yield `${q.question} ${q.answer}`;
    for (const e of s.expressions) yield e.text;
  }
  for (let i = 0; i < Math.min(pairs, world.nlvr2Size('train')); i++) yield world.nlvr2('train', i).statement;
  const { shapes, colours } = world.config;
  const words = [
    ...shapes,
    ...shapes.map(plural),
    ...colours,
    ...Object.values(WORDS.size).flat(),
    ...Object.values(WORDS.texture).flat(),
    ...Object.values(WORDS.relation).flat(),
    ...Object.values(WORDS.background).flat(),
    ...WORDS.thing,
    ...WORDS.thing.map(plural),
    ...NUMBER_WORDS,
    ...RELATIONS,
    ...SUPERLATIVE_WORDS,
    ...world.answerVocabulary,
  ];
  yield words.join(' ');
}

/**
 * A byte-level BPE tokenizer (RoBERTa's special tokens and layout) trained on `worldCorpus`.
 * Any text still encodes (byte fallback); the world's words are mostly single tokens.
 */
export function worldTokenizer(
  world: World,
  { vocabSize = 1000, ...corpus }: WorldCorpusOptions & { vocabSize?: number } = {},
): ByteLevelBpeTokenizer {
  const { vocab, merges } = trainByteLevelBpe(worldCorpus(world, corpus), { vocabSize, minFrequency: 2 });
  return new ByteLevelBpeTokenizer(new Map(Object.entries(vocab)), merges);
}
