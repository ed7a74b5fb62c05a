// Which official FIBER state dict a checkpoint's tensor names and shapes match (coarse at 384 or
// 576 px and its task heads, or fine-grained v2 / v3), and what is missing, extra or of another
// shape. Names and shapes only, no file access, so it runs before any model is built, in Node or
// in a browser: `fiber-bench inspect` uses it on files, the demo page on a checkpoint a user drops.
import { FIBER_QUEUE_BUFFERS } from './checkpoint.js';
import { COARSE_KEYS, COARSE_TASKS, FINE_KEYS } from './official-keys.generated.js';

/** A task of the official coarse checkpoints (`fiber_pretrain.ckpt`, `fiber_vqa.ckpt`, ...). */
export type FiberCoarseTask = (typeof COARSE_TASKS)[number];

/** A head of the coarse model (`@fiber-vl/heads-coarse`); `caption` is the captioning adapters. */
export type FiberCoarseHead = 'itc' | 'itm' | 'mlm' | 'vqa' | 'nlvr2' | 'caption';

export interface FiberCheckpointMatch {
  /** exact: every key and shape; same-keys: every key, some shapes differ; closest: most keys; none: not a FIBER model. */
  verdict: 'exact' | 'same-keys' | 'closest' | 'none';
  /** The reference it was compared with, in words. */
  model: string;
  kind: 'coarse' | 'fine';
  imageSize?: 384 | 576;
  task?: FiberCoarseTask;
  version?: 'v2' | 'v3';
  /** Coarse heads found in the checkpoint, in this order: itc, itm, mlm, vqa, nlvr2, caption. */
  heads: FiberCoarseHead[];
  /** VQA answers (rows of vqa_classifier.3.weight), when the vqa head is there. */
  vqaAnswers?: number;
  /** A prefix removed from every key before comparing ("module." of DataParallel checkpoints). */
  strippedPrefix?: string;
  /** Reference keys present with the reference shape / all reference keys. */
  matched: number;
  expected: number;
  missing: string[];
  extra: string[];
  shapeMismatches: { name: string; shape: number[]; expected: number[] }[];
}

// ---- the reference tables ---------------------------------------------------------------------

interface RefKey {
  name: string;
  shape: string;
  shape576: string;
  dtype: string;
  tasks: number;
  v3only: boolean;
}

/** Front-coded lines "<shared prefix length>\t<rest>\t<fields...>" -> [key, ...fields]. */
function decodeTable(text: string): string[][] {
  let prev = '';
  return text.split('\n').map((line) => {
    const [shared, rest, ...fields] = line.split('\t');
    prev = prev.slice(0, Number(shared)) + rest;
    return [prev, ...fields];
  });
}

let reference: { coarse: RefKey[]; fine: RefKey[] } | undefined;
function referenceKeys() {
  reference ??= {
    coarse: decodeTable(COARSE_KEYS).map(([name, shape, s576, dtype, mask]) => ({
      name,
      shape,
      shape576: s576 || shape,
      dtype,
      tasks: Number(mask),
      v3only: false,
    })),
    fine: decodeTable(FINE_KEYS).map(([name, shape, dtype, version]) => ({
      name,
      shape,
      shape576: shape,
      dtype,
      tasks: 0,
      v3only: version === 'v3',
    })),
  };
  return reference;
}

interface Candidate {
  model: string;
  kind: 'coarse' | 'fine';
  imageSize?: 384 | 576;
  task?: FiberCoarseTask;
  version?: 'v2' | 'v3';
  /** name -> shape ("768x3x4x4"). */
  keys: Map<string, string>;
  /** Keys a checkpoint may leave out (the ITC queues, which the official loader drops). */
  optional: Set<string>;
}

