// HF sharded checkpoints: `model.safetensors.index.json` = {"metadata": {...}, "weight_map":
// {tensor name: shard file name}}; shards sit beside the index and are opened when first read.
// Shard names must stay inside the index's folder; a shard that cannot be opened, or that lacks a
// tensor the index puts in it, is an error naming the index, the shard and the tensor.
import { tf } from '../tf.js';
import type { RawValues } from './dtypes.js';
import { findDuplicateKey } from './json-keys.js';
import { platform } from '#platform';
import type { ByteSource } from './byte-source.js';
import { NodeOnlyError } from '../platform/types.js';
import {
  SafetensorsError,
  SafetensorsFile,
  type RawTensor,
  type SafetensorsOptions,
  type TensorInfo,
  serializeSafetensors,
} from './safetensors.js';

/** What both a single file and a sharded checkpoint offer. */
export interface TensorReader {
  keys(): string[];
  readRaw(name: string): Promise<RawTensor>;
  readTensor(name: string): Promise<tf.Tensor>;
  readAll(filter?: (name: string) => boolean): Promise<Map<string, tf.Tensor>>;
  close(): Promise<void>;
}

/** An index file larger than this is refused (the index of a 1,000-tensor model is ~100 KB). */
const MAX_INDEX_BYTES = 64 << 20;

/** Why a shard name would leave the index's folder, or undefined for a plain relative name. */
function unsafeShardName(name: string): string | undefined {
  if (!name) return 'is empty';
  if (name.includes('\0')) return 'contains a NUL byte';
  if (/^([/\\]|[A-Za-z]:)/.test(name)) return 'is an absolute path';
  if (name.split(/[/\\]/).some((part) => part === '..')) return 'leaves the checkpoint folder';
  return undefined;
}

export class ShardedSafetensors implements TensorReader {
  private readonly open = new Map<string, Promise<SafetensorsFile>>();
  private constructor(
    readonly indexName: string,
    readonly weightMap: Map<string, string>,
    readonly metadata: Record<string, unknown>,
    private readonly openShard: (shard: string) => Promise<SafetensorsFile>,
  ) {}

  /**
   * @param indexJson the parsed index file
   * @param openShard opens a shard by its file name (relative to the index)
   */
  static fromIndex(
    indexName: string,
    indexJson: unknown,
    openShard: (shard: string) => Promise<SafetensorsFile>,
  ): ShardedSafetensors {
    const fail = (m: string): never => {
      throw new SafetensorsError(indexName, m);
    };
    const isObject = (x: unknown): x is Record<string, unknown> =>
      typeof x === 'object' && x !== null && !Array.isArray(x);
    if (!isObject(indexJson) || !isObject(indexJson.weight_map)) return fail('index has no "weight_map" object');
    if (indexJson.metadata !== undefined && !isObject(indexJson.metadata)) fail('index "metadata" is not an object');
    const map = new Map<string, string>();
    for (const [k, v] of Object.entries(indexJson.weight_map)) {
      if (typeof v !== 'string') return fail(`weight_map["${k}"] is not a file name`);
      const unsafe = unsafeShardName(v);
      if (unsafe) fail(`weight_map["${k}"] = ${JSON.stringify(v)} ${unsafe}`);
      map.set(k, v);
    }
    const metadata = isObject(indexJson.metadata) ? indexJson.metadata : {};
    return new ShardedSafetensors(indexName, map, metadata, openShard);
  }

