// @fiber-vl/tensor-core: the tfjs engine and backends, a torch.nn-style Module system, the ops
// every fiber-vl model uses, safetensors IO and a seeded RNG.
export { tf } from './tf.js';

export {
  initBackend,
  availableBackends,
  BackendUnavailableError,
  BACKEND_NAMES,
  type BackendName,
  type BackendInfo,
  type InitBackendOptions,
  type AdapterDescription,
} from './backends/index.js';
export { registerFallbackKernels } from './backends/fallback-kernels.js';
export { setCpuKernelsEnabled } from './backends/cpu-kernels.js';
export { wasmKernelInfo, setWasmKernelsEnabled, wasmKernelsActive, type WasmKernelInfo } from './kernels/wasm.js';
export { setWebGpuKernelsEnabled, webgpuKernelsActive } from './kernels/webgpu.js';

export {
  Module,
  ModuleList,
  BufferList,
  Sequential,
  Parameter,
  Buffer,
  StateDictError,
  stateDictName,
  type LoadStateDictOptions,
  type LoadStateDictResult,
  type UnaryModule,
} from './nn/module.js';
export {
  Linear,
  LayerNorm,
  Embedding,
  Dropout,
  DropPath,
  DropBlock2D,
  GELU,
  Identity,
  Conv2d,
  type Conv2dOptions,
} from './nn/layers.js';
export * as init from './nn/init.js';
export { initWeights, type InitWeightsOptions } from './nn/init-weights.js';

export { matmul, linear, transposeLast2 } from './ops/linalg.js';
export { softmax, gelu, layerNorm, l2Normalize } from './ops/activations.js';
export { adamwUpdate, type AdamWUpdateOptions } from './ops/optim.js';
export { detach } from './ops/detach.js';
export {
  scaledDotProductAttention,
  registerAttentionKernel,
  compositeAttention,
  windowAttention,
  compositeWindowAttention,
  type WindowAttentionOptions,
  type AttentionOptions,
  type AttentionKernel,
} from './ops/attention.js';
export { roll, windowPartition, windowReverse, interpolateBicubic } from './ops/spatial.js';
export {
  crossEntropy,
  bceWithLogits,
  sigmoidFocalLoss,
  type Reduction,
  type CrossEntropyOptions,
  type BceOptions,
  type FocalOptions,
} from './ops/losses.js';

export {
  SafetensorsFile,
  SafetensorsError,
  serializeSafetensors,
  rawToTensor,
  decode as decodeSafetensorsData,
  encode as encodeSafetensorsData,
  DTYPE_BYTES,
  type SafetensorsDType,
  type TensorInfo,
  type RawTensor,
  type RawValues,
  type SafetensorsInput,
} from './io/safetensors.js';
export {
  ShardedSafetensors,
  openSafetensors,
  loadSafetensors,
  saveSafetensors,
  openFileSource,
  type TensorReader,
} from './io/sharded.js';
export { bufferSource, blobSource, type ByteSource } from './io/byte-source.js';
export { NodeOnlyError } from './platform/types.js';

export { Generator, defaultGenerator, manualSeed, skipInit } from './rng.js';
export { erf, erfinv } from './math.js';
export { expectNoTensorGrowth, TensorLeakError } from './memory.js';
export { findNonFinite, type NonFiniteTensor } from './finite.js';
export { tidyOutput, disposeOutput, collectTensors } from './outputs.js';
export {
  TorchCheckpoint,
  TorchTensorRef,
  TorchCheckpointError,
  PickleStub,
  type TorchLoadOptions,
} from './io/torch.js';
export { ZipError } from './io/zip.js';
export { serializeTorchCheckpoint, type SerializeTorchOptions, type TorchWriterInput } from './io/torch-writer.js';

export { GroupNorm } from './nn/norm.js';
export { ReLU, Hardsigmoid, AdaptiveAvgPool2d, DeformConv2d, type DeformConv2dModuleOptions } from './nn/vision.js';
export { deformConv2d, dcnMemoryView, type DeformConv2dOptions } from './ops/deform-conv.js';
export { interpolateBilinear, interpolateNearest } from './ops/interpolate.js';
export { groupNorm } from './ops/norm.js';
export { hardSigmoid, adaptiveAvgPool2d } from './ops/vision.js';
export { DEFAULT_MAX_TENSOR_BYTES, countNonFinite, type SafetensorsOptions } from './io/safetensors.js';
export { DEFAULT_MAX_EXPANDED_BYTES } from './io/torch.js';
