// The ITC ring buffer: wraps, counts without a cap, keeps raw inputs per row, undoes a skipped
// step, and round-trips through its official buffer names.
import { beforeAll, describe, expect, it } from 'vitest';
import { Generator, tf } from '@fiber-vl/tensor-core';
import { expectNoTensorGrowth, testBackends, useBackend } from '@fiber-vl/tensor-core/testing';
import { FIBER_QUEUE_BUFFERS } from '@fiber-vl/fusion';
import { ItcQueue } from './queue.js';

const { names } = await testBackends();

function batch(B: number, start: number) {
  const H = 3;
  const cls = tf.tensor2d(
    Array.from({ length: B * H }, (_, i) => start + Math.floor(i / H) + (i % H) / 10),
    [B, H],
  );
  const pixels = tf.tensor4d(
    Array.from({ length: B * 3 * 2 * 2 }, (_, i) => start + Math.floor(i / 12)),
    [B, 3, 2, 2],
  );
  const ids = tf.tensor2d(
    Array.from({ length: B * 4 }, (_, i) => start + Math.floor(i / 4)),
    [B, 4],
    'int32',
  );
  const mask = tf.onesLike(ids);
  return { cls, pixels, ids, mask, dispose: () => tf.dispose([cls, pixels, ids, mask]) };
}

describe.each(names)('ItcQueue (%s)', (backend) => {
  beforeAll(() => useBackend(backend));
  const make = () => new ItcQueue({ hiddenSize: 3, size: 5, imageSize: 2, maxTextLen: 4, rng: new Generator(1) });

  it('writes at ptr, wraps modulo Q, and counts queue_total without a cap', async () => {
    const q = make();
    const init = (await q.imageFeats.array()) as number[][];
    for (const [start, B] of [
      [10, 2],
      [20, 2],
      [30, 2],
    ]) {
      const b = batch(B, start);
      (await q.enqueue(b.cls, b.cls, b.pixels, b.ids, b.mask)).commit();
      b.dispose();
    }
    expect(q.ptr).toBe(1); // 6 rows into 5 slots
    expect(q.total).toBe(6);
    expect(q.filled).toBe(5);
    const feats = (await q.imageFeats.array()) as number[][]; // [H, Q]
    // column j holds the feature of the batch row written there last: slot 0 <- 31, 1..4 <- 11, 20, 21, 30
    expect(feats[0]).toEqual([31, 11, 20, 21, 30]);
    expect(feats[1].map((v) => Math.round(v * 10) / 10)).toEqual([31.1, 11.1, 20.1, 21.1, 30.1]);
    const s = q.getState();
    expect((await s.get('text_input_queue')!.array()) as number[][]).toEqual(
      [31, 11, 20, 21, 30].map((v) => [v, v, v, v]),
    );
    expect(Array.from(await s.get('image_input_queue')!.data()).filter((_, i) => i % 12 === 0)).toEqual([
      31, 11, 20, 21, 30,
    ]);
    expect(Array.from(await s.get('queue_total')!.data())).toEqual([6]);
    expect(init[0].length).toBe(5);
    tf.dispose([...s.values()]);
    q.dispose();
  });

  it('undo restores the queue exactly (a skipped step)', async () => {
    const q = make();
    const b0 = batch(2, 10);
    (await q.enqueue(b0.cls, b0.cls, b0.pixels, b0.ids, b0.mask)).commit();
    const before = q.getState();
    const b1 = batch(3, 20);
    const undo = await q.enqueue(b1.cls, b1.cls, b1.pixels, b1.ids, b1.mask);
    undo();
    const after = q.getState();
    for (const [k, t] of before) expect(Array.from(await after.get(k)!.data()), k).toEqual(Array.from(await t.data()));
    expect([q.ptr, q.total]).toEqual([2, 2]);
    tf.dispose([...before.values(), ...after.values()]);
    b0.dispose();
    b1.dispose();
    q.dispose();
  });

  it('round-trips through getState / setState (never-filled rows stay unallocated) and refuses a wrong shape', async () => {
    const q = make();
    const b = batch(2, 10);
    (await q.enqueue(b.cls, b.cls, b.pixels, b.ids, b.mask)).commit();
    const s = q.getState();
    // the official buffer names, the ones fusion's checkpoint reader drops
    expect([...s.keys()].sort()).toEqual([...FIBER_QUEUE_BUFFERS].sort());
    const r = make();
    const n0 = tf.memory().numTensors;
    await r.setState(s);
    expect(tf.memory().numTensors - n0).toBe(0 + 2); // two slots filled: the feature queues replace the old ones
    const s2 = r.getState();
    for (const [k, t] of s) expect(Array.from(await s2.get(k)!.data()), k).toEqual(Array.from(await t.data()));
    const bad = new Map(s);
    bad.set('image_queue', tf.zeros([4, 5]));
    await expect(r.setState(bad)).rejects.toThrow(/"image_queue" has shape \[4,5\], this queue needs \[3,5\]/);
    tf.dispose([...s.values(), ...s2.values(), bad.get('image_queue')!]);
    b.dispose();
    q.dispose();
    r.dispose();
  });

  it('refuses a batch larger than the queue, and keeps the tensor count flat', async () => {
    const q = make();
    const big = batch(6, 0);
    await expect(q.enqueue(big.cls, big.cls, big.pixels, big.ids, big.mask)).rejects.toThrow(
      /batch of 6 does not fit a queue of 5/,
    );
    big.dispose();
    const b = batch(2, 10);
    for (let i = 0; i < 3; i++) (await q.enqueue(b.cls, b.cls, b.pixels, b.ids, b.mask)).commit(); // fill every slot
    await expectNoTensorGrowth(async () => (await q.enqueue(b.cls, b.cls, b.pixels, b.ids, b.mask)).commit());
    b.dispose();
    q.dispose();
  });
});
