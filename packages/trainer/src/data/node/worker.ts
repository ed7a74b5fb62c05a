// The worker thread of WorkerPool: prepares each task it is sent and posts the result back,
// transferring the pixel buffers instead of copying them.
import { parentPort, workerData } from 'node:worker_threads';
import { prepareSample, type SampleResult, type SampleTask, transferables } from '../pipeline.js';
import { skipOf } from '../skips.js';
import { type DecoderChoice, nodeImageDecoder, readFileLocation } from './files.js';

if (!parentPort) throw new Error('data-worker.js runs as a worker thread of WorkerPool');
const port = parentPort;
const choice: DecoderChoice = (workerData as { decoder?: DecoderChoice } | undefined)?.decoder ?? 'auto';
const io = nodeImageDecoder(choice).then((decoder) => ({ decoder, readFile: readFileLocation }));

port.on('message', async ({ id, task }: { id: number; task: SampleTask }) => {
  let result: SampleResult;
  try {
    result = await prepareSample(task, await io);
  } catch (e) {
    result = { ok: false, skip: skipOf(e), dropped: [] }; // the decoder could not be set up
  }
  port.postMessage({ id, result }, transferables(result));
});