function candidates(): Candidate[] {
  const { coarse, fine } = referenceKeys();
  const out: Candidate[] = [];
  for (const imageSize of [384, 576] as const) {
    COARSE_TASKS.forEach((task, bit) => {
      const keys = new Map(
        coarse.filter((k) => k.tasks & (1 << bit)).map((k) => [k.name, imageSize === 576 ? k.shape576 : k.shape]),
      );
      const optional = new Set(FIBER_QUEUE_BUFFERS.filter((k) => keys.has(k)));
      out.push({
        model: `FIBER-B coarse, ${imageSize} px, "${task}" task checkpoint`,
        kind: 'coarse',
        imageSize,
        task,
        keys,
        optional,
      });
    });
  }
  for (const version of ['v2', 'v3'] as const) {
    const keys = new Map(fine.filter((k) => version === 'v3' || !k.v3only).map((k) => [k.name, k.shape]));
    out.push({
      model: `FIBER-B fine-grained (FUSION_VERSION ${version})`,
      kind: 'fine',
      version,
      keys,
      optional: new Set(),
    });
  }
  return out;
}

const COARSE_HEADS: readonly [FiberCoarseHead, string][] = [
  ['itc', 'temp'],
  ['itm', 'itm_score.'],
  ['mlm', 'mlm_score.'],
  ['vqa', 'vqa_classifier.'],
  ['nlvr2', 'nlvr2_classifier.'],
  ['caption', 'cross_modal_att_layers.'],
];

/**
 * Compares a checkpoint's tensor names and shapes with every official FIBER-B state dict (coarse
 * at 384 / 576 px for each task checkpoint, fine-grained v2 / v3) and returns the closest, with
 * what is missing, extra or of another shape. A "module." prefix on every key is stripped first.
 */
export function matchFiberCheckpoint(
  tensors: readonly { name: string; shape: readonly number[] }[],
): FiberCheckpointMatch {
  const prefix = 'module.';
  const strip = tensors.length > 0 && tensors.every((t) => t.name.startsWith(prefix));
  const shapes = new Map(tensors.map((t) => [strip ? t.name.slice(prefix.length) : t.name, t.shape]));
  let best: (FiberCheckpointMatch & { cost: number }) | undefined;
  for (const c of candidates()) {
    const missing: string[] = [];
    const shapeMismatches: FiberCheckpointMatch['shapeMismatches'] = [];
    let matched = 0;
    for (const [name, expected] of c.keys) {
      const shape = shapes.get(name);
      if (!shape) {
        if (!c.optional.has(name)) missing.push(name);
      } else if (shape.join('x') === expected) matched++;
      else shapeMismatches.push({ name, shape: [...shape], expected: expected ? expected.split('x').map(Number) : [] });
    }
    const extra = [...shapes.keys()].filter((k) => !c.keys.has(k));
    const cost = missing.length + extra.length + shapeMismatches.length;
    if (best && (cost > best.cost || (cost === best.cost && matched <= best.matched))) continue;
    const present = matched + shapeMismatches.length;
    const verdict =
      cost === 0
        ? 'exact'
        : !missing.length && !extra.length
          ? 'same-keys'
          : present * 2 >= c.keys.size - c.optional.size
            ? 'closest'
            : 'none';
    best = {
      cost,
      verdict,
      model: c.model,
      kind: c.kind,
      ...(c.imageSize && { imageSize: c.imageSize }),
      ...(c.task && { task: c.task }),
      ...(c.version && { version: c.version }),
      heads: [],
      ...(strip && { strippedPrefix: prefix }),
      matched,
      expected: c.keys.size,
      missing,
      extra,
      shapeMismatches,
    };
  }
  const { cost: _, ...match } = best!;
  if (match.kind === 'coarse') {
    match.heads = COARSE_HEADS.filter(([, p]) => [...shapes.keys()].some((k) => k === p || k.startsWith(p))).map(
      ([h]) => h,
    );
    const vqa = shapes.get('vqa_classifier.3.weight');
    if (vqa) match.vqaAnswers = vqa[0];
  }
  return match;
}
