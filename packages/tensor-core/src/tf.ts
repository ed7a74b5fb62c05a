// The one tfjs-core instance every fiber-vl package uses. Importing it also registers all
// gradients and chained ops (through the platform module, see platform/node.ts and browser.ts),
// which tfjs-core's Node entry does not do on its own.
import * as tf from '@tensorflow/tfjs-core';
import '#platform';

export { tf };