  /** Opens `<dir>/model.safetensors.index.json` (or any index path) in Node. */
  static async open(indexPath: string, options: SafetensorsOptions = {}): Promise<ShardedSafetensors> {
    const fail = (m: string): never => {
      throw new SafetensorsError(indexPath, m);
    };
    let text = '';
    try {
      text = await platform.readTextFile(indexPath, MAX_INDEX_BYTES);
    } catch (e) {
      fail(e instanceof Error ? e.message : String(e));
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      fail(`index is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    const dup = findDuplicateKey(text);
    if (dup) fail(`index has the key "${dup.key}" twice${dup.path.length ? ` (in "${dup.path.join('" > "')}")` : ''}`);
    return ShardedSafetensors.fromIndex(indexPath, json, (shard) =>
      SafetensorsFile.open(platform.siblingPath(indexPath, shard), options),
    );
  }

  keys(): string[] {
    return [...this.weightMap.keys()];
  }

  private async shardOf(name: string): Promise<SafetensorsFile> {
    const shard = this.weightMap.get(name);
    if (!shard) throw new SafetensorsError(this.indexName, `no tensor "${name}" in weight_map`);
    let f = this.open.get(shard);
    if (!f) {
      f = this.openShard(shard);
      this.open.set(shard, f);
    }
    let file: SafetensorsFile;
    try {
      file = await f;
    } catch (e) {
      this.open.delete(shard); // a failed open is not cached (and close() must not see it)
      throw new SafetensorsError(
        this.indexName,
        `shard "${shard}" (of tensor "${name}"): ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    if (!file.tensors.has(name))
      throw new SafetensorsError(
        this.indexName,
        `weight_map puts "${name}" in shard "${shard}", which does not hold it`,
      );
    return file;
  }

  /** Dtype, shape and offsets of one tensor (opens its shard). */
  async info(name: string): Promise<TensorInfo> {
    return (await this.shardOf(name)).info(name);
  }

  async readRaw(name: string): Promise<RawTensor> {
    return (await this.shardOf(name)).readRaw(name);
  }

  async *readRawChunks(name: string, options?: { chunkBytes?: number }): AsyncGenerator<RawValues> {
    yield* (await this.shardOf(name)).readRawChunks(name, options);
  }

  async readTensor(name: string): Promise<tf.Tensor> {
    return (await this.shardOf(name)).readTensor(name);
  }

  /** Reads every tensor (or those passing `filter`), one at a time; on a failure none is kept. */
  async readAll(filter: (name: string) => boolean = () => true): Promise<Map<string, tf.Tensor>> {
    const out = new Map<string, tf.Tensor>();
    try {
      for (const name of this.keys()) if (filter(name)) out.set(name, await this.readTensor(name));
      return out;
    } catch (e) {
      tf.dispose([...out.values()]);
      throw e;
    }
  }

  /** Closes every shard opened so far. */
  async close(): Promise<void> {
    const shards = [...this.open.values()];
    this.open.clear();
    await Promise.allSettled(shards.map(async (f) => (await f).close()));
  }
}

/**
 * Random access to a regular file by path (Node), for readers that take a ByteSource
 * (`SafetensorsFile.fromSource`, `TorchCheckpoint.fromSource`) or for sniffing a file's format
 * from its first bytes. Close it when done. A file that cannot be opened is an Error naming the
 * path and why; in a browser it rejects with NodeOnlyError (use `blobSource`).
 */
export async function openFileSource(path: string): Promise<ByteSource> {
  try {
    return await platform.fileSource(path);
  } catch (e) {
    if (e instanceof NodeOnlyError) throw e;
    throw new Error(`${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Opens a checkpoint path (Node): a `.safetensors` file or a sharded `*.index.json`. */
export async function openSafetensors(
  path: string,
  options?: SafetensorsOptions,
): Promise<SafetensorsFile | ShardedSafetensors> {
  return path.endsWith('.json') ? ShardedSafetensors.open(path, options) : SafetensorsFile.open(path, options);
}

/** Reads every tensor (or those passing `filter`) of a `.safetensors` file or sharded index, then closes it (Node). */
export async function loadSafetensors(
  path: string,
  filter?: (name: string) => boolean,
  options?: SafetensorsOptions,
): Promise<Map<string, tf.Tensor>> {
  const file = await openSafetensors(path, options);
  try {
    return await file.readAll(filter);
  } finally {
    await file.close();
  }
}

/** Writes tensors to a `.safetensors` file (Node). */
export async function saveSafetensors(
  path: string,
  tensors: Parameters<typeof serializeSafetensors>[0],
  metadata?: Record<string, string>,
): Promise<void> {
  await platform.writeFile(path, serializeSafetensors(tensors, metadata));
}
