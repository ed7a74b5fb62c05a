// The targets of the main job's unimodal pre-training stages: the Swin's scene attributes (with the
// colour-shape pairs that bind a colour to its shape), its objects' shapes at their centre cells
// (and the heads that read them), and the text encoder's bag of words.
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '@fiber-vl/tensor-core';
import { runModelConfig } from '../src/run/coarse-model.js';
import { runPreset } from '../src/run/presets.js';
import { COLOURS, SHAPES, SIZES, TEXTURES, createWorld } from '@fiber-vl/trainer';
import { ATTRIBUTE_LABELS, AttributeClassifier, attributeLabels, objectCells } from '../src/run/image-pretrain.js';
import { bagOfWords, wordVocabulary, wordsOf, worldTexts } from '../src/run/text-pretrain.js';
import { seedRng } from '../src/run/context.js';

const world = createWorld({
  seed: 3,
  preset: 'small',
  splits: { train: 60, val: 4, test: 4 },
  nlvr2Pairs: { train: 20, val: 4, test: 4 },
});

describe('unimodal pre-training targets', () => {
  beforeAll(() => initBackend({ backend: 'cpu' }));

  it('scene attributes mark exactly the scene objects, their count and their colour-shape pairs', async () => {
    const idx = [0, 1, 2, 3, 4, 5, 6, 7];
    const labels = attributeLabels(idx.map((i) => world.scene('train', i)));
    const rows = (await labels.array()) as number[][];
    labels.dispose();
    const pair = SHAPES.length + COLOURS.length + TEXTURES.length + SIZES.length + 4;
    expect(ATTRIBUTE_LABELS).toBe(pair + COLOURS.length * SHAPES.length);
    idx.forEach((i, r) => {
      const objects = world.sample('train', i).scene.objects;
      const want = new Set<number>();
      for (const o of objects) {
        want.add(SHAPES.indexOf(o.shape));
        want.add(SHAPES.length + COLOURS.indexOf(o.colour));
        want.add(pair + COLOURS.indexOf(o.colour) * SHAPES.length + SHAPES.indexOf(o.shape));
      }
      expect(rows[r]).toHaveLength(ATTRIBUTE_LABELS);
      for (const j of want) expect(rows[r][j], `scene ${i} label ${j}`).toBe(1);
      const pairs = rows[r].slice(pair).reduce((a, b) => a + b, 0);
      expect(pairs).toBe(new Set(objects.map((o) => `${o.colour} ${o.shape}`)).size);
      const count = rows[r].slice(pair - 4, pair);
      expect(count.indexOf(1)).toBe(Math.min(objects.length, 4) - 1);
    });
  });

  it('object cells hold the centre of each visible object at stride 8 and 16, with its shape', async () => {
    const config = runModelConfig(runPreset('small'), 100); // 64 px: stage grids 8 (stride 8) and 4 (stride 16)
    const idx = [5, 0, 9, 3];
    const { cells, shapes } = objectCells(
      idx.map((i) => world.scene('train', i)),
      config,
    );
    const [rows, oneHot] = [(await cells.array()) as number[][], (await shapes.array()) as number[][]];
    tf.dispose([cells, shapes]);
    const want: { cells: number[]; shape: number }[] = [];
    idx.forEach((index, b) => {
      const { objects, width, height } = world.scene('train', index);
      for (const o of objects.filter((o) => o.occlusion < 0.5)) {
        const [cx, cy] = [(o.box[0] + o.box[2]) / 2 / width, (o.box[1] + o.box[3]) / 2 / height];
        const cell = (g: number) => (b * g + Math.floor(cy * g)) * g + Math.floor(cx * g);
        want.push({ cells: [cell(8), cell(4)], shape: SHAPES.indexOf(o.shape) });
      }
    });
    expect(want.length).toBeGreaterThan(idx.length);
    expect(rows).toEqual([want.map((w) => w.cells[0]), want.map((w) => w.cells[1])]);
    expect(oneHot.map((r) => r.indexOf(1))).toEqual(want.map((w) => w.shape));
    expect(oneHot.every((r) => r.reduce((a, v) => a + v, 0) === 1)).toBe(true);
  });

  it("the image pre-training's larger pool starts with the world's own train scenes", () => {
    const pool = createWorld({ ...world.config, splits: { ...world.config.splits, train: 500 } });
    for (const i of [0, 7, 59]) expect(pool.scene('train', i)).toEqual(world.scene('train', i));
    expect(pool.scene('test', 2)).toEqual(world.scene('test', 2));
    expect(pool.heldOutCompositions).toEqual(world.heldOutCompositions);
    const held = new Set(world.heldOutCompositions.map(([c, sh]) => `${c} ${sh}`));
    for (let i = 60; i < 500; i++)
      for (const o of pool.scene('train', i).objects)
        expect(held.has(`${o.colour} ${o.shape}`), `scene ${i}`).toBe(false);
  });

  it('the image pre-training trains the Swin and both heads', () => {
    const model = new AttributeClassifier(runModelConfig(runPreset('micro'), 100), { seed: 0 });
    try {
      const names = model.namedParameters().map(([n]) => n);
      for (const head of ['classifier.weight', 'object_shape.0.weight', 'object_shape.1.weight'])
        expect(names, head).toContain(head);
      expect(names.filter((n) => n.startsWith('vit_model.')).length).toBeGreaterThan(20);
      expect(names.every((n) => /^(vit_model|classifier|object_shape)\./.test(n))).toBe(true);
    } finally {
      model.dispose();
    }
  });

  it('the bag of words marks the vocabulary words a text contains, and nothing else', async () => {
    const vocabulary = wordVocabulary(world, 60);
    expect(vocabulary.length).toBeGreaterThan(20);
    expect([...vocabulary].sort()).toEqual(vocabulary);
    const texts = worldTexts(world, 'train', [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], seedRng({ seed: 0 }, 1));
    expect(new Set(texts).size).toBeGreaterThan(5);
    const bag = bagOfWords([...texts, 'zzz unknown words'], vocabulary);
    const rows = (await bag.array()) as number[][];
    bag.dispose();
    texts.forEach((t, r) => {
      const words = new Set(wordsOf(t).filter((w) => vocabulary.includes(w)));
      expect(
        rows[r].reduce((a, b) => a + b, 0),
        t,
      ).toBe(words.size);
      for (const w of words) expect(rows[r][vocabulary.indexOf(w)], `${w} in "${t}"`).toBe(1);
    });
    expect(rows.at(-1)!.every((v) => v === 0)).toBe(true);
    expect(wordsOf('Is there a RED circle?')).toEqual(['is', 'there', 'a', 'red', 'circle']);
  });
});
