// @fiber-vl/trainer/node: the Node-only parts of data loading (files, tar shards on disk, the
// worker-thread pool, sharp decoding). Everything else is in the main entry, which runs in browsers.
import { InThreadExecutor } from './data/loader.js';
import { type DecoderChoice, nodeImageDecoder, readFileLocation } from './data/node/files.js';

export {
  fileSource,
  readFileLocation,
  imageFolder,
  readJson,
  openJsonl,
  openTarShards,
  nodeImageDecoder,
  type DecoderChoice,
} from './data/node/files.js';
export { WorkerPool, type WorkerPoolOptions } from './data/node/pool.js';

/** Prepares samples in this thread, reading files from disk (sharp or the JS decoders). */
export async function nodeInThreadExecutor(decoder: DecoderChoice = 'auto'): Promise<InThreadExecutor> {
  return new InThreadExecutor({ decoder: await nodeImageDecoder(decoder), readFile: readFileLocation });
}
