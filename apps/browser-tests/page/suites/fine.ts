// The fine-grained FIBER parts against the official code in the browser:
// - `fine-a` (fixtures/fiber/fine-a, set A tiny_fine): images + prompts -> backbone (Swin + RoBERTa
//   fused) -> FPN -> VLDyHead; the language features, P3-P7, every head output and tower.
// - `tiny_fine_head` (fixtures/fiber-fine/tiny_fine_head, set B): VLDyHead alone on given P3-P7.
// (fixtures/fiber-fine/tiny_fine is a cut of fine-a: same config, weights and outputs.)
//
// `loadFineModel` is the one place that knows how the model is assembled: when the complete
// fine-grained model class lands, it becomes that class loaded from the same state dict.
import { FiberFineBackbone, fiberFineConfig, type FiberFineConfig } from '@fiber-vl/fusion';
import { FIBER_DYHEAD, FPN, VLDyHead, type DyHeadConfig, type FpnConfig } from '@fiber-vl/heads-fine';
import { robertaConfigFromHf } from '@fiber-vl/roberta';
import { swinConfig } from '@fiber-vl/swin';
import { tf, type BackendName, type SafetensorsFile } from '@fiber-vl/tensor-core';
import { compareTensor } from '../check.js';
import { fetchJson, openRemoteSafetensors, useBackend } from '../fixtures.js';
import type { Check, SuiteParams } from '../protocol.js';

/** The parts of a fixture's config.json these tests read (set A `tiny_fine` format). */
interface FineFixtureJson {
  swin: { embed_dim: number; depths: number[]; num_heads: number[]; window_size: number; patch_size: number };
  roberta: Record<string, unknown>;
  max_query_len: number;
  yaml_overrides: Record<string, unknown>;
  dyhead: { num_convs: number; gn_groups: number; num_classes: number; prior_prob: number };
}

function isFineFixtureJson(j: unknown): j is FineFixtureJson {
  const o = j as Partial<FineFixtureJson> | null;
  return (
    typeof o === 'object' &&
    o !== null &&
    !!o.swin &&
    !!o.roberta &&
    typeof o.max_query_len === 'number' &&
    !!o.yaml_overrides &&
    !!o.dyhead
  );
}

function fineConfigs(j: FineFixtureJson): { backbone: FiberFineConfig; fpn: FpnConfig; head: DyHeadConfig } {
  const y = j.yaml_overrides;
  const channels = Number(y['MODEL.BACKBONE.OUT_CHANNELS']);
  const swinOut = y['MODEL.SWINT.OUT_CHANNELS'] as number[];
  return {
    backbone: fiberFineConfig('base', {
      swin: swinConfig('swin_base_patch4_window12_384', {
        embedDim: j.swin.embed_dim,
        depths: j.swin.depths,
        numHeads: j.swin.num_heads,
        windowSize: j.swin.window_size,
        patchSize: j.swin.patch_size,
      }),
      roberta: robertaConfigFromHf(j.roberta),
      maxQueryLen: j.max_query_len,
    }),
    fpn: { inChannels: [swinOut[1], swinOut[2], swinOut[3]], outChannels: channels },
    head: {
      ...FIBER_DYHEAD,
      channels,
      numConvs: j.dyhead.num_convs,
      groupNormGroups: j.dyhead.gn_groups,
      dyReluHidden: Math.floor(channels / 4),
      numClasses: j.dyhead.num_classes,
      langDim: Number(y['MODEL.LANGUAGE_BACKBONE.LANG_DIM']),
      maxQueryLen: j.max_query_len,
      priorProb: j.dyhead.prior_prob,
    },
  };
}

/** The fine-grained model as the parity needs it: inputs -> every compared tensor, by fixture name. */
interface FineModel {
  forward(images: tf.Tensor, inputIds: tf.Tensor, attentionMask: tf.Tensor): Map<string, tf.Tensor>;
  dispose(): void;
}

