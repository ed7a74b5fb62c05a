import { tf } from '../tf.js';

/**
 * x with no gradient flowing back through it (torch's `.detach()`): the value is a copy of x, and
 * its gradient with respect to x is zero.
 */
export const detach: (x: tf.Tensor) => tf.Tensor = tf.customGrad((x) => ({
  value: tf.clone(x as tf.Tensor),
  gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.zerosLike(dy as tf.Tensor),
})) as (x: tf.Tensor) => tf.Tensor;
