import { Generator, initBackend } from '@fiber-vl/tensor-core';
import { createWorld, worldTokenizer } from '@fiber-vl/trainer';
import { describe, expect, it } from 'vitest';
import { SWAP_WORDS, detectionExamples, fineBatch, namesClass, perturbCaption, sampleIndices } from './data.js';

describe('sampleIndices', () => {
  it('repeats whole seeded orders of the split when asked for more than it has', () => {
    const idx = sampleIndices(5, 12, new Generator(7));
    expect(idx).toHaveLength(12);
    expect([...idx.slice(0, 5)].sort()).toEqual([0, 1, 2, 3, 4]);
    expect([...idx.slice(5, 10)].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(idx.slice(10).every((i) => i >= 0 && i < 5)).toBe(true);
    expect(sampleIndices(5, 12, new Generator(7))).toEqual(idx);
  });

  it('names an empty split instead of looping for ever', () => {
    expect(() => sampleIndices(0, 3, new Generator(1))).toThrow(/3 indices asked of a split of 0 records/);
    expect(() => sampleIndices(Number.NaN, 1, new Generator(1))).toThrow(RangeError);
    expect(sampleIndices(0, 0, new Generator(1))).toEqual([]);
  });
});

describe('namesClass', () => {
  it('finds a class name as a word, singular or plural, and nowhere else', () => {
    expect(namesClass('two stars and a big square', 'star')).toBe(true);
    expect(namesClass('a star', 'star')).toBe(true);
    expect(namesClass('Star on a plain background', 'star')).toBe(true);
    expect(namesClass('two crosses', 'cross')).toBe(true);
    expect(namesClass('a starry night, a start', 'star')).toBe(false);
    expect(namesClass('a superstar', 'star')).toBe(false);
    expect(namesClass('a c.rcle', 'c.rcle')).toBe(true);
    expect(namesClass('a circle', 'c.rcle')).toBe(false);
    expect(() => namesClass('a star', ' ')).toThrow(/the class name is empty/);
  });
});

describe('perturbCaption', () => {
  it('swaps one colour, shape or count word of a caption for another of its kind, and nothing else', () => {
    const world = createWorld({ seed: 3, preset: 'small', splits: { train: 60, val: 2, test: 2 } });
    const rng = new Generator(7);
    const kinds = new Set<number>();
    let none = 0;
    for (let i = 0; i < 60; i++)
      for (const { text } of world.sample('train', i).captions) {
        const out = perturbCaption(text, rng);
        const words = text.split(' ');
        const swappable = words.filter((w) => SWAP_WORDS.some((k) => k.includes(w)));
        if (out === null) {
          expect(swappable).toEqual([]);
          none++;
          continue;
        }
        const got = out.split(' ');
        expect(got).toHaveLength(words.length);
        const changed = words.flatMap((w, k) => (w === got[k] ? [] : [k]));
        expect(changed).toHaveLength(1);
        const [before, after] = [words[changed[0]], got[changed[0]]];
        const kind = SWAP_WORDS.findIndex((k) => k.includes(before) && k.includes(after));
        expect(kind).toBeGreaterThanOrEqual(0);
        kinds.add(kind);
      }
    // every kind is swapped somewhere, and some captions have nothing to swap
    expect([...kinds].sort()).toEqual([0, 1, 2, 3]);
    expect(none).toBeGreaterThan(0);
    // deterministic by generator
    const text = world.sample('train', 0).captions[0].text;
    expect(perturbCaption(text, new Generator(1))).toBe(perturbCaption(text, new Generator(1)));
    expect(perturbCaption('a single object on a noisy background', new Generator(1))).toBeNull();
    expect(perturbCaption('two red stars', new Generator(1))).not.toBe('two red stars');
  });
});

describe('detection examples with image-level labels', () => {
  it('boxes the seen classes only and labels the held-out ones the captions name', async () => {
    await initBackend({ backend: 'cpu' });
    const world = createWorld({ seed: 0, preset: 'small', splits: { train: 40, val: 4, test: 4 } });
    const tokenizer = await worldTokenizer(world, { vocabSize: 300, scenes: 40 });
    const names = world.classes.map((c) => c.name);
    const seen = world.classes.filter((c) => !c.heldOut).map((c) => c.name);
    const heldOut = world.classes.filter((c) => c.heldOut).map((c) => c.name);
    const scenes = Array.from({ length: 40 }, (_, i) => i);
    const examples = detectionExamples(world, 'train', scenes, tokenizer, 40, names, {
      boxed: seen,
      captionLabels: heldOut,
    });
    let labelled = 0;
    for (const e of examples) {
      const s = world.sample('train', e.scene);
      expect(e.phraseOfBox.map((k) => names[k])).toEqual(
        s.detections.filter((d) => seen.includes(d.name)).map((d) => d.name),
      );
      const named = heldOut.filter((h) => s.captions.some((c) => namesClass(c.text, h)));
      expect((e.imageLabels ?? []).map((k) => names[k])).toEqual(named);
      // the captions name only what the scene shows
      for (const k of e.imageLabels ?? []) expect(s.detections.map((d) => d.name)).toContain(names[k]);
      if (named.length) labelled++;
    }
    expect(labelled).toBeGreaterThan(5);
    for (const captionLabels of [['hexagon'], [seen[0]]])
      expect(() =>
        detectionExamples(world, 'train', scenes, tokenizer, 40, names, { boxed: seen, captionLabels }),
      ).toThrow(/captionLabels: ".*" must be a class of the prompt without boxes/);
    // without options: every class of the prompt boxed, no labels (the run's prompts of seen classes)
    const plain = detectionExamples(world, 'train', scenes, tokenizer, 40, seen);
    expect(plain.every((e) => e.imageLabels === undefined)).toBe(true);
    expect(plain.map((e) => e.phraseOfBox.map((k) => seen[k]))).toEqual(
      examples.map((e) => e.phraseOfBox.map((k) => names[k])),
    );
    const batch = fineBatch(examples.slice(0, 4), 96);
    batch.targets.forEach((t, b) => {
      const e = examples[b];
      expect(t.imageLabels ?? []).toEqual((e.imageLabels ?? []).map((k) => e.prompt.phrases[k].tokens));
    });
    batch.pixels.dispose();
    batch.ids.dispose();
    batch.mask.dispose();
    // a prompt cut by MAX_QUERY_LEN: a label whose phrase lost its tokens is left out of the targets
    const short = detectionExamples(world, 'train', scenes, tokenizer, 8, names, {
      boxed: seen,
      captionLabels: heldOut,
    });
    const cut = short.filter((e) => (e.imageLabels ?? []).some((k) => e.prompt.phrases[k].tokens.length === 0));
    expect(cut.length).toBeGreaterThan(0);
    const shortBatch = fineBatch(cut.slice(0, 2), 96);
    shortBatch.targets.forEach((t, b) => {
      const kept = (cut[b].imageLabels ?? []).map((k) => cut[b].prompt.phrases[k].tokens).filter((x) => x.length);
      expect(t.imageLabels).toEqual(kept.length ? kept : undefined);
    });
    shortBatch.pixels.dispose();
    shortBatch.ids.dispose();
    shortBatch.mask.dispose();
  });
});
