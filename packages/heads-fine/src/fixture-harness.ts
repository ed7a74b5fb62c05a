// The fine-grained fixture harness behind `fiber-bench parity` and the tests: recognises the two
// folder kinds the official-code generators write, builds the model from config.json alone, and
// computes every output / intermediate it can by the folder's names (it never reads expected
// values). Any folder of the same generators (other sizes, window padding, batch, query length)
// works without code changes.
//  - full model (set A `tiny_fine`): config.json with swin / roberta / dyhead / rpn sections;
//    inputs images, input_ids, attention_mask; names img.*, txt.*, fpn.P*, head.*.P*,
//    head.tower{k}.P*, lang.*, anchors.P*, decoded_boxes.P*.
//  - head only (set B `tiny_fine_head`): config.json with tiny_overrides / dyhead / rpn; inputs
//    fpn.{l}, lang.embedded; names act.dyhead_tower.{k}.level{l}, {cls_logits, bbox_reg,
//    centerness, dot_product_logits, anchors, decoded_boxes, scores_posmap}.{l}.
import { disposeOutput, tf, tidyOutput } from '@fiber-vl/tensor-core';
import { runFused } from '@fiber-vl/fusion';
import { robertaConfigFromHf } from '@fiber-vl/roberta';
import { swinConfig } from '@fiber-vl/swin';
import { FIBER_ANCHORS, generateAnchors, type AnchorConfig } from './anchors.js';
import { decodeBoxesTensor } from './box-coder.js';
import { FIBER_DYHEAD, type DyHeadConfig } from './config.js';
import { VLDyHead } from './dyhead.js';
import { FiberFineModel, fiberFineModelConfig, type FiberFineModelConfig } from './model.js';
import { detectionScores } from './postprocess.js';

type Json = Record<string, unknown>;
const num = (v: unknown, field: string): number => {
  if (typeof v !== 'number') throw new Error(`fixture config.json: ${field} is not a number`);
  return v;
};
const obj = (v: unknown, field: string): Json => {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new Error(`fixture config.json: ${field} is not an object`);
  return v as Json;
};

export type FineFixtureKind = 'full' | 'head';

export function fineFixtureKind(config: unknown): FineFixtureKind | undefined {
  const c = typeof config === 'object' && config !== null ? (config as Json) : {};
  if ('swin' in c && 'roberta' in c && 'dyhead' in c) return 'full';
  if ('tiny_overrides' in c && 'dyhead' in c && !('swin' in c)) return 'head';
  return undefined;
}

function anchorsOf(rpn: Json): AnchorConfig {
  return {
    ...FIBER_ANCHORS,
    sizes: (rpn.anchor_sizes ?? rpn.ANCHOR_SIZES ?? FIBER_ANCHORS.sizes) as number[],
    strides: (rpn.anchor_strides ?? rpn.ANCHOR_STRIDE ?? FIBER_ANCHORS.strides) as number[],
    aspectRatios: (rpn.aspect_ratios ?? rpn.ASPECT_RATIOS ?? FIBER_ANCHORS.aspectRatios) as number[],
  };
}

/** The full model described by a set A fine fixture's config.json. */
export function fineModelConfigFromFixture(json: unknown): FiberFineModelConfig {
  const c = obj(json, '(root)');
  const s = obj(c.swin, 'swin');
  const d = obj(c.dyhead, 'dyhead');
  const y = obj(c.yaml_overrides ?? {}, 'yaml_overrides');
  const channels = num(d.channels, 'dyhead.channels');
  const version = String(y['MODEL.SWINT.VERSION'] ?? y['MODEL.FUSION_VERSION'] ?? 'v2').includes('v3') ? 'v3' : 'v2';
  return fiberFineModelConfig('base', {
    swin: swinConfig('swin_base_patch4_window12_384', {
      embedDim: num(s.embed_dim, 'swin.embed_dim'),
      depths: s.depths as number[],
      numHeads: s.num_heads as number[],
      windowSize: num(s.window_size, 'swin.window_size'),
      patchSize: num(s.patch_size ?? 4, 'swin.patch_size'),
      mlpRatio: num(s.mlp_ratio ?? 4, 'swin.mlp_ratio'),
    }),
    roberta: robertaConfigFromHf(obj(c.roberta, 'roberta')),
    maxQueryLen: num(c.max_query_len, 'max_query_len'),
    version,
    fpn: { outChannels: channels },
    head: {
      channels,
      numConvs: num(d.num_convs, 'dyhead.num_convs'),
      groupNormGroups: num(d.gn_groups, 'dyhead.gn_groups'),
      dyReluHidden: Math.floor(channels / 4),
      numClasses: num(d.num_classes, 'dyhead.num_classes'),
      priorProb: num(d.prior_prob ?? 0.01, 'dyhead.prior_prob'),
    },
    anchors: anchorsOf(obj(c.rpn ?? {}, 'rpn')),
  });
}

