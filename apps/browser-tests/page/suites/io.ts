// Checkpoints opened the way a page gets them: a File from <input type=file> / drag and drop, or a
// Blob, through blobSource (read slice by slice, never copied whole). And the path-based loaders,
// which need Node, failing with an error that says what to do instead.
import { loadFiberCheckpoint } from '@fiber-vl/fusion';
import {
  NodeOnlyError,
  SafetensorsFile,
  ShardedSafetensors,
  TorchCheckpoint,
  blobSource,
  loadSafetensors,
  saveSafetensors,
  serializeSafetensors,
  tf,
  type RawTensor,
  type SafetensorsDType,
} from '@fiber-vl/tensor-core';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { fiberConfigFromFixture } from '@fiber-vl/heads-coarse/testing';
import { diff, expectError } from '../check.js';
import { fetchBlob, fetchJson, useBackend } from '../fixtures.js';
import type { Check, SuiteParams } from '../protocol.js';

interface ExpectedTensor {
  dtype: string;
  shape: number[];
  values: number[];
}
const DTYPES: Record<string, SafetensorsDType> = {
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  bool: 'BOOL',
};

/** A fixture file as the File a user would pick. */
async function fixtureFile(path: string): Promise<File> {
  return new File([await fetchBlob(`/fixtures/${path}`)], path.split('/').pop()!);
}

/** Every tensor of a reader equal to expected.json (f16 / bf16 widen exactly, so exact everywhere). */
async function checkTensors(
  what: string,
  expected: Record<string, ExpectedTensor>,
  read: (name: string) => Promise<RawTensor | undefined>,
): Promise<Check> {
  const bad: string[] = [];
  let worst = 0;
  for (const [name, e] of Object.entries(expected)) {
    const raw = await read(name);
    if (!raw) {
      bad.push(`${name} missing`);
      continue;
    }
    if (raw.dtype !== DTYPES[e.dtype] || raw.shape.join() !== e.shape.join())
      bad.push(`${name}: ${raw.dtype} [${raw.shape}]`);
    const d = diff(Array.from(raw.data as ArrayLike<number | bigint>, Number), e.values).abs;
    worst = Math.max(worst, d);
    if (d !== 0) bad.push(`${name}: max |diff| ${d}`);
  }
  return {
    name: what,
    maxAbsError: bad.length ? Math.max(worst, 1) : 0,
    tolerance: 0,
    ok: bad.length === 0,
    detail: bad.join('; ') || `${Object.keys(expected).length} tensors`,
  };
}