/** Splits a state dict by key prefix (prefix removed), leaving the other keys out. */
function withPrefix(dict: Map<string, tf.Tensor>, prefix: string): Map<string, tf.Tensor> {
  return new Map([...dict].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
}

const LEVEL = (l: number) => `P${l + 3}`;

/** Backbone (with the FPN as its neck, `fusion_backbone.*`) + VLDyHead (`rpn.head.*`), from the official state dict. */
async function loadFineModel(json: FineFixtureJson, weights: SafetensorsFile): Promise<FineModel> {
  const configs = fineConfigs(json);
  const backbone = new FiberFineBackbone(configs.backbone, { neck: new FPN(configs.fpn) });
  const head = new VLDyHead(configs.head);
  // rpn.anchor_generator.cell_anchors are constants the anchor generator recomputes
  const dict = await weights.readAll((k) => !k.startsWith('rpn.anchor_generator.'));
  try {
    backbone.loadStateDict(withPrefix(dict, 'fusion_backbone.'));
    head.loadStateDict(withPrefix(dict, 'rpn.head.'));
  } finally {
    tf.dispose([...dict.values()]);
  }
  backbone.eval();
  head.eval();
  return {
    forward(images, inputIds, attentionMask) {
      const b = backbone.forward(images, inputIds, attentionMask);
      const h = head.forward(b.pyramid!, b.language.embedded, { allTowers: true });
      const out = new Map<string, tf.Tensor>([
        ['lang.hidden', b.language.hidden],
        ['lang.embedded', b.language.embedded],
        ['lang.aggregate', b.language.aggregate],
      ]);
      b.pyramid!.forEach((p, l) => out.set(`fpn.${LEVEL(l)}`, p));
      h.levels.forEach((o, l) => {
        out.set(`head.cls_logits.${LEVEL(l)}`, o.clsLogits);
        out.set(`head.bbox_reg.${LEVEL(l)}`, o.bboxReg);
        out.set(`head.centerness.${LEVEL(l)}`, o.centerness);
        out.set(`head.dot_product_logits.${LEVEL(l)}`, o.dotProductLogits);
        o.towers.forEach((t, k) => out.set(`head.tower${k}.${LEVEL(l)}`, t));
      });
      tf.dispose([...b.stages, b.language.masks]);
      return out;
    },
    dispose() {
      backbone.dispose();
      head.dispose();
    },
  };
}

/** Compares every tensor of `ours` found in one of `refs`; head outputs on the relative form of the package tests. */
async function compareAll(ours: Map<string, tf.Tensor>, refs: SafetensorsFile[], tolerance: number): Promise<Check[]> {
  const checks: Check[] = [];
  for (const [name, t] of ours) {
    const ref = refs.find((f) => f.tensors.has(name));
    if (!ref) {
      checks.push({ name, maxAbsError: Infinity, tolerance, ok: false, detail: 'not in the fixture files' });
      continue;
    }
    const relative = !name.startsWith('lang.');
    checks.push(await compareTensor(name, t, await ref.readRaw(name), { tolerance, relative }));
  }
  return checks;
}

async function fineA(tolerance: number): Promise<{ checks: Check[]; info: Record<string, unknown> }> {
  const dir = '/fixtures/fiber/fine-a/';
  const json = await fetchJson(`${dir}config.json`);
  if (!isFineFixtureJson(json))
    throw new Error(`${dir}config.json: expected swin, roberta, max_query_len, yaml_overrides and dyhead`);
  const t0 = performance.now();
  const model = await loadFineModel(json, await openRemoteSafetensors(`${dir}model.safetensors`));
  const inputs = await openRemoteSafetensors(`${dir}inputs.safetensors`);
  const [images, ids, mask] = await Promise.all(
    ['images', 'input_ids', 'attention_mask'].map((n) => inputs.readTensor(n)),
  );
  const loadMs = performance.now() - t0;
  const t1 = performance.now();
  const out = model.forward(images, ids, mask);
  await out.get('head.dot_product_logits.P3')!.data();
  const runMs = performance.now() - t1;
  const refs = await Promise.all(
    ['outputs.safetensors', 'intermediates.safetensors'].map((f) => openRemoteSafetensors(`${dir}${f}`)),
  );
  const checks = await compareAll(out, refs, tolerance);
  tf.dispose([images, ids, mask, ...out.values()]);
  model.dispose();
  return { checks, info: { loadMs, runMs } };
}

async function tinyFineHead(tolerance: number): Promise<{ checks: Check[]; info: Record<string, unknown> }> {
  const dir = '/fixtures/fiber-fine/tiny_fine_head/';
  const j = (await fetchJson(`${dir}config.json`)) as {
    tiny_overrides: { CHANNELS: number; LANG_DIM: number; MAX_QUERY_LEN: number };
    dyhead: { NUM_CONVS: number; NUM_CLASSES: number; PRIOR_PROB: number; LOG_SCALE: number };
    group_norm: { num_groups: number; eps: number };
  };
  const t = j.tiny_overrides;
  const head = new VLDyHead({
    ...FIBER_DYHEAD,
    channels: t.CHANNELS,
    numConvs: j.dyhead.NUM_CONVS,
    groupNormGroups: j.group_norm.num_groups,
    groupNormEps: j.group_norm.eps,
    dyReluHidden: Math.floor(t.CHANNELS / 4),
    numClasses: j.dyhead.NUM_CLASSES,
    langDim: t.LANG_DIM,
    maxQueryLen: t.MAX_QUERY_LEN,
    priorProb: j.dyhead.PRIOR_PROB,
    logScale: j.dyhead.LOG_SCALE,
  });
  const weights = await (await openRemoteSafetensors(`${dir}model.safetensors`)).readAll();
  head.loadStateDict(weights);
  tf.dispose([...weights.values()]);
  head.eval();
  const inputs = await openRemoteSafetensors(`${dir}inputs.safetensors`);
  const features = await Promise.all([0, 1, 2, 3, 4].map((l) => inputs.readTensor(`fpn.${l}`)));
  const embedded = await inputs.readTensor('lang.embedded');
  const t1 = performance.now();
  const h = head.forward(features, embedded, { allTowers: true });
  const ours = new Map<string, tf.Tensor>();
  h.levels.forEach((o, l) => {
    o.towers.forEach((tw, k) => ours.set(`act.dyhead_tower.${k}.level${l}`, tw));
    ours.set(`cls_logits.${l}`, o.clsLogits);
    ours.set(`bbox_reg.${l}`, o.bboxReg);
    ours.set(`centerness.${l}`, o.centerness);
    ours.set(`dot_product_logits.${l}`, o.dotProductLogits);
  });
  await ours.get('dot_product_logits.0')!.data();
  const runMs = performance.now() - t1;
  const checks = await compareAll(ours, [await openRemoteSafetensors(`${dir}outputs.safetensors`)], tolerance);
  tf.dispose([...features, embedded, ...ours.values()]);
  head.dispose();
  return { checks, info: { runMs } };
}

/** params: backend, fixture ('fine-a' | 'tiny_fine_head'). */
export async function fineSuite(params: SuiteParams): Promise<{ checks: Check[]; info: Record<string, unknown> }> {
  const backend = await useBackend(params.backend as BackendName);
  const run = params.fixture === 'fine-a' ? fineA : params.fixture === 'tiny_fine_head' ? tinyFineHead : undefined;
  if (!run) throw new Error(`fine: unknown fixture "${params.fixture}" (expected fine-a, tiny_fine_head)`);
  const r = await run(1e-4);
  return {
    checks: r.checks,
    info: {
      ...r.info,
      backend: backend.name,
      adapter: backend.adapter,
      threads: backend.threads,
      tensorsAfter: tf.memory().numTensors,
    },
  };
}