/** The VLDyHead described by a set B head fixture's config.json. */
export function fineHeadConfigFromFixture(json: unknown): {
  head: DyHeadConfig;
  anchors: AnchorConfig;
  labelToTokens: number[][];
} {
  const c = obj(json, '(root)');
  const t = obj(c.tiny_overrides, 'tiny_overrides');
  const d = obj(c.dyhead, 'dyhead');
  const g = obj(c.group_norm ?? {}, 'group_norm');
  const channels = num(t.CHANNELS, 'tiny_overrides.CHANNELS');
  const posmap = obj(c.positive_map_for_scores ?? {}, 'positive_map_for_scores');
  return {
    head: {
      ...FIBER_DYHEAD,
      channels,
      numConvs: num(d.NUM_CONVS, 'dyhead.NUM_CONVS'),
      groupNormGroups: num(g.num_groups ?? t.NUM_GROUPS, 'group_norm.num_groups'),
      groupNormEps: num(g.eps ?? 1e-5, 'group_norm.eps'),
      dyReluHidden: Math.floor(channels / 4),
      numClasses: num(d.NUM_CLASSES, 'dyhead.NUM_CLASSES'),
      langDim: num(t.LANG_DIM, 'tiny_overrides.LANG_DIM'),
      maxQueryLen: num(t.MAX_QUERY_LEN, 'tiny_overrides.MAX_QUERY_LEN'),
      priorProb: num(d.PRIOR_PROB ?? 0.01, 'dyhead.PRIOR_PROB'),
      logScale: num(d.LOG_SCALE ?? 0, 'dyhead.LOG_SCALE'),
    },
    anchors: anchorsOf(obj(c.rpn ?? {}, 'rpn')),
    labelToTokens: Object.keys(posmap)
      .sort((a, b) => Number(a) - Number(b))
      .map((k) => posmap[k] as number[]),
  };
}

/** [B, 4, H, W] codes -> [B, H*W, 4] (h, w order), and the decoded boxes with the level's anchors. */
function decodeLevel(bboxReg: tf.Tensor, anchors: Float32Array): { anchors: tf.Tensor; boxes: tf.Tensor } {
  return tidyOutput(() => {
    const [B, , H, W] = bboxReg.shape;
    const codes = tf.reshape(tf.transpose(bboxReg, [0, 2, 3, 1]), [B, H * W, 4]);
    const a = tf.tensor2d(anchors, [H * W, 4]);
    return { anchors: a, boxes: decodeBoxesTensor(codes, tf.broadcastTo(a, [B, H * W, 4])) };
  });
}

export interface FineFixtureResult {
  tensors: Map<string, tf.Tensor>;
  /** Names the harness cannot compute for this folder (listed by the parity report). */
  uncomputable: string[];
}

/**
 * Runs the passes of a fine-grained fixture folder and returns, by the folder's names, the
 * tensors in `wanted` it can compute. `weights` is the folder's model.safetensors (official keys).
 */
