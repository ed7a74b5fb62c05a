// ATSS assignment and the grounding losses: hand-computed cases, finite-difference gradients, and
// one full loss step (assignment, targets, loss terms, gradients) against the PyTorch fixture
// written by scripts/fixtures/make_fine_loss_fixture.py.
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { SafetensorsFile, tf } from '@fiber-vl/tensor-core';
import { expectNoTensorGrowth, gradCheck, testBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import { generateAnchors } from './anchors.js';
import { type FineTarget, atssAssign, atssTargets, centernessTargets } from './atss.js';
import { encodeBoxes } from './box-coder.js';
import { atssLoss, flattenHeadOutputs, giouLoss, tokenSigmoidFocalLoss } from './losses.js';
import { FIXTURE_DIR, maxAbs } from './test-fixtures.js';

const SIZES = [16, 8, 4, 2, 1];
const anchors = generateAnchors(SIZES.map((s) => [s, s] as [number, number]));
// the anchors of a 64 x 64 input (P3-P7), for the whole-loss tests
const small = generateAnchors([
  [8, 8],
  [4, 4],
  [2, 2],
  [1, 1],
  [1, 1],
]);
const A = small.reduce((s, l) => s + l.length / 4, 0);

describe('ATSS assignment (plain arrays)', () => {
  it('picks the top-9 nearest per level, IoU >= mean + std, centre inside, highest IoU across GTs', () => {
    // the GT is the P3 anchor at (x, y) = (2, 2) itself: IoU 1
    const a = anchors[0];
    const k = (2 * 16 + 2) * 4;
    const box = Array.from(a.subarray(k, k + 4));
    const res = atssAssign(anchors, box);
    expect(res.gtIndex[2 * 16 + 2]).toBe(0);
    expect(res.gtIou[2 * 16 + 2]).toBe(1);
    // every positive is a candidate with its centre strictly inside the box and IoU >= the threshold
    for (const p of res.positives) {
      expect(res.gtIou[p]).toBeGreaterThanOrEqual(res.iouThresholds[0]);
      const all = anchors.flatMap((l) => Array.from(l));
      const [cx, cy] = [(all[4 * p] + all[4 * p + 2]) / 2, (all[4 * p + 1] + all[4 * p + 3]) / 2];
      expect(Math.min(cx - box[0], cy - box[1], box[2] - cx, box[3] - cy)).toBeGreaterThan(0.01);
    }
    // two identical GTs: the tie goes to the first
    const twice = atssAssign(anchors, [...box, ...box]);
    expect(Array.from(twice.gtIndex)).toEqual(Array.from(res.gtIndex));
    // no GT: every anchor is negative
    const none = atssAssign(anchors, []);
    expect(none.positives).toEqual([]);
    expect(none.gtIndex.every((g) => g === -1)).toBe(true);
  });

  it('float64 GT boxes are read as the float32 tensor the official code holds them in', () => {
    // 40 random boxes with many decimals: their thresholds and IoUs are those of their float32 copies
    let seed = 7;
    const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 120;
    const gt = Array.from({ length: 40 }, () => {
      const [x, y] = [rand(), rand()];
      return [x, y, x + 4 + rand() / 3, y + 4 + rand() / 3];
    }).flat();
    const wide = atssAssign(anchors, gt);
    const narrow = atssAssign(anchors, Float32Array.from(gt));
    expect(Array.from(wide.iouThresholds)).toEqual(Array.from(narrow.iouThresholds));
    expect(Array.from(wide.gtIou)).toEqual(Array.from(narrow.gtIou));
    expect(Array.from(wide.gtIndex)).toEqual(Array.from(narrow.gtIndex));
  });

  it('a single candidate gives an unbiased std of NaN, so nothing is positive (torch.std semantics)', () => {
    const res = atssAssign([anchors[4]], [0, 0, 127, 127]);
    expect(Number.isNaN(res.iouThresholds[0])).toBe(true);
    expect(res.positives).toEqual([]);
  });

  it('centerness targets: 1 at the centre, else sqrt of side ratios; "no object" on the last token', () => {
    const anc = [0, 0, 9, 9, 0, 0, 9, 9];
    const boxes = [-5.5, -5.5, 14.5, 14.5, -1.5, -5.5, 14.5, 14.5];
    const c = centernessTargets(encodeBoxes(boxes, anc), anc);
    expect(c[0]).toBeCloseTo(1, 5);
    // centre 4.5: l = 6, r = 10, t = b = 10 -> sqrt(0.6)
    expect(c[1]).toBeCloseTo(Math.sqrt(0.6), 5);
    const t = atssTargets(anchors, { boxes: [20, 20, 83, 83], positiveMap: [0, 0.5, 0.5, 0] }, 4);
    const neg = t.gtIndex.findIndex((g) => g < 0);
    expect(Array.from(t.tokenTargets.subarray(neg * 4, neg * 4 + 4))).toEqual([0, 0, 0, 1]);
    const pos = t.positives[0];
    expect(Array.from(t.tokenTargets.subarray(pos * 4, pos * 4 + 4))).toEqual([0, 1, 1, 0]);
    expect(() => atssTargets(anchors, { boxes: [20, 20, 83, 83], positiveMap: [1, 0] }, 4)).toThrow(
      /positive map has 2 values, expected 1 boxes x 4 tokens/,
    );
    expect(() => atssAssign(anchors, [10, 10, 5, 20])).toThrow(/GT box 0 \[10, 10, 5, 20\] is not a finite xyxy box/);
  });
});

const { names } = await testBackends();

async function readFixture() {
  const st = await SafetensorsFile.open(`${FIXTURE_DIR}/atss-loss-step.safetensors`);
  const get = async (name: string) => {
    const raw = await st.readRaw(name);
    return {
      shape: raw.shape,
      data: raw.data instanceof BigInt64Array ? Float64Array.from(raw.data, Number) : Float64Array.from(raw.data),
    };
  };
  return { st, get };
}

describe.each(names)('grounding losses on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('token focal loss equals the hand-computed value, masks tokens, and has correct gradients', async () => {
    // p = sigmoid(0) = 0.5 for a positive: 0.25 * ln 2 * 0.25; negative at x = ln 3 (p = 0.75): 0.75 * ln 4 * 0.5625
    const logits = tf.tensor3d([[[0, Math.log(3), 5]]]);
    const targets = tf.tensor3d([[[1, 0, 1]]]);
    const value = (await tokenSigmoidFocalLoss(logits, targets, tf.tensor2d([[1, 1, 0]])).data())[0];
    expect(value).toBeCloseTo(0.25 * Math.LN2 * 0.25 + 0.75 * Math.log(4) * 0.5625, 5);
    const x = tf.randomNormal([2, 3, 4], 0, 2, 'float32', 3);
    const t = tf.tensor3d(
      Array.from({ length: 24 }, (_, i) => (i % 5 === 0 ? 1 : 0)),
      [2, 3, 4],
    );
    const mask = tf.tensor2d([
      [1, 1, 1, 0],
      [1, 1, 0, 0],
    ]);
    expect((await gradCheck((l) => tokenSigmoidFocalLoss(l, t, mask), [x], { eps: 1e-2 })).ok).toBe(true);
    expect(() => tokenSigmoidFocalLoss(x, t, tf.tensor2d([[1, 1]]))).toThrow(/text mask \[1, 2\] \[B, T\]/);
    tf.dispose([logits, targets, x, t, mask]);
  });

  it('GIoU loss: 0 for a perfect box, the closed form for disjoint boxes, correct gradients', async () => {
    const anc = tf.tensor2d([
      [0, 0, 9, 9],
      [100, 100, 131, 131],
    ]);
    const target = tf.tensor2d(
      Array.from(encodeBoxes([0, 0, 9, 9, 100, 100, 131, 131], [0, 0, 9, 9, 100, 100, 131, 131])),
      [2, 4],
    );
    expect((await giouLoss(target, target, anc).data())[0]).toBeCloseTo(0, 5);
    // pred = anchor [0,0,9,9] vs target [20,0,29,9]: IoU 0, enclosing 29x9, union 162: giou = -(261-162)/261
    const a1 = tf.tensor2d([[0, 0, 9, 9]]);
    const far = tf.tensor2d(Array.from(encodeBoxes([20, 0, 29, 9], [0, 0, 9, 9])), [1, 4]);
    const value = (await giouLoss(tf.zeros([1, 4]), far, a1).data())[0];
    expect(value).toBeCloseTo(1 + (261 - 162) / 261, 4);
    const pred = tf.tensor2d([
      [0.4, -0.3, 0.2, 0.1],
      [-0.2, 0.5, -0.3, 0.4],
    ]);
    const w = tf.tensor1d([0.7, 0.4]);
    expect((await gradCheck((p) => giouLoss(p, target, anc, w), [pred], { eps: 1e-2 })).ok).toBe(true);
    tf.dispose([anc, target, a1, far, pred, w]);
  });

  it('one loss step equals PyTorch: assignment, targets, losses, gradients (3 images, one without GT)', async () => {
    const { st, get } = await readFixture();
    onTestFinished(() => st.close());
    const B = 3;
    const ref = await get('anchors');
    expect(
      maxAbs(
        anchors.flatMap((l) => Array.from(l)),
        ref.data,
      ),
    ).toBe(0);
    const inputs: Record<string, tf.Tensor> = {};
    for (const k of st.keys().filter((k) => k.startsWith('input.'))) inputs[k.slice(6)] = await st.readTensor(k);
    const mask = tf.tensor2d(Array.from((await get('text_mask')).data), [B, 12]);
    const targets: FineTarget[] = [];
    for (let b = 0; b < B; b++)
      targets.push({ boxes: (await get(`gt_boxes.${b}`)).data, positiveMap: (await get(`positive_map.${b}`)).data });
    const levels = (name: string) => SIZES.map((_, l) => inputs[`${name}.${l}`]);
    const xs = [...levels('bbox_reg'), ...levels('centerness'), ...levels('dot_product_logits')];
    const run = (...ts: tf.Tensor[]) => {
      const flat = flattenHeadOutputs({
        bboxReg: ts.slice(0, 5),
        centerness: ts.slice(5, 10),
        dotProductLogits: ts.slice(10, 15),
      });
      const out = atssLoss(flat, anchors, targets, mask);
      tf.dispose([flat.bboxReg, flat.centerness, flat.dotProductLogits]);
      return out;
    };
    const losses = run(...xs);
    for (let b = 0; b < B; b++) {
      expect(Array.from(losses.targets[b].gtIndex)).toEqual(Array.from((await get(`assign.gt_index.${b}`)).data));
      expect(maxAbs(losses.targets[b].iouThresholds, (await get(`assign.iou_thresholds.${b}`)).data)).toBeLessThan(
        1e-6,
      );
    }
    expect(losses.numPositives).toBe(36);
    expect(
      maxAbs(
        losses.targets.flatMap((t) => Array.from(t.centernessTargets)),
        (await get('targets.centerness')).data,
      ),
    ).toBeLessThan(1e-6);
    expect(
      maxAbs(
        losses.targets.flatMap((t) => Array.from(t.regTargets)),
        (await get('targets.reg')).data,
      ),
    ).toBeLessThan(1e-5);
    for (const [name, key] of [
      ['dotProductToken', 'dot_product_token'],
      ['reg', 'reg'],
      ['centerness', 'centerness'],
      ['total', 'total'],
    ] as const) {
      const want = (await get(`loss.${key}`)).data[0];
      const got = (await losses[name].data())[0];
      expect(Math.abs(got - want) / Math.max(1, Math.abs(want))).toBeLessThan(1e-5);
    }
    expect((await losses.cls.data())[0]).toBe(0);
    tf.dispose([losses.total, losses.dotProductToken, losses.reg, losses.centerness, losses.cls]);
    const grads = tf.grads((...ts: tf.Tensor[]) => {
      const out = run(...ts);
      tf.dispose([out.dotProductToken, out.reg, out.centerness, out.cls]);
      return out.total;
    })(xs);
    const names15 = [
      ...SIZES.map((_, l) => `bbox_reg.${l}`),
      ...SIZES.map((_, l) => `centerness.${l}`),
      ...SIZES.map((_, l) => `dot_product_logits.${l}`),
    ];
    let worst = 0;
    for (let i = 0; i < 15; i++)
      worst = Math.max(worst, maxAbs((await grads[i].data()) as Float32Array, (await get(`grad.${names15[i]}`)).data));
    expect(worst).toBeLessThan(1e-5);
    tf.dispose([...grads, ...xs, mask]);
  });

  it('flattenHeadOutputs names a level whose shapes disagree and leaves nothing behind', () => {
    const before = tf.memory().numTensors;
    const reg = tf.zeros([1, 4, 2, 2]);
    const ctr = tf.zeros([1, 2, 2, 2]); // two anchors per cell where bbox_reg has one
    const dot = tf.zeros([1, 4, 3]);
    expect(() => flattenHeadOutputs({ bboxReg: [reg], centerness: [ctr], dotProductLogits: [dot] })).toThrow(
      'flattenHeadOutputs: level 0: centerness must be [1, 1, 2, 2] (bbox_reg [1, 4, 2, 2], centerness [1, 2, 2, 2], dot-product [1, 4, 3])',
    );
    const reg1 = tf.zeros([1, 4, 1, 1]);
    const ctr1 = tf.zeros([1, 1, 1, 1]);
    const ctr0 = tf.zeros([1, 1, 2, 2]);
    const dot1 = tf.zeros([1, 1, 5]); // another token count than level 0
    expect(() =>
      flattenHeadOutputs({
        bboxReg: [reg, reg1],
        centerness: [ctr0, ctr1],
        dotProductLogits: [dot, dot1],
      }),
    ).toThrow('flattenHeadOutputs: level 1: the levels disagree on the token count T');
    tf.dispose([reg, ctr, dot, reg1, ctr0, ctr1, dot1]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("image-level labels: the best free anchor on the positives' levels, outside the boxes, is their positive; the other free anchors left out", async () => {
    const T = 6;
    const mask = tf.tensor2d([[1, 1, 1, 1, 1, 0]]);
    const fullMask = tf.tensor2d([[1, 1, 1, 1, 1, 1]]); // the "no object" token counts too
    const boxed = { boxes: [3.2, 5.1, 29.7, 27.3], positiveMap: [1, 1, 0, 0, 0, 0] };
    const { gtIndex } = atssTargets(small, boxed, T);
    const levelOf = small.flatMap((l, level) => Array.from({ length: l.length / 4 }, () => level));
    const positive = gtIndex.findIndex((g) => g >= 0);
    const all = small.flatMap((l) => Array.from({ length: l.length / 4 }, (_, i) => [...l.subarray(4 * i, 4 * i + 4)]));
    const inside = (a: number) => {
      const [x, y] = [(all[a][0] + all[a][2]) / 2, (all[a][1] + all[a][3]) / 2];
      return x >= 3.2 && x <= 29.7 && y >= 5.1 && y <= 27.3;
    };
    const unboxed = [...gtIndex.keys()].filter((a) => gtIndex[a] < 0);
    const free = unboxed.filter((a) => levelOf[a] === levelOf[positive]);
    const otherLevel = unboxed.filter((a) => levelOf[a] !== levelOf[positive] && !inside(a)).pop() ?? -1;
    const inBox = free.find(inside) ?? -1;
    const outside = free.filter((a) => !inside(a));
    const [want, runnerUp] = [outside[outside.length - 1], outside[0]];
    expect(new Set(gtIndex.filter((g, a) => g >= 0 && levelOf[a] !== levelOf[positive])).size).toBe(0);
    expect([inBox, otherLevel].every((a) => a >= 0)).toBe(true);
    // planted logits on the label's tokens (3, 4): higher on a box's positive, on a free anchor of a
    // level without positives (centred outside the box) and on a free anchor centred in the box,
    // none of which may be chosen
    const values = Array.from({ length: A * T }, (_, i) => Math.sin(i) - 1);
    const plant = (a: number, v: number) => [3, 4].forEach((t) => (values[a * T + t] = v));
    plant(want, 0.5);
    plant(runnerUp, 0.3);
    plant(positive, 4);
    plant(otherLevel, 4);
    plant(inBox, 3);
    const dot = tf.tensor3d(values, [1, A, T]);
    const reg = tf.randomNormal([1, A, 4], 0, 0.4, 'float32', 8);
    const ctr = tf.randomNormal([1, A], 0, 1, 'float32', 9);
    const labelled = [{ ...boxed, imageLabels: [[3, 4]] }];
    const run = (d: tf.Tensor, targets: FineTarget[], weight?: number, m = mask) =>
      atssLoss({ dotProductLogits: d, bboxReg: reg, centerness: ctr }, small, targets, m, {
        ...(weight === undefined ? {} : { imageLabelWeight: weight }),
      });
    const parts = (o: ReturnType<typeof atssLoss>) => [o.total, o.dotProductToken, o.reg, o.centerness, o.cls];
    // the token loss by hand: focal(x, t) x weight over the unmasked tokens, summed
    const focal = (x: number, t: number) => {
      const p = 1 / (1 + Math.exp(-x));
      const ce = -(t * Math.log(p) + (1 - t) * Math.log(1 - p));
      const pt = p * t + (1 - p) * (1 - t);
      return ce * (1 - pt) ** 2 * (0.25 * t + 0.75 * (1 - t));
    };
    const byHand = (labelWeight: number, tokens: number) => {
      let sum = 0;
      for (let a = 0; a < A; a++)
        for (let t = 0; t < tokens; t++) {
          const label = t === 3 || t === 4;
          let target = gtIndex[a] >= 0 ? boxed.positiveMap[t] : t === T - 1 ? 1 : 0;
          if (a === want) target = label ? 1 : 0; // the label's anchor: an object, its "no object" cleared
          const weight = !label || gtIndex[a] >= 0 ? 1 : a === want ? labelWeight : 0;
          sum += focal(values[a * T + t], target) * weight;
        }
      return sum;
    };
    const out = run(dot, labelled, 3);
    expect((await out.dotProductToken.data())[0]).toBeCloseTo(byHand(3, T - 1) / out.numPositives, 4);
    const full = run(dot, labelled, 3, fullMask);
    expect((await full.dotProductToken.data())[0]).toBeCloseTo(byHand(3, T) / full.numPositives, 4);
    // weight 0: the label's tokens are out of the loss at every free anchor
    const off = run(dot, labelled, 0);
    expect((await off.dotProductToken.data())[0]).toBeCloseTo(byHand(0, T - 1) / off.numPositives, 4);
    // the label's positive has no box or centerness target: those terms are the unlabelled ones
    const plain = run(dot, [boxed]);
    expect(await out.reg.data()).toEqual(await plain.reg.data());
    expect(await out.centerness.data()).toEqual(await plain.centerness.data());
    const loss = (d: tf.Tensor) => {
      const o = run(d, labelled, 3);
      tf.dispose(parts(o).slice(1));
      return o.total;
    };
    expect((await gradCheck(loss, [dot], { eps: 1e-2, atol: 2e-3, rtol: 2e-2, maxElements: 24 })).ok).toBe(true);
    await expectNoTensorGrowth(() => loss(dot));
    for (const [imageLabels, message] of [
      [[[3, 6]], /atssLoss: image 0: imageLabels\[0\]: token 6 is not an index of the prompt's first 5 tokens/],
      [[[5]], /imageLabels\[0\]: token 5 .* \(the last, 5, is "no object"\)/],
      [[[3], []], /image 0: imageLabels\[1\]: must be a non-empty array/],
    ] as const)
      expect(() => run(dot, [{ ...boxed, imageLabels: imageLabels.map((l) => [...l]) }])).toThrow(message);
    expect(() => run(dot, labelled, -1)).toThrow(/imageLabelWeight: must be a finite number >= 0, got -1/);
    tf.dispose([...parts(out), ...parts(full), ...parts(plain), ...parts(off), dot, reg, ctr, mask, fullMask]);
  });

  it('the whole ATSS loss passes a gradient check and does not leak; no GT gives zero box losses', async () => {
    const T = 5;
    const dot = tf.randomNormal([2, A, T], -1, 1.5, 'float32', 7);
    const reg = tf.randomNormal([2, A, 4], 0, 0.4, 'float32', 8);
    const ctr = tf.randomNormal([2, A], 0, 1, 'float32', 9);
    const mask = tf.tensor2d([
      [1, 1, 1, 1, 0],
      [1, 1, 1, 1, 1],
    ]);
    const targets = [
      { boxes: [3.2, 5.1, 59.7, 47.3, 20.4, 2.2, 61.1, 50.6], positiveMap: [0, 1, 1, 0, 0, 0, 0, 0, 1, 0] },
      { boxes: [1.3, 8.7, 50.2, 60.8], positiveMap: [0, 0, 1, 1, 1] },
    ];
    const loss = (d: tf.Tensor, r: tf.Tensor, c: tf.Tensor) => {
      const out = atssLoss({ dotProductLogits: d, bboxReg: r, centerness: c }, small, targets, mask);
      tf.dispose([out.dotProductToken, out.reg, out.centerness, out.cls]);
      return out.total;
    };
    const once = atssLoss({ dotProductLogits: dot, bboxReg: reg, centerness: ctr }, small, targets, mask);
    expect(once.numPositives).toBeGreaterThan(0);
    tf.dispose([once.total, once.dotProductToken, once.reg, once.centerness, once.cls]);
    // each term's gradient is checked exhaustively above and against PyTorch; here a sample of
    // elements (8 on webgpu, where SwiftShader takes ~0.4 s per forward pass of this loss)
    const maxElements = backend === 'webgpu' ? 8 : 24;
    const r = await gradCheck(loss, [dot, reg, ctr], { eps: 1e-2, atol: 2e-3, rtol: 2e-2, maxElements });
    expect(r.ok).toBe(true);
    await expectNoTensorGrowth(() => loss(dot, reg, ctr));
    const empty = atssLoss(
      { dotProductLogits: dot, bboxReg: reg, centerness: ctr },
      small,
      [
        { boxes: [], positiveMap: [] },
        { boxes: [], positiveMap: [] },
      ],
      mask,
    );
    expect([(await empty.reg.data())[0], (await empty.centerness.data())[0]]).toEqual([0, 0]);
    expect(empty.numPositives).toBe(0);
    const g = tf.grads(
      (x: tf.Tensor) =>
        atssLoss(
          { dotProductLogits: dot, bboxReg: x, centerness: ctr },
          small,
          [
            { boxes: [], positiveMap: [] },
            { boxes: [], positiveMap: [] },
          ],
          mask,
        ).total,
    )([reg]);
    expect(maxAbs((await g[0].data()) as Float32Array, new Float32Array(reg.size))).toBe(0);
    expect(() =>
      atssLoss({ dotProductLogits: dot, bboxReg: reg, centerness: ctr }, small, targets.slice(0, 1), mask),
    ).toThrow(/1 targets do not describe one batch/);
    // class logits: weight 0 in FIBER (value 0, gradient 0); at weight 1 the focal loss on 1-based labels / #positives
    const cls = tf.randomNormal([2, A, 3], 0, 1, 'float32', 10);
    const labelled = targets.map((t, b) => ({ ...t, labels: b === 0 ? [1, 3] : [2] }));
    const clsLoss = (c: tf.Tensor, weight: number) => {
      const out = atssLoss(
        { dotProductLogits: dot, bboxReg: reg, centerness: ctr, clsLogits: c },
        small,
        labelled,
        mask,
        { clsLossWeight: weight },
      );
      tf.dispose([out.total, out.dotProductToken, out.reg, out.centerness]);
      return out.cls;
    };
    expect((await clsLoss(cls, 0).data())[0]).toBe(0);
    expect((await gradCheck((c) => clsLoss(c, 1), [cls], { eps: 1e-2 })).ok).toBe(true);
    expect(() =>
      atssLoss({ dotProductLogits: dot, bboxReg: reg, centerness: ctr, clsLogits: cls }, small, targets, mask),
    ).toThrow(/image 0 has no labels/);
    cls.dispose();
    tf.dispose([empty.total, empty.dotProductToken, empty.reg, empty.centerness, empty.cls, ...g, dot, reg, ctr, mask]);
  });
});
