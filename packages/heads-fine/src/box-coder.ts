// The VLDyHead's BoxCoder (`modeling/rpn/vldyhead.py`): weights (10, 10, 5, 5), widths with the
// +1 convention, centres (x1 + x2) / 2, dw and dh clamped at log(1000 / 16), decoded corners
// centre -+ 0.5 (w - 1). The plain-array versions round every step to float32 in the order the
// official float32 code runs, so they match it to the last bit or two; the tensor version is
// differentiable (the GIoU loss decodes through it).
import { tf } from '@fiber-vl/tensor-core';

export const BOX_CODER_WEIGHTS: readonly [number, number, number, number] = Object.freeze([10, 10, 5, 5]) as readonly [
  number,
  number,
  number,
  number,
];
/** log(1000 / 16): the largest dw, dh fed to exp. */
export const BBOX_XFORM_CLIP = Math.log(1000 / 16);

const f = Math.fround;
const CLIP32 = f(BBOX_XFORM_CLIP);

function checkPairs(what: string, a: ArrayLike<number>, b: ArrayLike<number>) {
  if (a.length % 4 !== 0) throw new RangeError(`${what}: ${a.length} values is not a whole number of boxes (4 each)`);
  if (a.length !== b.length) throw new RangeError(`${what}: ${a.length / 4} codes/boxes but ${b.length / 4} anchors`);
}

/** Decodes [N, 4] regression codes against [N, 4] xyxy anchors into xyxy boxes (float32 semantics). */
export function decodeBoxes(codes: ArrayLike<number>, anchors: ArrayLike<number>): Float32Array {
  checkPairs('decodeBoxes', codes, anchors);
  const [wx, wy, ww, wh] = BOX_CODER_WEIGHTS;
  const out = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i += 4) {
    const w = f(f(anchors[i + 2] - anchors[i]) + 1);
    const h = f(f(anchors[i + 3] - anchors[i + 1]) + 1);
    const cx = f(f(anchors[i + 2] + anchors[i]) / 2);
    const cy = f(f(anchors[i + 3] + anchors[i + 1]) / 2);
    const dx = f(codes[i] / wx);
    const dy = f(codes[i + 1] / wy);
    const dw = Math.min(f(codes[i + 2] / ww), CLIP32);
    const dh = Math.min(f(codes[i + 3] / wh), CLIP32);
    const pcx = f(f(dx * w) + cx);
    const pcy = f(f(dy * h) + cy);
    const pw = f(f(Math.exp(dw)) * w);
    const ph = f(f(Math.exp(dh)) * h);
    const hw = f(0.5 * f(pw - 1));
    const hh = f(0.5 * f(ph - 1));
    out[i] = pcx - hw;
    out[i + 1] = pcy - hh;
    out[i + 2] = pcx + hw;
    out[i + 3] = pcy + hh;
  }
  return out;
}

/** Encodes [N, 4] xyxy boxes against [N, 4] anchors into regression codes (the loss targets). */
export function encodeBoxes(boxes: ArrayLike<number>, anchors: ArrayLike<number>): Float32Array {
  checkPairs('encodeBoxes', boxes, anchors);
  const [wx, wy, ww, wh] = BOX_CODER_WEIGHTS;
  const out = new Float32Array(boxes.length);
  for (let i = 0; i < boxes.length; i += 4) {
    const ew = f(f(anchors[i + 2] - anchors[i]) + 1);
    const eh = f(f(anchors[i + 3] - anchors[i + 1]) + 1);
    const ecx = f(f(anchors[i + 2] + anchors[i]) / 2);
    const ecy = f(f(anchors[i + 3] + anchors[i + 1]) / 2);
    const gw = f(f(boxes[i + 2] - boxes[i]) + 1);
    const gh = f(f(boxes[i + 3] - boxes[i + 1]) + 1);
    const gcx = f(f(boxes[i + 2] + boxes[i]) / 2);
    const gcy = f(f(boxes[i + 3] + boxes[i + 1]) / 2);
    out[i] = f(wx * f(gcx - ecx)) / ew;
    out[i + 1] = f(wy * f(gcy - ecy)) / eh;
    out[i + 2] = ww * f(Math.log(f(gw / ew)));
    out[i + 3] = wh * f(Math.log(f(gh / eh)));
  }
  return out;
}

/**
 * Differentiable decode: codes [..., 4] and anchors broadcastable to them ([..., 4]) -> xyxy boxes
 * [..., 4]. The clamp passes no gradient above log(1000 / 16), as torch.clamp does.
 */
export function decodeBoxesTensor(codes: tf.Tensor, anchors: tf.Tensor): tf.Tensor {
  if (codes.shape[codes.rank - 1] !== 4 || anchors.shape[anchors.rank - 1] !== 4) {
    throw new RangeError(
      `decodeBoxesTensor: codes [${codes.shape.join(', ')}] and anchors [${anchors.shape.join(', ')}] ` +
        'need a last axis of 4',
    );
  }
  const [wx, wy, ww, wh] = BOX_CODER_WEIGHTS;
  return tf.tidy(() => {
    const [ax1, ay1, ax2, ay2] = tf.unstack(anchors, -1);
    const w = tf.add(tf.sub(ax2, ax1), 1);
    const h = tf.add(tf.sub(ay2, ay1), 1);
    const cx = tf.div(tf.add(ax2, ax1), 2);
    const cy = tf.div(tf.add(ay2, ay1), 2);
    const [c0, c1, c2, c3] = tf.unstack(codes, -1);
    const dw = tf.minimum(tf.div(c2, ww), CLIP32);
    const dh = tf.minimum(tf.div(c3, wh), CLIP32);
    const pcx = tf.add(tf.mul(tf.div(c0, wx), w), cx);
    const pcy = tf.add(tf.mul(tf.div(c1, wy), h), cy);
    const hw = tf.mul(tf.sub(tf.mul(tf.exp(dw), w), 1), 0.5);
    const hh = tf.mul(tf.sub(tf.mul(tf.exp(dh), h), 1), 0.5);
    return tf.stack([tf.sub(pcx, hw), tf.sub(pcy, hh), tf.add(pcx, hw), tf.add(pcy, hh)], -1);
  });
}