export async function runFineFixturePasses(
  config: unknown,
  weights: Map<string, tf.Tensor>,
  inputs: Map<string, tf.Tensor>,
  wanted: Set<string>,
): Promise<FineFixtureResult> {
  const kind = fineFixtureKind(config);
  if (!kind)
    throw new Error(
      'fixture config.json is neither a full fine-grained model (swin, roberta, dyhead) nor a head-only one (tiny_overrides, dyhead)',
    );
  const out = new Map<string, tf.Tensor>();
  const put = (name: string, t: tf.Tensor) => (wanted.has(name) && !out.has(name) ? out.set(name, t) : t.dispose());
  const need = (name: string) => {
    const t = inputs.get(name);
    if (!t) throw new Error(`fixture inputs.safetensors has no "${name}"`);
    return t;
  };
  if (kind === 'head') {
    const { head: cfg, anchors: anchorCfg, labelToTokens } = fineHeadConfigFromFixture(config);
    const head = new VLDyHead(cfg).eval();
    try {
      head.loadStateDict(weights);
      const features = Array.from({ length: cfg.numLevels }, (_, l) => need(`fpn.${l}`));
      const r = head.forward(features, need('lang.embedded'), { allTowers: true });
      const anchors = generateAnchors(
        features.map((f) => [f.shape[2], f.shape[3]] as [number, number]),
        anchorCfg,
      );
      for (const [l, o] of r.levels.entries()) {
        o.towers.forEach((t, k) => put(`act.dyhead_tower.${k}.level${l}`, t));
        put(`cls_logits.${l}`, o.clsLogits);
        put(`bbox_reg.${l}`, o.bboxReg);
        put(`centerness.${l}`, o.centerness);
        const dec = decodeLevel(o.bboxReg, anchors[l]);
        put(`anchors.${l}`, dec.anchors);
        put(`decoded_boxes.${l}`, dec.boxes);
        if (wanted.has(`scores_posmap.${l}`) && labelToTokens.length) {
          const [B, , H, W] = o.bboxReg.shape;
          const [ctr, dot] = await Promise.all([o.centerness.data(), o.dotProductLogits.data()]);
          const T: number = o.dotProductLogits.shape[2] ?? 0;
          const scores = new Float32Array(B * H * W * labelToTokens.length);
          for (let b = 0; b < B; b++) {
            const level = {
              anchors: anchors[l],
              boxRegression: new Float32Array(H * W * 4),
              centerness: (ctr as Float32Array).subarray(b * H * W, (b + 1) * H * W),
              dotProductLogits: (dot as Float32Array).subarray(b * H * W * T, (b + 1) * H * W * T),
            };
            scores.set(detectionScores(level, labelToTokens), b * H * W * labelToTokens.length);
          }
          put(`scores_posmap.${l}`, tf.tensor3d(scores, [B, H * W, labelToTokens.length]));
        }
        put(`dot_product_logits.${l}`, o.dotProductLogits);
      }
    } finally {
      head.dispose();
    }
    return { tensors: out, uncomputable: [...wanted].filter((n) => !out.has(n)) };
  }

  const model = new FiberFineModel(fineModelConfigFromFixture(config)).eval();
  try {
    model.loadStateDict(weights);
    const images = need('images');
    const ids = need('input_ids');
    const mask = need('attention_mask');
    // per-step activations of the fused backbone (the names of set A's intermediates)
    const fb = model.fusionBackbone;
    tf.tidy(() => {
      runFused(fb.swin, fb.roberta, fb.schedule, images, ids, mask, {
        observe: (step, state) => {
          const keep = (name: string, t: tf.Tensor) => wanted.has(name) && put(name, tf.keep(tf.clone(t)));
          if (step.kind === 'embed') {
            if (!('grid' in state)) return;
            const [B, , C] = state.hidden.shape;
            const [H, W] = state.grid;
            keep('img.patch_embed', tf.transpose(tf.reshape(state.hidden, [B, H, W, C]), [0, 3, 1, 2]));
          } else if (step.kind === 'text')
            keep(step.layer < 0 ? 'txt.embeddings' : `txt.layer${step.layer}`, state.hidden);
          else if (step.kind === 'block') keep(`img.stage${step.stage}.block${step.block}`, state.hidden);
          else keep(`img.stage${step.stage}.downsample`, state.hidden);
        },
      });
    });
    const r = model.forward(images, ids, mask, { allTowers: true });
    const level = (l: number) => `P${l + 3}`;
    r.pyramid.forEach((p, l) => put(`fpn.${level(l)}`, p));
    const anchors = generateAnchors(
      r.pyramid.map((p) => [p.shape[2], p.shape[3]] as [number, number]),
      model.config.anchors,
    );
    for (const [l, o] of r.head.levels.entries()) {
      o.towers.forEach((t, k) => put(`head.tower${k}.${level(l)}`, t));
      put(`head.cls_logits.${level(l)}`, o.clsLogits);
      put(`head.bbox_reg.${level(l)}`, o.bboxReg);
      put(`head.centerness.${level(l)}`, o.centerness);
      put(`head.dot_product_logits.${level(l)}`, o.dotProductLogits);
      const dec = decodeLevel(o.bboxReg, anchors[l]);
      put(
        `anchors.${level(l)}`,
        tf.tidy(() => tf.broadcastTo(dec.anchors, dec.boxes.shape)),
      );
      dec.anchors.dispose();
      put(`decoded_boxes.${level(l)}`, dec.boxes);
    }
    put('lang.hidden', r.language.hidden);
    put('lang.embedded', r.language.embedded);
    put('lang.aggregate', r.language.aggregate);
    disposeOutput([r.language.masks]);
  } finally {
    model.dispose();
  }
  return { tensors: out, uncomputable: [...wanted].filter((n) => !out.has(n)) };
}
