// The README's custom-loop example is examples/custom-loop.ts word for word, and it runs: a few
// steps of the official objective and optimizer on a tiny model, finite losses, no tensor left over.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tf } from '@fiber-vl/tensor-core';
import { fiberConfig } from '@fiber-vl/fusion';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { customLoop } from '../examples/custom-loop.js';

const pkg = join(__dirname, '..');

describe('README example', () => {
  it('is examples/custom-loop.ts verbatim', () => {
    const readme = readFileSync(join(pkg, 'README.md'), 'utf8');
    const m = /<!-- example: examples\/custom-loop\.ts -->\n```ts\n([\s\S]*?)```/.exec(readme);
    expect(m, 'README has the example block').not.toBeNull();
    expect(m![1]).toBe(readFileSync(join(pkg, 'examples/custom-loop.ts'), 'utf8'));
  });

  it('runs: three steps with finite losses, and frees every tensor', async () => {
    const history = await customLoop(3);
    const before = tf.memory().numTensors;
    expect(history).toHaveLength(3);
    for (const h of history) {
      expect(Number.isFinite(h.itc) && Number.isFinite(h.itm)).toBe(true);
      expect(h.gradNorm).toBeGreaterThan(0);
    }
    await customLoop(1);
    // building a model leaks one tensor today (RobertaEmbeddings' position_ids range, in
    // @fiber-vl/roberta); the loop itself leaves nothing behind
    const probe = tf.memory().numTensors;
    const cfg = fiberConfig('tiny', {
      imageSize: 32,
      maxTextLen: 8,
      hiddenSize: 32,
      roberta: { vocabSize: 64, hiddenSize: 32, intermediateSize: 64, maxPositionEmbeddings: 12 },
    });
    new FiberCoarseModel(cfg, 'pretrain').dispose();
    const constructionLeak = tf.memory().numTensors - probe;
    expect(constructionLeak).toBeLessThanOrEqual(1);
    expect(tf.memory().numTensors - constructionLeak - before).toBe(constructionLeak);
  }, 300_000);
});
