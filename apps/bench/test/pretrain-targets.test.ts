// The targets of the main job's unimodal pre-training stages: the Swin's scene attributes (with the
// colour-shape pairs that bind a colour to its shape), its objects' shapes at their centre cells
// (and the heads that read them), the background kind at every cell of its final grid, and the text
// encoder's bag of words.
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '@fiber-vl/tensor-core';
import { runModelConfig } from '../src/run/coarse-model.js';
import { runPreset } from '../src/run/presets.js';
import { BACKGROUNDS, COLOURS, SHAPES, SIZES, TEXTURES, createWorld } from '@fiber-vl/trainer';
import { ATTRIBUTE_LABELS, AttributeClassifier, attributeLabels, cellTargets } from '../src/run/image-pretrain.js';
import { bagOfWords, wordVocabulary, wordsOf, worldTexts } from '../src/run/text-pretrain.js';
import { seedRng } from '../src/run/context.js';
import { scenePixels } from '../src/run/data.js';

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

  it('cells: the centre of each visible object with its shape, then one object-free cell per scene with its background kind', async () => {
    const config = runModelConfig(runPreset('small'), 100); // 64 px: stage grids 8 (stride 8) and 4 (stride 16)
    const idx = [5, 0, 9, 3];
    const scenes = idx.map((i) => world.scene('train', i));
    const { cells, classes, backgrounds } = cellTargets(scenes, config);
    const [rows, oneHot] = [(await cells.array()) as number[][], (await classes.array()) as number[][]];
    tf.dispose([cells, classes, backgrounds]);
    const want: { cells: number[]; shape: number }[] = [];
    scenes.forEach(({ objects, width, height }, b) => {
      for (const o of objects.filter((o) => o.occlusion < 0.5)) {
        const [cx, cy] = [(o.box[0] + o.box[2]) / 2 / width, (o.box[1] + o.box[3]) / 2 / height];
        const cell = (g: number) => (b * g + Math.floor(cy * g)) * g + Math.floor(cx * g);
        want.push({ cells: [cell(8), cell(4)], shape: SHAPES.indexOf(o.shape) });
      }
    });
    const nObjects = want.length;
    expect(nObjects).toBeGreaterThan(idx.length);
    expect(rows.map((r) => r.slice(0, nObjects))).toEqual([want.map((w) => w.cells[0]), want.map((w) => w.cells[1])]);
    expect(oneHot.slice(0, nObjects).map((r) => r.indexOf(1))).toEqual(want.map((w) => w.shape));
    expect(
      oneHot.every((r) => r.length === SHAPES.length + BACKGROUNDS.length && r.reduce((a, v) => a + v, 0) === 1),
    ).toBe(true);
    // the background cells: free of every object (hidden ones too), labelled with the scene's kind
    const background = oneHot
      .slice(nObjects)
      .map((r, k) => ({ kind: r.indexOf(1) - SHAPES.length, at: [rows[0][nObjects + k], rows[1][nObjects + k]] }));
    // which scenes have a 4 x 4 cell that no object touches, found here independently
    const touches = (s: (typeof scenes)[number], gx: number, gy: number) => {
      const [x0, y0, x1, y1] = [
        (gx * s.width) / 4,
        (gy * s.height) / 4,
        ((gx + 1) * s.width) / 4,
        ((gy + 1) * s.height) / 4,
      ];
      return s.objects.some((o) => o.box[0] < x1 && o.box[2] > x0 && o.box[1] < y1 && o.box[3] > y0);
    };
    const withFree = scenes.flatMap((s, b) =>
      [...Array(16).keys()].some((c) => !touches(s, c % 4, Math.floor(c / 4))) ? [b] : [],
    );
    // exactly one per scene with a free cell, in scene order
    expect(background.map(({ at }) => Math.floor(at[1] / 16))).toEqual(withFree);
    expect(withFree.length).toBeGreaterThan(1);
    expect(new Set(background.map((x) => x.kind)).size, 'background kinds among the scenes').toBeGreaterThan(1);
    for (const { kind, at } of background) {
      const b = Math.floor(at[1] / 16); // scene of the stride-16 cell (4 x 4 per scene)
      expect(BACKGROUNDS[kind]).toBe(scenes[b].background.kind);
      const [gy, gx] = [Math.floor((at[1] % 16) / 4), (at[1] % 16) % 4];
      expect(touches(scenes[b], gx, gy), `scene ${b} cell (${gx}, ${gy})`).toBe(false);
      // the stride-8 cell lies inside it, in the same scene
      const [fy, fx] = [Math.floor((at[0] % 64) / 8), (at[0] % 64) % 8];
      expect([Math.floor(at[0] / 64), Math.floor(fy / 2), Math.floor(fx / 2)]).toEqual([b, gy, gx]);
    }
  });

  it("final grid: each cell labelled with its scene's background, logits in the same order", async () => {
    const config = runModelConfig(runPreset('small'), 100); // 64 px: the final grid is 2 x 2 (stride 32)
    const idx = [5, 0, 9, 3, 11, 2];
    const scenes = idx.map((i) => world.scene('train', i));
    const t = cellTargets(scenes, config);
    const model = new AttributeClassifier(config, { seed: 0 });
    const pixels = scenePixels(scenes, 64);
    const labels = attributeLabels(scenes);
    const kept: tf.Tensor[] = [];
    try {
      const oneHot = (await t.backgrounds.array()) as number[][];
      expect(oneHot).toHaveLength(scenes.length * 4);
      expect(oneHot.every((r) => r.length === BACKGROUNDS.length && r.reduce((a, v) => a + v, 0) === 1)).toBe(true);
      scenes.forEach((scene, b) => {
        const kinds = oneHot.slice(b * 4, b * 4 + 4).map((r) => BACKGROUNDS[r.indexOf(1)]);
        expect(kinds, `scene ${idx[b]}`).toEqual(new Array(4).fill(scene.background.kind));
      });
      const kindsSeen = new Set(scenes.map((s) => s.background.kind));
      expect(kindsSeen.size, 'background kinds among the scenes').toBeGreaterThan(1);

      // the head reads the final grid: one row of logits per labelled cell, scene by scene
      const one = cellTargets(scenes.slice(0, 1), config);
      kept.push(one.cells, one.classes, one.backgrounds);
      const alonePixels = tf.slice(pixels, 0, 1);
      kept.push(alonePixels);
      const [all, first] = [model.outputs(pixels, t.cells), model.outputs(alonePixels, one.cells)];
      kept.push(all.attributes, ...all.cells, all.backgrounds, first.attributes, ...first.cells, first.backgrounds);
      expect(all.backgrounds.shape).toEqual([scenes.length * 4, BACKGROUNDS.length]);
      expect(all.backgrounds.shape).toEqual(t.backgrounds.shape);
      // rows 0-3 are the first scene's four cells: the same logits with the scene alone in the batch
      const [rows, alone] = [(await all.backgrounds.array()).slice(0, 4), await first.backgrounds.array()];
      rows.flat().forEach((v, k) => expect(v).toBeCloseTo(alone.flat()[k], 4));
      const loss = model.loss({ pixels, labels, ...t });
      kept.push(loss);
      expect(Number.isFinite((await loss.data())[0])).toBe(true);

      // the term trains the merging into the last stage, the last stage and the final norm only
      const last = config.swin.depths.length - 1;
      const named = new Map(model.namedParameters());
      const pick = (name: string) => {
        const p = named.get(name);
        if (!p) throw new Error(`no parameter ${name}`);
        return p.value;
      };
      const before = last - 1;
      const frozen = [
        'vit_model.patch_embed.proj.weight',
        'vit_model.layers.0.blocks.0.attn.qkv.weight',
        `vit_model.layers.${before}.blocks.${config.swin.depths[before] - 1}.mlp.fc2.weight`,
      ].map(pick);
      const trained = [
        `vit_model.layers.${before}.downsample.reduction.weight`,
        `vit_model.layers.${last}.blocks.0.mlp.fc1.weight`,
        'vit_model.norm.weight',
      ].map(pick);
      const { grads, value } = tf.variableGrads(
        () =>
          tf.tidy(() => {
            const out = model.outputs(pixels, t.cells);
            return tf.losses.softmaxCrossEntropy(t.backgrounds, out.backgrounds) as tf.Scalar;
          }),
        [...frozen, ...trained],
      );
      kept.push(value, ...Object.values(grads));
      const norm = (v: tf.Variable) => tf.tidy(() => tf.norm(grads[v.name]).dataSync()[0]);
      for (const v of frozen) expect(norm(v), v.name).toBe(0);
      for (const v of trained) expect(norm(v), v.name).toBeGreaterThan(0);
    } finally {
      tf.dispose([pixels, labels, t.cells, t.classes, t.backgrounds, ...kept]);
      model.dispose();
    }
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

  it('the image pre-training trains the Swin and its heads', () => {
    const model = new AttributeClassifier(runModelConfig(runPreset('micro'), 100), { seed: 0 });
    try {
      const names = model.namedParameters().map(([n]) => n);
      for (const head of ['classifier.weight', 'cell_class.0.weight', 'cell_class.1.weight', 'cell_background.weight'])
        expect(names, head).toContain(head);
      expect(names.filter((n) => n.startsWith('vit_model.')).length).toBeGreaterThan(20);
      expect(names.every((n) => /^(vit_model|classifier|cell_class|cell_background)\./.test(n))).toBe(true);
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
