import { describe, expect, it } from 'vitest';
import { EXTENT, renderScene, type Scene } from './raster.js';
import { measureObjects } from './scene.js';
import { createWorld, World, WORLD_DEFAULTS, type Split } from './world.js';

/** FNV-1a over bytes: a short fingerprint of an image. */
function fnv(bytes: Uint8Array | Uint8ClampedArray): string {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

const small = { splits: { train: 200, val: 100, test: 100 }, nlvr2Pairs: { train: 40, val: 40, test: 40 } };

describe('world: determinism and serialisation', () => {
  it('gives the same scene, text and image bytes for the same seed, and others for another seed', () => {
    const a = createWorld({ seed: 7, ...small });
    const b = createWorld({ seed: 7, ...small });
    const c = createWorld({ seed: 8, ...small });
    for (const [split, i] of [
      ['train', 0],
      ['val', 3],
      ['test', 99],
    ] as [Split, number][]) {
      expect(JSON.stringify(b.sample(split, i))).toBe(JSON.stringify(a.sample(split, i)));
      expect(fnv(b.image(split, i).data)).toBe(fnv(a.image(split, i).data));
      expect(JSON.stringify(c.sample(split, i))).not.toBe(JSON.stringify(a.sample(split, i)));
      expect(JSON.stringify(b.nlvr2(split, i % 40))).toBe(JSON.stringify(a.nlvr2(split, i % 40)));
    }
    // random access: asking in another order changes nothing
    expect(JSON.stringify(a.sample('train', 5))).toBe(
      JSON.stringify(createWorld({ seed: 7, ...small }).sample('train', 5)),
    );
  });

  it('pins the pixels and text of two scenes (rendering uses only + - * / sqrt floor: same bytes anywhere)', () => {
    // If the generator changes on purpose, print the new fingerprints and update them here.
    const w = createWorld({ seed: 2024 });
    const got = [0, 1].map((i) => {
      const s = w.sample('train', i);
      return `${fnv(renderScene(s.scene).data)} ${fnv(new TextEncoder().encode(JSON.stringify(s)))}`;
    });
    expect(got).toEqual(PINNED);
  });

  it('re-renders a scene from its JSON, and its boxes, areas and occlusion from its geometry', () => {
    const w = createWorld({ seed: 3, ...small });
    for (let i = 0; i < 40; i++) {
      const scene = w.scene('train', i);
      const copy = JSON.parse(JSON.stringify(scene)) as Scene;
      expect(fnv(renderScene(copy).data)).toBe(fnv(renderScene(scene).data));
      const measured = measureObjects(copy.objects, copy.width, copy.height);
      copy.objects.forEach((o, k) =>
        expect({ box: o.box, area: o.area, occlusion: o.occlusion, hiddenBy: o.hiddenBy }).toEqual(measured[k]),
      );
    }
  });
});

describe('world: scenes', () => {
  const w = createWorld({ seed: 11, ...small });
  const scenes = (['train', 'val', 'test'] as Split[]).flatMap((split) =>
    Array.from({ length: 60 }, (_, i) => w.scene(split, i)),
  );

  it('keeps every box inside the image and around its object, and bounds occlusion', () => {
    for (const s of scenes) {
      expect(s.objects.length).toBeGreaterThanOrEqual(1);
      expect(s.objects.length).toBeLessThanOrEqual(WORLD_DEFAULTS.objects[1]);
      for (const o of s.objects) {
        const [x0, y0, x1, y1] = o.box;
        expect(Number.isInteger(x0) && Number.isInteger(y1)).toBe(true);
        expect(0 <= x0 && x0 < x1 && x1 <= s.width && 0 <= y0 && y0 < y1 && y1 <= s.height, `${s.id} ${o.box}`).toBe(
          true,
        );
        const reach = EXTENT * o.r + 1;
        expect(x0 >= o.x - reach && x1 <= o.x + reach && y0 >= o.y - reach && y1 <= o.y + reach).toBe(true);
        expect(o.occlusion).toBeGreaterThanOrEqual(0);
        expect(o.occlusion).toBeLessThanOrEqual(WORLD_DEFAULTS.maxOcclusion + 1e-3);
        expect(o.area).toBeGreaterThan(0);
      }
      // no two objects alike in every attribute
      const keys = s.objects.map((o) => `${o.size} ${o.texture} ${o.colour} ${o.shape}`);
      expect(new Set(keys).size).toBe(keys.length);
    }
  });

  it('varies image sizes, aspect ratios, backgrounds, clutter and occlusion', () => {
    expect(new Set(scenes.map((s) => `${s.width}x${s.height}`)).size).toBeGreaterThan(20);
    expect(scenes.some((s) => s.width > s.height) && scenes.some((s) => s.width < s.height)).toBe(true);
    expect(new Set(scenes.map((s) => s.background.kind))).toEqual(new Set(['flat', 'gradient', 'noise']));
    expect(scenes.some((s) => s.clutter.length > 0)).toBe(true);
    expect(scenes.filter((s) => s.objects.some((o) => o.occlusion > 0.05)).length).toBeGreaterThan(scenes.length / 10);
    for (const a of ['shape', 'colour', 'size', 'texture'] as const) {
      const values = new Set(scenes.flatMap((s) => s.objects.map((o) => o[a])));
      expect(values.size, a).toBe({ shape: 6, colour: 8, size: 2, texture: 4 }[a]);
    }
  });

  it('gives each background kind its contrast: flat none, noise 30-60 levels, a gradient 50-80 end to end', () => {
    const grey = (c: readonly number[]) => (c[0] + c[1] + c[2]) / 3;
    for (const s of scenes) {
      const [a, b] = s.background.colours;
      const span = Math.abs(grey(a) - grey(b));
      const [lo, hi] = { flat: [0, 0], noise: [30 - 13, 60 + 13], gradient: [50 - 13, 80 + 13] }[s.background.kind];
      expect(span, `${s.id} ${s.background.kind}`).toBeGreaterThanOrEqual(lo);
      expect(span, `${s.id} ${s.background.kind}`).toBeLessThanOrEqual(hi);
      for (const c of [a, b]) for (const v of c) expect(v >= 0 && v <= 255, `${s.id} ${c}`).toBe(true);
    }
    // rendered: along its direction a gradient scene's opposite edges differ by most of its span
    const s = scenes.find((x) => x.background.kind === 'gradient' && x.background.direction[1] === 0)!;
    const img = renderScene({ ...s, objects: [], clutter: [] });
    const column = (x: number) => {
      let sum = 0;
      for (let y = 0; y < s.height; y++) for (let c = 0; c < 3; c++) sum += img.data[(y * s.width + x) * 3 + c];
      return sum / (3 * s.height);
    };
    const [a, b] = s.background.colours;
    expect(Math.abs(column(0) - column(s.width - 1))).toBeGreaterThan(0.9 * Math.abs(grey(a) - grey(b)));
  });

  it('draws objects over the background: a fully covered pixel has the object colour or its shade', () => {
    const s = scenes.find((x) => x.objects.some((o) => o.texture === 'solid' && o.occlusion === 0))!;
    const o = s.objects.find((x) => x.texture === 'solid' && x.occlusion === 0)!;
    const img = renderScene(s);
    const [cx, cy] = [Math.floor(o.x), Math.floor(o.y)];
    const px = Array.from(img.data.subarray((cy * s.width + cx) * 3, (cy * s.width + cx) * 3 + 3));
    expect(px).toEqual(
      {
        red: [215, 35, 35],
        orange: [245, 135, 20],
        yellow: [240, 215, 30],
        green: [40, 165, 60],
        cyan: [30, 195, 210],
        blue: [35, 75, 215],
        purple: [135, 55, 190],
        pink: [245, 120, 185],
      }[o.colour],
    );
  });
});

describe('world: splits and held-out compositions', () => {
  const w = createWorld({ seed: 5, ...small });
  const held = new Set(w.heldOutCompositions.map(([c, s]) => `${c} ${s}`));

  it('holds out one colour per shape by default, each colour and shape still seen in train', () => {
    expect(w.heldOutCompositions).toHaveLength(6);
    expect(new Set(w.heldOutCompositions.map(([, s]) => s)).size).toBe(6);
    expect(new Set(w.heldOutCompositions.map(([c]) => c)).size).toBe(6);
    expect(w.metadata().heldOutCompositions).toEqual(w.heldOutCompositions);
    const seen = new Set(
      Array.from(w.samples('train')).flatMap((s) => s.scene.objects.map((o) => `${o.colour} ${o.shape}`)),
    );
    for (const c of w.config.colours)
      expect(
        [...seen].some((k) => k.startsWith(`${c} `)),
        c,
      ).toBe(true);
    for (const s of w.config.shapes)
      expect(
        [...seen].some((k) => k.endsWith(` ${s}`)),
        s,
      ).toBe(true);
  });

  it('never shows or names a held-out pair in train; val and test have them, flagged novel', () => {
    const pairMention = new RegExp(`\\b(${[...held].map((p) => `${p.replace(' ', ' (?:')}e?s?)`).join('|')})\\b`);
    for (const s of w.samples('train')) {
      for (const o of s.scene.objects) expect(held.has(`${o.colour} ${o.shape}`)).toBe(false);
      const texts = [
        ...s.captions.map((c) => c.text),
        ...s.questions.map((q) => q.question),
        ...s.expressions.map((e) => e.text),
      ];
      for (const t of texts) expect(t, t).not.toMatch(pairMention);
      // "is the star red?": a colour asked of a named shape is a mention too
      for (const q of s.questions) {
        const m = /^is the (?:.* )?(\w+) (\w+)\?$/.exec(q.question);
        if (m) expect(held.has(`${m[2]} ${m[1]}`), q.question).toBe(false);
      }
      expect(s.questions.every((q) => !q.novel) && s.expressions.every((e) => !e.novel)).toBe(true);
    }
    for (let i = 0; i < 40; i++) {
      const p = w.nlvr2('train', i);
      expect(p.statement).not.toMatch(pairMention);
      for (const o of [...p.left.objects, ...p.right.objects]) expect(held.has(`${o.colour} ${o.shape}`)).toBe(false);
    }
    for (const split of ['val', 'test'] as Split[]) {
      const objects = Array.from(w.samples(split)).flatMap((s) => s.scene.objects);
      for (const o of objects) expect(o.novel).toBe(held.has(`${o.colour} ${o.shape}`));
      const novel = objects.filter((o) => o.novel).length / objects.length;
      expect(novel, split).toBeGreaterThan(0.15);
      expect(novel, split).toBeLessThan(0.5);
    }
  });

  it('accepts explicit pairs and rejects ones that would hide a colour or a shape from train', () => {
    const pairs = [
      ['red', 'star'],
      ['blue', 'circle'],
    ] as const;
    expect(createWorld({ heldOutCompositions: pairs }).heldOutCompositions).toEqual([
      ['blue', 'circle'],
      ['red', 'star'],
    ]);
    expect(createWorld({ heldOutCompositions: 0 }).heldOutCompositions).toEqual([]);
    expect(() =>
      createWorld({
        colours: ['red', 'blue'],
        heldOutCompositions: [
          ['red', 'star'],
          ['blue', 'star'],
        ],
      }),
    ).toThrow(/every colour of star/);
    expect(() => createWorld({ heldOutCompositions: 9 })).toThrow(
      /"heldOutCompositions" must be an integer in \[0, 6\]/,
    );
    expect(() => createWorld({ heldOutCompositions: [['mauve' as 'red', 'star']] })).toThrow(
      /heldOutCompositions\[0\]/,
    );
  });

  it('lists detection classes (shapes) and removes held-out ones from the fine-grained view', () => {
    expect(w.classes.map((c) => [c.id, c.name, c.heldOut])).toEqual([
      [1, 'circle', false],
      [2, 'square', false],
      [3, 'triangle', false],
      [4, 'diamond', true],
      [5, 'star', true],
      [6, 'cross', false],
    ]);
    let removed = 0;
    for (const s of w.samples('train', { end: 60 })) {
      const fine = w.fineGrained(s);
      const heldObjects = new Set(
        s.scene.objects.flatMap((o, k) => (['diamond', 'star'].includes(o.shape) ? [k] : [])),
      );
      expect(fine.detections.every((d) => !heldObjects.has(d.object) && !d.heldOut)).toBe(true);
      expect(fine.detections).toHaveLength(s.scene.objects.length - heldObjects.size);
      expect(fine.expressions.every((e) => !heldObjects.has(e.object))).toBe(true);
      expect(fine.captions.flatMap((c) => c.phrases).every((p) => p.objects.every((k) => !heldObjects.has(k)))).toBe(
        true,
      );
      expect(fine.captions.map((c) => c.text)).toEqual(s.captions.map((c) => c.text));
      removed += s.detections.length - fine.detections.length;
    }
    expect(removed).toBeGreaterThan(0);
  });
});

