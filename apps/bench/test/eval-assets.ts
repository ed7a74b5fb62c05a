// Assets for the `fiber-bench eval` tests: a byte-level BPE tokenizer trained on the sample folders'
// text (saved as roberta-base's vocab.json + merges.txt) and tiny seeded checkpoints of every kind,
// saved with the project's exporters in the official formats (Lightning .ckpt, maskrcnn .pth,
// safetensors).
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fiberConfig, exportFiberCheckpoint } from '@fiber-vl/fusion';
import { FIBER_TASK_HEADS, FiberCoarseModel, type CoarseHeadsSelection } from '@fiber-vl/heads-coarse';
import { createFiberFineModel, serializeFiberFineCheckpoint } from '@fiber-vl/heads-fine';
import { mergesToText, trainByteLevelBpe } from '@fiber-vl/roberta';
import { Generator, initBackend, serializeTorchCheckpoint, tf } from '@fiber-vl/tensor-core';

export const root = join(__dirname, '../../..');
export const samples = join(root, 'fixtures/eval');

/** Every string of the sample folders' json files and the NLVR2 lines: the tokenizer's corpus. */
function corpus(): string[] {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (typeof v === 'string') {
      if (/[a-z]/i.test(v)) out.push(v);
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  const visit = (dir: string) => {
    for (const f of readdirSync(dir).sort()) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) visit(p);
      else if (f.endsWith('.json')) {
        const text = readFileSync(p, 'utf8');
        // NLVR2's .json files are JSON lines
        try {
          walk(JSON.parse(text));
        } catch {
          text
            .split('\n')
            .filter(Boolean)
            .forEach((l) => walk(JSON.parse(l)));
        }
      }
    }
  };
  visit(samples);
  return out;
}

export interface EvalAssets {
  dir: string;
  tokenizer: string;
  vocabSize: number;
  ckpt: Record<'vqa' | 'caption' | 'nlvr2' | 'itc' | 'itm' | 'pretrain' | 'fineV2' | 'fineV3' | 'detector', string>;
}

/** Writes the tokenizer and the checkpoints into `dir` (seeded: the same bytes every time). */
export async function makeEvalAssets(dir: string): Promise<EvalAssets> {
  await initBackend({ backend: 'cpu' });
  mkdirSync(dir, { recursive: true });
  const bpe = trainByteLevelBpe(corpus(), { vocabSize: 400, minFrequency: 1 });
  const tokenizer = join(dir, 'tokenizer');
  mkdirSync(tokenizer, { recursive: true });
  writeFileSync(join(tokenizer, 'vocab.json'), JSON.stringify(bpe.vocab));
  writeFileSync(join(tokenizer, 'merges.txt'), mergesToText(bpe.merges));
  const vocabSize = Object.keys(bpe.vocab).length;
  // the goldens were recorded with the added layers at PyTorch's default init, whose random heads
  // give well-spread scores (FIBER's N(0, 0.02) at width 64 gives near-equal ones)
  const config = fiberConfig('tiny', { roberta: { vocabSize }, initializerRange: null });
  const coarse = async (name: string, heads: CoarseHeadsSelection, seed: number, format: 'ckpt' | 'safetensors') => {
    const model = new FiberCoarseModel(config, heads, new Generator(seed));
    const path = join(dir, `${name}.${format}`);
    if (format === 'ckpt') writeFileSync(path, serializeTorchCheckpoint(model.stateDict(), { wrapKey: 'state_dict' }));
    else await exportFiberCheckpoint(model, path);
    model.dispose();
    return path;
  };
  const fine = (name: string, version: 'v2' | 'v3', seed: number, bias0?: number) => {
    const model = createFiberFineModel(
      'tiny',
      { roberta: { vocabSize }, version, initializerRange: null },
      new Generator(seed),
    );
    // a random head scores every class about 0.01 (the focal-loss prior), under the 0.05 detection threshold
    if (bias0 !== undefined)
      for (const [k, p] of model.namedParameters()) if (k.endsWith('bias0')) p.value.assign(tf.tensor1d([bias0]));
    const path = join(dir, `${name}.pth`);
    writeFileSync(path, serializeFiberFineCheckpoint(model, 'pth'));
    model.dispose();
    return path;
  };
  return {
    dir,
    tokenizer,
    vocabSize,
    ckpt: {
      // the fixture's answer list (ViLT's rule on its annotations) has 7 answers
      vqa: await coarse('tiny_vqa', { ...FIBER_TASK_HEADS.vqa, vqaLabels: 7 }, 1, 'ckpt'),
      caption: await coarse('tiny_caption', FIBER_TASK_HEADS.caption, 2, 'safetensors'),
      nlvr2: await coarse('tiny_nlvr2', FIBER_TASK_HEADS.nlvr2, 3, 'ckpt'),
      itc: await coarse('tiny_irtr_itc', FIBER_TASK_HEADS.irtr_itc, 4, 'safetensors'),
      itm: await coarse('tiny_irtr_itm', FIBER_TASK_HEADS.irtr_itm, 5, 'ckpt'),
      pretrain: await coarse('tiny_pretrain', FIBER_TASK_HEADS.pretrain, 6, 'safetensors'),
      fineV2: fine('tiny_fine_v2', 'v2', 7),
      fineV3: fine('tiny_fine_v3', 'v3', 8),
      detector: fine('tiny_fine_detector', 'v2', 9, 1.5),
    },
  };
}
