import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSafetensors, tf } from '@fiber-vl/tensor-core';
import { useBackend } from '@fiber-vl/tensor-core/testing';
import { fiberConfigFromFixture } from './fixture-config.js';
import { FiberCoarseModel } from './model.js';
import { beamSearchCaptions, captionForward, captionImageEmbeds, greedyCaptions } from './caption.js';

const root = join(__dirname, '../../../fixtures/fiber/set-b');

describe('greedy captioning', () => {
  beforeAll(() => useBackend('wasm'));
  it('takes the most likely non-<mask> token at every step until </s> or <pad>', async () => {
    const { config, heads } = fiberConfigFromFixture(JSON.parse(readFileSync(join(root, 'config.json'), 'utf8')));
    const model = new FiberCoarseModel(config, heads);
    const dict = await loadSafetensors(join(root, 'model.safetensors'));
    model.loadStateDict(dict);
    tf.dispose([...dict.values()]);
    model.eval();
    const inputs = await loadSafetensors(join(root, 'inputs.safetensors'), (k) => k === 'pixel_values');
    const pixels = tf.slice(inputs.get('pixel_values')!, [0, 0, 0, 0], [1, -1, -1, -1]);
    const [tokens] = await greedyCaptions(model, pixels, { maxLength: 8 });
    // replay: feed the chosen prefix and check each choice is the argmax (with <mask> = 299 excluded)
    const image = captionImageEmbeds(model, pixels);
    const row = [0, ...new Array(7).fill(1)];
    for (let i = 0; i < 7; i++) {
      const { logits } = captionForward(model, image, tf.tensor2d([row], [1, 8], 'int32'));
      const step = Array.from((await tf.slice(logits, [0, i, 0], [1, 1, -1]).data()) as Float32Array);
      step[299] = -Infinity;
      const best = step.indexOf(Math.max(...step));
      row[i + 1] = best;
      if (best === 1 || best === 2) break;
    }
    expect(tokens).toEqual(row.slice(1).map((t) => (t === 2 || t === 0 ? 1 : t)));
    // options that cannot decode are named, and nothing is left behind (the image embeddings were)
    const before = tf.memory().numTensors;
    for (const [opts, message] of [
      [{ maxLength: 0 }, 'maxLength must be an integer in [2, '],
      [{ maxLength: 2.5 }, 'maxLength must be an integer in [2, '],
      [{ beamSize: 0 }, 'beamSize must be an integer in [1, 300], got 0'],
      [{ beamSize: Number.NaN }, 'beamSize must be an integer in [1, 300], got NaN'],
      [{ eos: 300 }, 'eos must be an integer in [0, 299], got 300'],
    ] as const)
      await expect(beamSearchCaptions(model, pixels, opts)).rejects.toThrow(`beamSearchCaptions: ${message}`);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
