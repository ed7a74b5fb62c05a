// The one tfjs-core instance every fiber-vl package uses. Importing it also registers all
// gradients and chained ops, which tfjs-core's Node entry does not do on its own.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';

export { tf };
