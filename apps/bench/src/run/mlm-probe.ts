// Does the coarse model's fusion read the image? Its MLM head is asked for each colour and shape word
// of the test captions, masked, once with the caption's own image and once with another scene's
// image; the prediction is the best of that attribute's words. A fused text encoder that reads the
// image does better with its own image; one that reads only the caption does the same with both
// (apps/bench/MEASUREMENTS.md, "The coarse stage's MLM does not read the image").
import type { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { tf } from '@fiber-vl/tensor-core';
import { COLOURS, SHAPES } from '@fiber-vl/trainer';
import { maskId } from './coarse-model.js';
import { chunks, type RunContext } from './context.js';
import { coarsePixels, otherScene } from './data.js';
import { MLM_PROBE_ATTRIBUTE_IDS } from './schema.js';

export type MlmProbeAttribute = (typeof MLM_PROBE_ATTRIBUTE_IDS)[number];
const WORDS: Record<MlmProbeAttribute, readonly string[]> = { shape: SHAPES, colour: COLOURS };

export interface MlmProbeResult {
  /** The weights probed ("coarse pre-training"). */
  model: string;
  attribute: MlmProbeAttribute;
  /** Masked words probed (single-token colour or shape words of the test captions). */
  words: number;
  /** Accuracy with the caption's own image, and with another scene's image. */
  ownImage: number;
  otherImage: number;
  /**
   * The better of a uniform guess over the attribute's one-token words and always answering the word
   * most frequent in the train split's captions (scored on the probed words).
   */
  chance: number;
}

interface Item {
  scene: number;
  ids: number[];
  mask: number[];
  position: number;
  /** Index of the true word in the attribute's candidates. */
  truth: number;
  attribute: MlmProbeAttribute;
}

/** Train scenes whose captions give the most frequent word of each attribute (for the chance). */
const CHANCE_TRAIN_SCENES = 1000;

/**
 * The probe on the captions of the first `scenes` test scenes. The other image of scene i is scene
 * (i + floor(scenes / 2)) mod scenes (data.ts otherScene), which may hold the same shape or colour:
 * a model that reads the image gains less than its reading is worth, one that does not gains nothing.
 */
export async function probeMlm(
  ctx: RunContext,
  model: FiberCoarseModel,
  scenes: number,
  name: string,
): Promise<MlmProbeResult[]> {
  const { world, tokenizer, preset } = ctx;
  if (!Number.isInteger(scenes) || scenes < 2 || scenes > world.size('test'))
    throw new RangeError(`MLM probe: needs 2 to ${world.size('test')} test scenes, got ${scenes}`);
  // each attribute's words that are one token (with the leading space they have inside a caption)
  const candidates = Object.fromEntries(
    MLM_PROBE_ATTRIBUTE_IDS.map((a) => [
      a,
      WORDS[a].flatMap((w) => {
        const ids = tokenizer.encode(` ${w}`, { addSpecialTokens: false }).ids;
        return ids.length === 1 ? ids : [];
      }),
    ]),
  ) as Record<MlmProbeAttribute, number[]>;
  for (const a of MLM_PROBE_ATTRIBUTE_IDS)
    if (candidates[a].length < 2)
      throw new Error(
        `MLM probe: the tokenizer has ${candidates[a].length} one-token ${a} word(s) (${WORDS[a].join(', ')}); need 2`,
      );
  const encode = (split: 'train' | 'test', scene: number) =>
    tokenizer.encodeBatch(
      world.sample(split, scene).captions.map((c) => c.text),
      { maxLength: preset.model.maxTextLen, padding: 'max_length' },
    );
  const mask = maskId(tokenizer);
  const items: Item[] = [];
  for (let scene = 0; scene < scenes; scene++)
    for (const e of encode('test', scene))
      e.ids.forEach((id, position) => {
        for (const attribute of MLM_PROBE_ATTRIBUTE_IDS) {
          const truth = candidates[attribute].indexOf(id);
          if (truth < 0) continue;
          const ids = [...e.ids];
          ids[position] = mask;
          items.push({ scene, ids, mask: e.attentionMask, position, truth, attribute });
        }
      });
  const majority = trainMajority(candidates, Math.min(CHANCE_TRAIN_SCENES, world.size('train')), encode);
  const wasTraining = model.training;
  model.eval();
  try {
    const own = await accuracy(model, ctx, items, candidates, (scene) => scene);
    const other = await accuracy(model, ctx, items, candidates, (scene) => otherScene(scene, scenes));
    const results = MLM_PROBE_ATTRIBUTE_IDS.map((attribute) => {
      const mine = items.filter((it) => it.attribute === attribute);
      if (mine.length === 0)
        throw new Error(`MLM probe: no ${attribute} word in the captions of ${scenes} test scenes`);
      const n = mine.length;
      const hitsOfMajority = mine.filter((it) => it.truth === majority[attribute]).length;
      return {
        model: name,
        attribute,
        words: n,
        ownImage: own[attribute] / n,
        otherImage: other[attribute] / n,
        chance: Math.max(1 / candidates[attribute].length, hitsOfMajority / n),
      };
    });
    ctx.log(
      `[seed ${ctx.seed}] MLM probe after ${name}: ${results.map((r) => `${r.attribute} ${r.ownImage.toFixed(2)} own image / ${r.otherImage.toFixed(2)} another (${r.chance.toFixed(2)}, ${r.words} words)`).join(', ')}`,
    );
    return results;
  } finally {
    if (wasTraining) model.train();
  }
}

/** Per attribute, the candidate index of its most frequent word in the first `scenes` train scenes' captions. */
function trainMajority(
  candidates: Record<MlmProbeAttribute, number[]>,
  scenes: number,
  encode: (split: 'train', scene: number) => { ids: number[] }[],
): Record<MlmProbeAttribute, number> {
  const counts = Object.fromEntries(MLM_PROBE_ATTRIBUTE_IDS.map((a) => [a, candidates[a].map(() => 0)])) as Record<
    MlmProbeAttribute,
    number[]
  >;
  for (let scene = 0; scene < scenes; scene++)
    for (const e of encode('train', scene))
      for (const id of e.ids)
        for (const a of MLM_PROBE_ATTRIBUTE_IDS) {
          const k = candidates[a].indexOf(id);
          if (k >= 0) counts[a][k]++;
        }
  return Object.fromEntries(
    MLM_PROBE_ATTRIBUTE_IDS.map((a) => [a, counts[a].indexOf(Math.max(...counts[a]))]),
  ) as Record<MlmProbeAttribute, number>;
}

/** Hits per attribute when each item is shown the image of test scene `image(item.scene)`. */
async function accuracy(
  model: FiberCoarseModel,
  { world, preset }: RunContext,
  items: Item[],
  candidates: Record<MlmProbeAttribute, number[]>,
  image: (scene: number) => number,
): Promise<Record<MlmProbeAttribute, number>> {
  const hits = Object.fromEntries(MLM_PROBE_ATTRIBUTE_IDS.map((a) => [a, 0])) as Record<MlmProbeAttribute, number>;
  for (const [a, b] of chunks(items.length, 64)) {
    const part = items.slice(a, b);
    // the MLM logits at each item's masked position: [part, V]
    const picked = tf.tidy(() => {
      const pixels = coarsePixels(
        world,
        'test',
        part.map((it) => image(it.scene)),
        preset.model.imageSize,
      );
      const ids = tf.tensor2d(
        part.map((it) => it.ids),
        undefined,
        'int32',
      );
      const masks = tf.tensor2d(
        part.map((it) => it.mask),
        undefined,
        'int32',
      );
      const { logits } = model.mlm(pixels, ids, masks);
      const [, L, V] = logits.shape as [number, number, number];
      const rows = tf.tensor1d(
        part.map((it, n) => n * L + it.position),
        'int32',
      );
      return tf.gather(tf.reshape(logits, [-1, V]), rows);
    });
    let scores: number[][];
    try {
      scores = (await picked.array()) as number[][];
    } finally {
      picked.dispose();
    }
    part.forEach((it, n) => {
      const words = candidates[it.attribute];
      let best = 0;
      for (let k = 1; k < words.length; k++) if (scores[n][words[k]] > scores[n][words[best]]) best = k;
      if (best === it.truth) hits[it.attribute]++;
    });
  }
  return hits;
}