export async function ioSuite(_params: SuiteParams): Promise<{ checks: Check[]; info: Record<string, unknown> }> {
  await useBackend('cpu');
  const expected = (
    (await fetchJson('/fixtures/torch/expected.json')) as { state_dict: Record<string, ExpectedTensor> }
  ).state_dict;
  const checks: Check[] = [];

  // torch.save .pth from a File
  const pth = await TorchCheckpoint.fromSource(blobSource(await fixtureFile('torch/state_dict.pth')));
  const sd = pth.stateDict();
  checks.push(
    await checkTensors('state_dict.pth (File): f32, f16, bf16, i64, bool, views, strided', expected, async (n) =>
      sd.has(n) ? pth.readRaw(sd.get(n)!) : undefined,
    ),
  );
  const keysInOrder = [...sd.keys()].join() === Object.keys(expected).join();
  checks.push({
    name: 'state_dict.pth: key order of the OrderedDict',
    maxAbsError: keysInOrder ? 0 : Infinity,
    tolerance: 0,
    ok: keysInOrder,
  });

  // Lightning .ckpt from a Blob: the state dict inside, as tf tensors
  const ckpt = await TorchCheckpoint.fromSource(
    blobSource(await fetchBlob('/fixtures/torch/lightning.ckpt'), 'lightning.ckpt'),
  );
  const lightning = await ckpt.readStateDict();
  const bias = Array.from(await lightning.get('rank_output.bias')!.data());
  const want = Math.fround(expected['itm_score.fc.bias'].values[1]);
  const ckptOk =
    [...lightning.keys()].join() === 'itm_score.fc.weight,itm_score.fc.bias,rank_output.weight,rank_output.bias' &&
    bias[0] === want;
  checks.push({
    name: 'lightning.ckpt (Blob): state_dict tensors',
    maxAbsError: ckptOk ? 0 : Infinity,
    tolerance: 0,
    ok: ckptOk,
    detail: [...lightning.keys()].join(', '),
  });
  tf.dispose([...lightning.values()]);

  // hostile checkpoints from Files: typed errors naming the file and the problem
  checks.push(
    await expectError(
      'truncated.pth (File) is refused',
      async () => TorchCheckpoint.fromSource(blobSource(await fixtureFile('torch/truncated.pth'))),
      /^truncated\.pth: .*truncated/,
    ),
  );
  checks.push(
    await expectError(
      'unexpected_global.pth (File) is refused, nothing executed',
      async () => TorchCheckpoint.fromSource(blobSource(await fixtureFile('torch/unexpected_global.pth'))),
      /refusing global os\.system/,
      'TorchCheckpointError',
    ),
  );

  // safetensors written in the page, read back from a File: every dtype of the .pth
  const raws = new Map<string, RawTensor>();
  for (const [name, ref] of sd) raws.set(name, await pth.readRaw(ref));
  // (a copy onto a plain ArrayBuffer: File takes no view of a possibly shared buffer)
  const file = new File(
    [new Uint8Array(serializeSafetensors(raws, { source: 'browser test' }))],
    'roundtrip.safetensors',
  );
  const st = await SafetensorsFile.fromSource(blobSource(file));
  checks.push(
    await checkTensors('roundtrip.safetensors (File): F32, F16, BF16, I64, BOOL', expected, async (n) =>
      st.tensors.has(n) ? st.readRaw(n) : undefined,
    ),
  );
  const meta = st.metadata.source === 'browser test';
  checks.push({
    name: 'roundtrip.safetensors: __metadata__',
    maxAbsError: meta ? 0 : Infinity,
    tolerance: 0,
    ok: meta,
  });
  const broken = new Blob([new Uint8Array([255, 255, 0, 0, 0, 0, 0, 0, 123, 125])]);
  checks.push(
    await expectError(
      'a Blob with a broken safetensors header is refused',
      () => SafetensorsFile.fromSource(blobSource(broken, 'broken.safetensors')),
      /broken\.safetensors.*header length 65535 runs past the end/,
      'SafetensorsError',
    ),
  );

  // an HF sharded checkpoint picked as several Files: the index names the shards
  const shards: Record<string, string[]> = {
    'model-00001-of-00002.safetensors': ['itm_score.fc.weight', 'itm_score.fc.bias'],
    'model-00002-of-00002.safetensors': ['half', 'index', 'mask'],
  };
  const shardFiles = new Map(
    Object.entries(shards).map(([shard, names]) => [
      shard,
      new File([new Uint8Array(serializeSafetensors(new Map(names.map((n) => [n, raws.get(n)!]))))], shard),
    ]),
  );
  const index = {
    metadata: {},
    weight_map: Object.fromEntries(Object.entries(shards).flatMap(([shard, names]) => names.map((n) => [n, shard]))),
  };
  const sharded = ShardedSafetensors.fromIndex('model.safetensors.index.json', index, (shard) =>
    SafetensorsFile.fromSource(blobSource(shardFiles.get(shard)!)),
  );
  const shardedExpected = Object.fromEntries(Object.entries(expected).filter(([n]) => sharded.keys().includes(n)));
  checks.push(
    await checkTensors('sharded safetensors from Files (ShardedSafetensors.fromIndex)', shardedExpected, (n) =>
      sharded.readRaw(n),
    ),
  );

  // path-based loaders need Node: the reader's own error, naming the path and what to do instead
  const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const instead = 'reading a file by path needs Node.js (file paths do not exist in browsers); pass a File or Blob';
  const nodeOnly = (path: string) => new RegExp(`^${escapeRegExp(`${path}: ${instead}`)} through blobSource\\(file\\)`);
  const pathLoaders: [string, () => Promise<unknown>, RegExp, string][] = [
    [
      'SafetensorsFile.open(path)',
      () => SafetensorsFile.open('model.safetensors'),
      nodeOnly('model.safetensors'),
      'SafetensorsError',
    ],
    [
      'loadSafetensors(path)',
      () => loadSafetensors('model.safetensors'),
      nodeOnly('model.safetensors'),
      'SafetensorsError',
    ],
    [
      'TorchCheckpoint.open(path)',
      () => TorchCheckpoint.open('model.pth'),
      nodeOnly('model.pth'),
      'TorchCheckpointError',
    ],
    [
      'ShardedSafetensors.open(path)',
      () => ShardedSafetensors.open('model.safetensors.index.json'),
      /needs Node\.js/,
      'SafetensorsError',
    ],
  ];
  for (const [what, run, pattern, errorName] of pathLoaders) {
    checks.push(await expectError(`${what} is Node-only`, run, pattern, errorName));
  }
  const zero = tf.zeros([1]);
  checks.push(
    await expectError(
      'saveSafetensors(path) is Node-only',
      () => saveSafetensors('out.safetensors', { x: zero }),
      /writing a file by path needs Node\.js/,
      'NodeOnlyError',
    ),
  );
  const caught = await saveSafetensors('out.safetensors', { x: zero }).then(
    () => undefined,
    (e: unknown) => e,
  );
  checks.push({
    name: 'saveSafetensors(path) rejects with the exported NodeOnlyError class (instanceof)',
    maxAbsError: caught instanceof NodeOnlyError ? 0 : Infinity,
    tolerance: 0,
    ok: caught instanceof NodeOnlyError,
    detail: String(caught),
  });
  zero.dispose();
  const { config, heads } = fiberConfigFromFixture(await fetchJson('/fixtures/fiber/set-b/config.json'));
  const model = new FiberCoarseModel(config, heads);
  checks.push(
    await expectError(
      'loadFiberCheckpoint(model, path) is Node-only',
      () => loadFiberCheckpoint(model, 'fiber.ckpt'),
      nodeOnly('fiber.ckpt'),
      'TorchCheckpointError',
    ),
  );
  model.dispose();
  return { checks, info: { pthBytes: (await fixtureFile('torch/state_dict.pth')).size, safetensorsBytes: file.size } };
}