describe('world: configuration', () => {
  it('names the field of a bad setting', () => {
    expect(() => new World({ shapes: [] })).toThrow(/"shapes" must be a non-empty list/);
    expect(() => new World({ colours: ['red', 'teal' as 'red'] })).toThrow(/"colours" has "teal"/);
    expect(() => new World({ objects: [0, 3] })).toThrow(/"objects"/);
    expect(() => new World({ imageSize: [16, 20] })).toThrow(/"imageSize"/);
    expect(() => new World({ radius: { small: [0.1, 0.2], large: [0.15, 0.3] } })).toThrow(/"radius"/);
    expect(() => new World({ splits: { train: 1, val: -1, test: 1 } })).toThrow(/"splits.val"/);
    expect(() => new World({ heldOutClasses: ['circle', 'square', 'triangle', 'diamond', 'star', 'cross'] })).toThrow(
      /"heldOutClasses"/,
    );
    expect(() => new World({ seed: 0.5 })).toThrow(/"seed"/);
    expect(() => createWorld({ preset: 'huge' as 'small' })).toThrow(/unknown preset "huge"/);
    expect(() => createWorld({ preset: 'constructor' as 'small' })).toThrow(/unknown preset "constructor"/);
    const w = createWorld(small);
    expect(() => w.sample('train', 200)).toThrow(/index 200 is outside train \[0, 200\)/);
    expect(() => w.sample('dev' as Split, 0)).toThrow(/unknown split "dev"/);
  });

  it('works with a reduced vocabulary and the small preset', () => {
    const w = createWorld({
      preset: 'small',
      shapes: ['circle', 'square'],
      colours: ['red', 'blue', 'green'],
      textures: ['solid'],
      heldOutClasses: ['square'],
      ...small,
    });
    expect(w.heldOutCompositions).toHaveLength(2);
    expect(w.classes.filter((c) => c.heldOut).map((c) => c.name)).toEqual(['square']);
    // the default held-out classes shrink to the configured shapes (here: star), or to none
    expect(createWorld({ shapes: ['circle', 'star'] }).config.heldOutClasses).toEqual(['star']);
    expect(createWorld({ shapes: ['circle', 'square'] }).config.heldOutClasses).toEqual([]);
    for (const s of w.samples('test', { end: 30 })) {
      expect(Math.min(s.scene.width, s.scene.height)).toBeLessThanOrEqual(80);
      expect(s.scene.objects.length).toBeLessThanOrEqual(4);
      for (const q of s.questions) expect(w.answers[q.type]).toContain(q.answer);
    }
  });
});

const PINNED = ['9794a925 1c0ce60d', 'ff2fd364 8dc8bc49'];
