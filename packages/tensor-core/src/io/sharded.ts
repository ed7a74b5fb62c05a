// HF sharded checkpoints: `model.safetensors.index.json` = {"metadata": {...}, "weight_map":
// {tensor name: shard file name}}; shards sit beside the index and are opened when first read.
import type { tf } from '../tf.js';
import { SafetensorsError, SafetensorsFile, serializeSafetensors, type RawTensor, type TensorInfo } from './safetensors.js';
import { platform } from '#platform';

/** What both a single file and a sharded checkpoint offer. */
export interface TensorReader {
  keys(): string[];
  readRaw(name: string): Promise<RawTensor>;
  readTensor(name: string): Promise<tf.Tensor>;
  readAll(filter?: (name: string) => boolean): Promise<Map<string, tf.Tensor>>;
  close(): Promise<void>;
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
  static fromIndex(indexName: string, indexJson: unknown, openShard: (shard: string) => Promise<SafetensorsFile>): ShardedSafetensors {
    const idx = indexJson as { weight_map?: unknown; metadata?: unknown };
    if (typeof idx !== 'object' || idx === null || typeof idx.weight_map !== 'object' || idx.weight_map === null) {
      throw new SafetensorsError(indexName, 'index has no "weight_map" object');
    }
    const map = new Map<string, string>();
    for (const [k, v] of Object.entries(idx.weight_map as Record<string, unknown>)) {
      if (typeof v !== 'string') throw new SafetensorsError(indexName, `weight_map["${k}"] is not a file name`);
      if (v.includes('..') || v.startsWith('/')) throw new SafetensorsError(indexName, `weight_map["${k}"] = "${v}" leaves the checkpoint folder`);
      map.set(k, v);
    }
    return new ShardedSafetensors(indexName, map, (idx.metadata as Record<string, unknown>) ?? {}, openShard);
  }

  /** Opens `<dir>/model.safetensors.index.json` (or any index path) in Node. */
  static async open(indexPath: string): Promise<ShardedSafetensors> {
    let json: unknown;
    try {
      json = JSON.parse(await platform.readTextFile(indexPath));
    } catch (e) {
      throw new SafetensorsError(indexPath, `cannot read the index: ${(e as Error).message}`);
    }
    return ShardedSafetensors.fromIndex(indexPath, json, (shard) => SafetensorsFile.open(platform.siblingPath(indexPath, shard)));
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
    const file = await f;
    if (!file.tensors.has(name)) throw new SafetensorsError(file.name, `weight_map says "${name}" is in this shard, but it is not`);
    return file;
  }

  /** Dtype, shape and offsets of one tensor (opens its shard). */
  async info(name: string): Promise<TensorInfo> {
    return (await this.shardOf(name)).info(name);
  }

  async readRaw(name: string): Promise<RawTensor> {
    return (await this.shardOf(name)).readRaw(name);
  }

  async readTensor(name: string): Promise<tf.Tensor> {
    return (await this.shardOf(name)).readTensor(name);
  }

  async readAll(filter: (name: string) => boolean = () => true): Promise<Map<string, tf.Tensor>> {
    const out = new Map<string, tf.Tensor>();
    for (const name of this.keys()) if (filter(name)) out.set(name, await this.readTensor(name));
    return out;
  }

  async close(): Promise<void> {
    for (const f of this.open.values()) await (await f).close();
    this.open.clear();
  }
}

/** Opens a checkpoint path (Node): a `.safetensors` file or a sharded `*.index.json`. */
export async function openSafetensors(path: string): Promise<SafetensorsFile | ShardedSafetensors> {
  return path.endsWith('.json') ? ShardedSafetensors.open(path) : SafetensorsFile.open(path);
}

/** Reads every tensor (or those passing `filter`) of a `.safetensors` file or sharded index, then closes it (Node). */
export async function loadSafetensors(path: string, filter?: (name: string) => boolean): Promise<Map<string, tf.Tensor>> {
  const file = await openSafetensors(path);
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
