// Checkpoint reading through the fusion entry points: the state dict of every format, and no
// tensors or file handles left behind when a checkpoint fails half-way.
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsError, TorchCheckpointError, blobSource, serializeSafetensors, tf } from '@fiber-vl/tensor-core';
import { useBackend } from '@fiber-vl/tensor-core/testing';
import { swinConfig } from '@fiber-vl/swin';
import { robertaConfig } from '@fiber-vl/roberta';
import { FiberCoarseBackbone } from './backbone.js';
import { loadFiberCheckpoint, readCheckpointStateDict } from './checkpoint.js';

const torchDir = join(__dirname, '../../../fixtures/torch');
const openFds = () => (existsSync('/proc/self/fd') ? readdirSync('/proc/self/fd').length : 0);

/** The smallest backbone the FIBER rules allow (a model to load into; its weights do not matter here). */
function tinyBackbone() {
  const swin = swinConfig('swin_base_patch4_window12_384', {
    imageSize: 32,
    windowSize: 1,
    embedDim: 4,
    depths: [1, 1, 2, 2],
    numHeads: [1, 1, 1, 1],
  });
  const roberta = robertaConfig({
    vocabSize: 10,
    hiddenSize: 4,
    numHiddenLayers: 4,
    numAttentionHeads: 1,
    intermediateSize: 8,
    maxPositionEmbeddings: 12,
  });
  return new FiberCoarseBackbone({ swin, roberta, numFuseBlock: 3, hiddenSize: 4, maxTextLen: 8 });
}

describe('reading checkpoints', () => {
  beforeAll(() => useBackend('cpu'));

  it('reads the state dict of a Lightning .ckpt, a .pth and a .safetensors file', async () => {
    for (const [file, count] of [
      ['lightning.ckpt', 4],
      ['state_dict.pth', 10],
      ['tiny.safetensors', 8],
    ] as const) {
      const dict = await readCheckpointStateDict(join(torchDir, file));
      expect(dict.size, file).toBe(count);
      tf.dispose([...dict.values()]);
    }
  });

  it('reads the same state dicts from byte sources (a browser File / Blob), the format from the first bytes', async () => {
    for (const file of ['lightning.ckpt', 'state_dict.pth', 'tiny.safetensors']) {
      const fromPath = await readCheckpointStateDict(join(torchDir, file));
      // no extension in the name: the first bytes decide
      const fromBytes = await readCheckpointStateDict(
        blobSource(new Blob([readFileSync(join(torchDir, file))]), 'upload'),
      );
      expect([...fromBytes.keys()], file).toEqual([...fromPath.keys()]);
      for (const [k, t] of fromPath) expect(await fromBytes.get(k)!.data(), `${file}: ${k}`).toEqual(await t.data());
      tf.dispose([...fromPath.values(), ...fromBytes.values()]);
    }
    // a safetensors header length whose first byte reads as a pickle's 0x80 or a zip's "P"
    for (const first of [0x80, 0x50]) {
      let bytes = serializeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } });
      for (let pad = 0; bytes[0] !== first; pad++)
        bytes = serializeSafetensors(
          { w: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } },
          { pad: 'x'.repeat(pad) },
        );
      const dict = await readCheckpointStateDict(blobSource(new Blob([bytes.slice()]), 'weights'));
      expect(Array.from(await dict.get('w')!.data())).toEqual([1, 2]);
      tf.dispose([...dict.values()]);
    }
    await expect(readCheckpointStateDict(blobSource(new Blob([new Uint8Array(20)]), 'zeros.bin'))).rejects.toThrow(
      /zeros\.bin/,
    );
  });

  it('reads a file by what its bytes are, not its extension (safetensors named .bin, torch.save named .safetensors)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fiber-misnamed-'));
    const fds = openFds();
    try {
      for (const [file, misnamed] of [
        ['tiny.safetensors', 'model.bin'],
        ['state_dict.pth', 'model.safetensors'],
        ['lightning.ckpt', 'weights'],
      ]) {
        copyFileSync(join(torchDir, file), join(dir, misnamed));
        const right = await readCheckpointStateDict(join(torchDir, file));
        const named = await readCheckpointStateDict(join(dir, misnamed));
        expect([...named.keys()], misnamed).toEqual([...right.keys()]);
        for (const [k, t] of right) expect(await named.get(k)!.data(), `${misnamed}: ${k}`).toEqual(await t.data());
        tf.dispose([...right.values(), ...named.values()]);
      }
      // bytes that are neither: the reader the extension promises names the file and what is wrong
      writeFileSync(join(dir, 'junk.safetensors'), 'not a checkpoint at all');
      writeFileSync(join(dir, 'junk.pth'), 'not a checkpoint at all');
      await expect(readCheckpointStateDict(join(dir, 'junk.safetensors'))).rejects.toThrow(
        /junk\.safetensors: header length \d+ runs past the end of the file/,
      );
      await expect(readCheckpointStateDict(join(dir, 'junk.pth'))).rejects.toThrow(/junk\.pth: no ZIP end-of-central/);
      await expect(readCheckpointStateDict(join(dir, 'absent.pth'))).rejects.toThrow(TorchCheckpointError);
      await expect(readCheckpointStateDict(join(dir, 'absent.pth'))).rejects.toThrow(/absent\.pth: no such file/);
      await expect(readCheckpointStateDict(join(dir, 'absent.safetensors'))).rejects.toThrow(SafetensorsError);
      await expect(readCheckpointStateDict(dir)).rejects.toThrow(/is a directory/);
      expect(openFds()).toBe(fds);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('disposes what it read and closes the file when a later tensor fails', async () => {
    const model = tinyBackbone();
    const tensors = tf.memory().numTensors;
    const fds = openFds();
    await expect(readCheckpointStateDict(join(torchDir, 'int64_overflow.pth'))).rejects.toBeInstanceOf(
      TorchCheckpointError,
    );
    await expect(readCheckpointStateDict(join(torchDir, 'int64_overflow.safetensors'))).rejects.toBeInstanceOf(
      SafetensorsError,
    );
    await expect(loadFiberCheckpoint(model, join(torchDir, 'int64_overflow.pth'))).rejects.toThrow(
      /tensor "b": I64 value 1099511627776/,
    );
    await expect(loadFiberCheckpoint(model, join(torchDir, 'view_past_storage.pth'))).rejects.toThrow(
      /reaches element 15 of storage 0/,
    );
    await expect(loadFiberCheckpoint(model, join(torchDir, 'state_dict.pth'))).rejects.toThrow(); // strict: none of its keys are FIBER's
    expect(tf.memory().numTensors).toBe(tensors);
    expect(openFds()).toBe(fds);
    model.dispose();
  });
});
