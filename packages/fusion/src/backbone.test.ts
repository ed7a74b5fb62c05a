// The composed coarse backbone: presets, input checks, train-mode randomness and a model-level
// gradient check through the fused blocks (image->text and text->image attention).
import { beforeAll, describe, expect, it } from 'vitest';
import { DropPath, Dropout, Generator, disposeOutput, tf } from '@fiber-vl/tensor-core';
import { gradCheckParameters, useBackend } from '@fiber-vl/tensor-core/testing';
import { FiberCoarseBackbone } from './backbone.js';
import { fiberConfig, type FiberConfigOptions } from './config.js';

const config = (o: FiberConfigOptions = {}) =>
  fiberConfig('tiny', { imageSize: 32, roberta: { vocabSize: 40 }, maxTextLen: 8, ...o });

describe('FiberCoarseBackbone', () => {
  beforeAll(() => useBackend('cpu'));

  it('its stochastic layers are the official ones, by name and rate', () => {
    // From the official code (coarse_grained/fiber/modules): swin_transformer.py gives every block a
    // drop_path at torch.linspace(0, drop_path_rate, sum(depths)), fused blocks included, and runs
    // attn_drop / proj_drop / the Mlp's drop at 0 (FIBER passes no drop_rate); roberta.py has the
    // hidden dropout after the embeddings, the attention output and the layer output, the
    // attention-probs dropout in self-attention, and both again in crossattention_t2i of the fused
    // (last numFuseBlock) layers; the heads have none. Modules with p = 0 are left out.
    const cfg = config({ roberta: { vocabSize: 40, hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.2 } });
    const model = new FiberCoarseBackbone(cfg, new Generator(1));
    const got = new Map<string, number>();
    for (const [name, m] of model.namedModules())
      if ((m instanceof Dropout || m instanceof DropPath) && m.p > 0) got.set(name, m.p);
    const expected = new Map<string, number>();
    const total = cfg.swin.depths.reduce((a, b) => a + b, 0);
    let k = 0;
    cfg.swin.depths.forEach((depth, stage) => {
      for (let b = 0; b < depth; b++, k++) {
        const rate = (cfg.swin.dropPathRate * k) / (total - 1);
        if (rate > 0) expected.set(`vit_model.layers.${stage}.blocks.${b}.drop_path`, rate);
      }
    });
    const text = 'text_transformer';
    expected.set(`${text}.embeddings.dropout`, 0.1);
    const layers = cfg.roberta.numHiddenLayers;
    for (let l = 0; l < layers; l++) {
      const at = `${text}.encoder.layer.${l}`;
      expected.set(`${at}.attention.self.dropout`, 0.2);
      expected.set(`${at}.attention.output.dropout`, 0.1);
      if (l >= layers - cfg.numFuseBlock) {
        expected.set(`${at}.crossattention_t2i.self.dropout`, 0.2);
        expected.set(`${at}.crossattention_t2i.output.dropout`, 0.1);
      }
      expected.set(`${at}.output.dropout`, 0.1);
    }
    expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [name, p] of expected) expect(got.get(name), name).toBeCloseTo(p, 6);
    model.dispose();
  });

  it('the tiny preset builds and runs both passes with the shapes of its config', () => {
    const model = new FiberCoarseBackbone(config(), new Generator(1)).eval();
    const px = new Generator(2).normal([2, 3, 32, 32]);
    const ids = tf.tensor2d(
      [
        [0, 5, 6, 2, 1, 1],
        [0, 7, 2, 1, 1, 1],
      ],
      undefined,
      'int32',
    );
    const mask = tf.tensor2d(
      [
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 0, 0, 0],
      ],
      undefined,
      'int32',
    );
    const f = model.fused(px, ids, mask);
    expect([f.textFeats.shape, f.imageFeats.shape, f.clsFeats.shape]).toEqual([
      [2, 6, 64],
      [2, 1, 64],
      [2, 128],
    ]);
    const img = model.encodeImage(px);
    const txt = model.encodeText(ids, mask);
    expect([img.imageCls.shape, txt.textCls.shape]).toEqual([
      [2, 64],
      [2, 64],
    ]);
    disposeOutput([f, img, txt, px, ids, mask]);
    model.dispose();
  });

  it("starts FIBER's added layers as FIBER does: N(0, 0.02) weights, zero biases, unit norms, closed gates", async () => {
    const model = new FiberCoarseBackbone(config(), new Generator(3));
    // the transforms and poolers (and the text pooler), the Swin blocks' image->text attention, the
    // text layers' crossattention
    const added =
      /^cross_modal_|^text_transformer\.pooler\.|\.(qkv_text_i2t|qkv_i2t|proj_i2t|norm_i2t_i)\.|\.crossattention_t2i\./;
    const weights: number[] = [];
    let checked = 0;
    for (const [name, p] of model.namedParameters()) {
      const v = Array.from((await p.value.data()) as Float32Array);
      if (/alpha_(i2t|t2i)$/.test(name)) expect(v, name).toEqual([0]);
      if (!added.test(name)) continue;
      checked++;
      if (/LayerNorm\.weight$|norm_i2t_i\.weight$/.test(name)) expect(new Set(v), name).toEqual(new Set([1]));
      else if (name.endsWith('.bias')) expect(new Set(v), name).toEqual(new Set([0]));
      else weights.push(...v);
    }
    expect(checked).toBeGreaterThan(40);
    const mean = weights.reduce((a, b) => a + b, 0) / weights.length;
    const sd = Math.sqrt(weights.reduce((a, b) => a + (b - mean) ** 2, 0) / weights.length);
    expect(Math.abs(mean)).toBeLessThan(5e-4);
    expect(sd).toBeGreaterThan(0.0195);
    expect(sd).toBeLessThan(0.0205);
    // the backbones' own layers keep PyTorch's default (a pre-trained checkpoint replaces them)
    const qkv = (await model.vitModel.layers.at(0).blocks.at(0).attn.qkv.weight.value.data()) as Float32Array;
    const bound = 1 / Math.sqrt(16);
    expect(Math.max(...Array.from(qkv, Math.abs))).toBeGreaterThan(0.9 * bound);
    model.dispose();
  });

  it("initializerRange sets the added layers' std; null leaves them at PyTorch's default, drawing as before", async () => {
    const added = /^cross_modal_|\.(qkv_text_i2t|qkv_i2t|proj_i2t)\.|\.crossattention_t2i\./;
    const stats = async (model: FiberCoarseBackbone) => {
      const w: number[] = [];
      let nonZeroBias = false;
      for (const [name, p] of model.namedParameters()) {
        if (!added.test(name) || /LayerNorm/.test(name)) continue;
        const v = Array.from((await p.value.data()) as Float32Array);
        if (name.endsWith('.weight')) w.push(...v);
        else nonZeroBias ||= v.some((x) => x !== 0);
      }
      model.dispose();
      return { sd: Math.sqrt(w.reduce((a, b) => a + b * b, 0) / w.length), nonZeroBias };
    };
    const wide = await stats(new FiberCoarseBackbone(config({ initializerRange: 0.05 }), new Generator(3)));
    expect(wide.sd).toBeGreaterThan(0.049);
    expect(wide.sd).toBeLessThan(0.051);
    expect(wide.nonZeroBias).toBe(false);
    // kaiming-uniform: std 1/sqrt(3 fan_in), fan_in 16-64 here, so 0.07-0.14; biases drawn too
    const torch = await stats(new FiberCoarseBackbone(config({ initializerRange: null }), new Generator(3)));
    expect(torch.sd).toBeGreaterThan(0.06);
    expect(torch.nonZeroBias).toBe(true);
  });

  it('names the argument and both shapes when image batch, text batch or mask disagree', () => {
    const model = new FiberCoarseBackbone(config());
    const px = tf.zeros([2, 3, 32, 32]);
    const ids = tf.zeros([3, 4], 'int32');
    const mask = tf.ones([3, 5], 'int32');
    expect(() => model.fused(px, ids, tf.ones([3, 4], 'int32'))).toThrow(
      'FIBER: pixels [2, 3, 32, 32] hold 2 images but inputIds [3, 4] hold 3 texts',
    );
    expect(() => model.fused(tf.zeros([3, 3, 32, 32]), ids, mask)).toThrow(
      'FIBER: attentionMask [3, 5] does not match inputIds [3, 4]',
    );
    expect(() => model.fused(tf.zeros([3, 3, 48, 48]), ids, tf.ones([3, 4], 'int32'))).toThrow(
      /pixels are 48x48, but the model is built for 32x32 images/,
    );
    tf.dispose([px, ids, mask]);
    model.dispose();
  });

  it('a pass over indexed pairs equals the pass over the gathered inputs, values and gradients', () => {
    const rng = new Generator(4);
    const model = new FiberCoarseBackbone(config(), rng).eval();
    // open the gates, so that each pair's output depends on both of its inputs
    for (const [name, p] of model.namedParameters())
      if (/alpha_(i2t|t2i)$/.test(name)) p.value.assign(tf.scalar(0.7).reshape([1]));
    const px = rng.normal([4, 3, 32, 32]); // no pair names image 3: it is skipped
    const ids = tf.tensor2d(
      [
        [0, 5, 6, 2, 1],
        [0, 7, 2, 1, 1],
      ],
      undefined,
      'int32',
    );
    const mask = tf.tensor2d(
      [
        [1, 1, 1, 1, 0],
        [1, 1, 1, 0, 0],
      ],
      undefined,
      'int32',
    );
    const pairs = { image: [2, 0, 2, 1, 0], text: [0, 0, 1, 1, 1] };
    // and one text against every image (re-ranking): text 0 is named by no pair
    const oneText = { image: [0, 1, 2, 3, 1], text: [1, 1, 1, 1, 1] };
    const r = rng.normal([5, 128]);
    const params = model
      .namedParameters()
      .filter(([n]) =>
        /layers\.0\.blocks\.0\.attn\.qkv\.weight$|encoder\.layer\.0\.attention\.self\.query\.weight$|layers\.3\.blocks\.0\.attn\.qkv_text_i2t\.weight$/.test(
          n,
        ),
      );
    expect(params).toHaveLength(3); // below the fusion (image, text) and in it
    const run = (f: () => ReturnType<typeof model.fused>) =>
      tf.variableGrads(
        () => tf.tidy(() => tf.sum(tf.mul(f().clsFeats, r)) as tf.Scalar),
        params.map(([, p]) => p.value),
      );
    const before = tf.memory().numTensors;
    for (const set of [pairs, oneText]) {
      const a = run(() => model.fused(px, ids, mask, set));
      const g = tf.tidy(() => {
        const t = tf.tensor1d(set.text, 'int32');
        return [tf.gather(px, tf.tensor1d(set.image, 'int32')), tf.gather(ids, t), tf.gather(mask, t)];
      });
      const b = run(() => model.fused(g[0], g[1], g[2]));
      tf.dispose(g);
      expect(Math.abs(a.value.dataSync()[0] - b.value.dataSync()[0])).toBeLessThan(1e-4);
      for (const [name, p] of params) {
        const ga = a.grads[p.value.name].dataSync();
        const gb = b.grads[p.value.name].dataSync();
        expect(tf.util.sizeFromShape(a.grads[p.value.name].shape), name).toBeGreaterThan(0);
        const scale = Math.max(...Array.from(gb, Math.abs));
        expect(scale, name).toBeGreaterThan(0);
        expect(Math.max(...Array.from(ga, (v, k) => Math.abs(v - gb[k]))) / scale, name).toBeLessThan(1e-4);
      }
      tf.dispose([a.value, b.value, ...Object.values(a.grads), ...Object.values(b.grads)]);
    }
    expect(tf.memory().numTensors).toBe(before);
    const f = model.fused(px, ids, mask, pairs);
    expect(f.textFeats.shape).toEqual([5, 5, 64]);
    disposeOutput(f);
    expect(() => model.fused(px, ids, mask, { image: [0, 1], text: [0] })).toThrow(
      'FIBER: pairs has 2 image and 1 text indices; they must be equal in number, at least one',
    );
    expect(() => model.fused(px, ids, mask, { image: [], text: [] })).toThrow(/at least one/);
    expect(() => model.fused(px, ids, mask, { image: [0, 4], text: [0, 1] })).toThrow(
      'FIBER: pairs.image[1] = 4 is outside the 4 rows of the image batch',
    );
    expect(() => model.fused(px, ids, mask, { image: [0, 1], text: [0.5, 1] })).toThrow(
      'FIBER: pairs.text[0] = 0.5 is outside the 2 rows of the text batch',
    );
    const short = tf.ones([2, 4], 'int32');
    expect(() => model.fused(px, ids, short, pairs)).toThrow(/attentionMask \[2, 4\] does not match/);
    short.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([px, ids, mask, r]);
    model.dispose();
  });

  it('in training with dropout below the fusion, each pair draws its own masks, as over the gathered inputs', () => {
    const rng = new Generator(8);
    const model = new FiberCoarseBackbone(
      config({ roberta: { vocabSize: 40, hiddenDropoutProb: 0.3 }, swin: { dropPathRate: 0.3 } }),
      rng,
    ).train();
    const px = rng.normal([2, 3, 32, 32]);
    const ids = tf.tensor2d([[0, 5, 6, 2, 1]], undefined, 'int32');
    const mask = tf.tensor2d([[1, 1, 1, 1, 0]], undefined, 'int32');
    const pairs = { image: [0, 1, 0, 1], text: [0, 0, 0, 0] };
    const state = rng.getState();
    const a = model.fused(px, ids, mask, pairs);
    rng.setState(state);
    const g = tf.tidy(() => {
      const t = tf.tensor1d(pairs.text, 'int32');
      return [tf.gather(px, tf.tensor1d(pairs.image, 'int32')), tf.gather(ids, t), tf.gather(mask, t)];
    });
    const b = model.fused(g[0], g[1], g[2]);
    const [va, vb] = [a.clsFeats.dataSync(), b.clsFeats.dataSync()];
    va.forEach((v, k) => expect(v).toBe(vb[k]));
    // pairs 0 and 2 (the same image and text) drew different masks
    const row = (v: ArrayLike<number>, k: number) => Array.from(v).slice(k * 128, (k + 1) * 128);
    expect(row(va, 0)).not.toEqual(row(va, 2));
    disposeOutput([a, b, ...g, px, ids, mask]);
    model.dispose();
  });

  it('freezeBelowFusion freezes what runs before the first fused pair, and nothing after', () => {
    const model = new FiberCoarseBackbone(config(), new Generator(6)).freezeBelowFusion();
    // tiny: Swin depths [1, 1, 2, 2], text layers 4, fusion in stage 2 block 1, stage 3 and text layers 1-3
    const below =
      /^vit_model\.(patch_embed|layers\.[01]\.|layers\.2\.blocks\.0\.)|^text_transformer\.(embeddings|encoder\.layer\.0\.)/;
    const params = model.namedParameters();
    const frozen = params.filter(([, p]) => !p.requiresGrad).map(([n]) => n);
    expect(frozen.length).toBeGreaterThan(0);
    expect(frozen).toEqual(params.map(([n]) => n).filter((n) => below.test(n)));
    // stage 1's PatchMerging (before stage 2) is below the fusion; stage 2's is not
    expect(frozen).toContain('vit_model.layers.1.downsample.reduction.weight');
    expect(frozen).not.toContain('vit_model.layers.2.downsample.reduction.weight');
    // nothing of the fused blocks (layer 0's alpha_t2i is an unused official key of an unfused layer)
    expect(
      frozen.filter((n) => /cross_modal|layers\.3\.|layers\.2\.blocks\.1\.|encoder\.layer\.[123]\./.test(n)),
    ).toEqual([]);
    model.dispose();
  });

  it('gradients through the fused blocks match finite differences', async () => {
    const rng = new Generator(3);
    const model = new FiberCoarseBackbone(config(), rng).eval();
    // open the gates (they start at 0, which would hide the cross-attention from the gradient)
    for (const [name, p] of model.namedParameters())
      if (/alpha_(i2t|t2i)$/.test(name)) p.value.assign(tf.scalar(0.7).reshape([1]));
    const px = rng.normal([1, 3, 32, 32]);
    const ids = tf.tensor2d([[0, 5, 6, 2, 1]], undefined, 'int32');
    const mask = tf.tensor2d([[1, 1, 1, 1, 0]], undefined, 'int32');
    const r1 = rng.normal([1, 5, 64]);
    const r2 = rng.normal([1, 128]);
    const loss = () =>
      tf.tidy(() => {
        const f = model.fused(px, ids, mask);
        return tf.add(tf.sum(tf.mul(f.textFeats, r1)), tf.sum(tf.mul(f.clsFeats, r2))) as tf.Scalar;
      });
    const fusedBlock = 'vit_model.layers.2.blocks.1.attn';
    const fusedLayer = 'text_transformer.encoder.layer.1';
    const names = [
      `${fusedBlock}.alpha_i2t`,
      `${fusedBlock}.qkv_text_i2t.weight`,
      `${fusedBlock}.qkv_i2t.weight`,
      `${fusedBlock}.norm_i2t_i.weight`,
      `${fusedBlock}.proj_i2t.bias`,
      `${fusedLayer}.alpha_t2i`,
      `${fusedLayer}.crossattention_t2i.self.key.weight`,
      `${fusedLayer}.crossattention_t2i.output.dense.weight`,
    ];
    const params = model.namedParameters().filter(([n]) => names.includes(n));
    expect(params.map(([n]) => n).sort()).toEqual([...names].sort());
    const r = await gradCheckParameters(loss, params, { maxElements: 3 });
    expect(r.ok).toBe(true);
    tf.dispose([px, ids, mask, r1, r2]);
    model.dispose();
  });
});
