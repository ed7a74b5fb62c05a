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
import { coarsePixels } from './data.js';
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
  /** The better of a uniform guess and always answering the most frequent probed word. */
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

/** The probe on the captions of the first `scenes` test scenes; the other image of scene i is scene i + scenes/2. */
export async function probeMlm(
  ctx: RunContext,
  model: FiberCoarseModel,
  scenes: number,
  name: string,
): Promise<MlmProbeResult[]> {
  const { world, tokenizer, preset } = ctx;
  if (scenes < 2) throw new RangeError(`MLM probe: needs at least 2 test scenes, got ${scenes}`);
  // each attribute's words that are one token (with the leading space they have inside a caption)
  const candidates = {} as Record<MlmProbeAttribute, number[]>;
  for (const a of MLM_PROBE_ATTRIBUTE_IDS)
    candidates[a] = WORDS[a]
      .map((w) => tokenizer.encode(` ${w}`, { addSpecialTokens: false }).ids)
      .filter((ids) => ids.length === 1)
      .map((ids) => ids[0]);
  const mask = maskId(tokenizer);
  const items: Item[] = [];
  for (let scene = 0; scene < scenes; scene++) {
    const texts = world.sample('test', scene).captions.map((c) => c.text);
    for (const e of tokenizer.encodeBatch(texts, { maxLength: preset.model.maxTextLen, padding: 'max_length' }))
      e.ids.forEach((id, position) => {
        for (const attribute of MLM_PROBE_ATTRIBUTE_IDS) {
          const truth = candidates[attribute].indexOf(id);
          if (truth < 0) continue;
          const ids = [...e.ids];
          ids[position] = mask;
          items.push({ scene, ids, mask: e.attentionMask, position, truth, attribute });
        }
      });
  }
  const wasTraining = model.training;
  model.eval();
  try {
    const accuracy = async (shift: number) => {
      const hits = Object.fromEntries(MLM_PROBE_ATTRIBUTE_IDS.map((a) => [a, 0])) as Record<MlmProbeAttribute, number>;
      for (const [a, b] of chunks(items.length, 64)) {
        const part = items.slice(a, b);
        const picked = tf.tidy(() => {
          const pixels = coarsePixels(
            world,
            'test',
            part.map((it) => (it.scene + shift) % scenes),
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
          const { logits, textFeats } = model.mlm(pixels, ids, masks);
          textFeats.dispose();
          const V = logits.shape[2] as number;
          const rows = tf.tensor1d(
            part.map((it, n) => n * logits.shape[1]! + it.position),
            'int32',
          );
          return tf.gather(tf.reshape(logits, [-1, V]), rows);
        });
        const scores = (await picked.array()) as number[][];
        picked.dispose();
        part.forEach((it, n) => {
          const words = candidates[it.attribute];
          let best = 0;
          for (let k = 1; k < words.length; k++) if (scores[n][words[k]] > scores[n][words[best]]) best = k;
          if (best === it.truth) hits[it.attribute]++;
        });
      }
      return hits;
    };
    const own = await accuracy(0);
    const other = await accuracy(Math.floor(scenes / 2));
    return MLM_PROBE_ATTRIBUTE_IDS.flatMap((attribute) => {
      const mine = items.filter((it) => it.attribute === attribute);
      if (mine.length === 0) return [];
      const counts = new Map<number, number>();
      for (const it of mine) counts.set(it.truth, (counts.get(it.truth) ?? 0) + 1);
      const n = mine.length;
      return [
        {
          model: name,
          attribute,
          words: n,
          ownImage: own[attribute] / n,
          otherImage: other[attribute] / n,
          chance: Math.max(1 / candidates[attribute].length, Math.max(...counts.values()) / n),
        },
      ];
    });
  } finally {
    if (wasTraining) model.train();
  }
}
