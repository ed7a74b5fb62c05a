// Runs the passes of a FIBER fixture folder (either public set's naming) on a loaded model and
// returns the tensors it can compute, by the folder's names. Used by the parity harness
// (`fiber-bench parity`) and the tests; it reads only inputs, never expected outputs.
import { disposeOutput, tf } from '@fiber-vl/tensor-core';
import { beamSearchCaptions, captionForward, captionImageEmbeds } from './caption.js';
import type { FiberCoarseModel } from './model.js';

export interface FixturePassResult {
  tensors: Map<string, tf.Tensor>;
  /** Integer outputs compared exactly (beam tokens). */
  exact: Map<string, number[][]>;
}

/**
 * @param inputs the folder's inputs (set A: image, input_ids, attention_mask, nlvr2_image_1; set B:
 *   pixel_values, mlm_input_ids, itm_rolled_pixel_values too)
 * @param wanted names present in the folder's outputs / intermediates
 */
export async function runFixturePasses(
  model: FiberCoarseModel,
  inputs: Map<string, tf.Tensor>,
  wanted: Set<string>,
): Promise<FixturePassResult> {
  const pixels = inputs.get('pixel_values') ?? inputs.get('image');
  const ids = inputs.get('input_ids');
  const mask = inputs.get('attention_mask');
  if (!pixels || !ids || !mask)
    throw new Error('fixture inputs need pixel_values (or image), input_ids and attention_mask');
  const out = new Map<string, tf.Tensor>();
  const exact = new Map<string, number[][]>();
  const any = (...prefixes: string[]) => [...wanted].some((w) => prefixes.some((p) => w.startsWith(p)));
  const put = (name: string, t: tf.Tensor) => (wanted.has(name) ? out.set(name, t) : t.dispose());

  if (any('fused.', 'itm.', 'vqa.')) {
    // one fused pass serves every head
    const f = model.fused(pixels, ids, mask);
    if (model.itmScore && any('fused.itm_logits', 'fused.rank_score', 'itm.')) {
      const r = model.itmHead(f);
      put('fused.itm_logits', tf.clone(r.logits));
      put('itm.logits', r.logits);
      put('fused.rank_score', tf.reshape(r.rankScore, [-1, 1]));
      put('itm.rank_score', r.rankScore);
      const rolled = inputs.get('itm_rolled_pixel_values');
      if (rolled && wanted.has('itm.logits_rolled_images')) {
        const rr = model.itm(rolled, ids, mask);
        put('itm.logits_rolled_images', rr.logits);
        rr.rankScore.dispose();
      }
    }
    if (model.vqaClassifier && any('fused.vqa_logits', 'vqa.')) {
      const v = model.vqaHead(f);
      put('fused.vqa_logits', tf.clone(v));
      put('vqa.logits', v);
    }
    if (model.mlmScore && wanted.has('fused.mlm_logits')) put('fused.mlm_logits', model.mlmHead(f));
    put('fused.text_feats', f.textFeats);
    put('fused.image_feats', f.imageFeats);
    put('fused.cls_feats', f.clsFeats);
    tf.dispose([f.text, f.image]);
  }
  const mlmIds = inputs.get('mlm_input_ids');
  if (model.mlmScore && mlmIds && any('mlm.')) {
    const r = model.mlm(pixels, mlmIds, mask);
    put('mlm.logits', r.logits);
    put('mlm.text_feats', r.textFeats);
  }
  const second = inputs.get('nlvr2_image_1');
  if (model.nlvr2Classifier && second && any('nlvr2.')) {
    const r = model.nlvr2(pixels, second, ids, mask);
    put('nlvr2.cls_feats', r.clsFeats);
    put('nlvr2.logits', r.logits);
  }
  if (any('dual.', 'itc.', 'dual_image.', 'dual_text.', 'act.itc.')) {
    const img = model.encodeImage(pixels);
    const txt = model.encodeText(ids, mask);
    for (const p of ['dual', 'itc']) {
      put(`${p}.image_feats`, tf.clone(img.imageFeats));
      put(`${p}.image_cls`, tf.clone(img.imageCls));
      put(`${p}.text_feats`, tf.clone(txt.textFeats));
      put(`${p}.text_cls`, tf.clone(txt.textCls));
    }
    if (model.temp) {
      const sim = model.itcLogits(img.imageCls, txt.textCls);
      put('dual.itc_logits_i2t', tf.clone(sim));
      put('itc.sim_i2t', tf.clone(sim));
      put('dual.itc_logits_t2i', tf.transpose(sim));
      put('itc.temp', tf.reshape(model.temp.value, [1]));
      sim.dispose();
    }
    tf.dispose([img.imageFeats, img.imageCls, txt.textFeats, txt.textCls]);
    // per-block / per-layer activations of the dual pass
    const swin = model.vitModel.forward(pixels, { collect: true });
    const text = model.textTransformer.forward(ids, mask, { collect: true });
    const acts: [string, tf.Tensor][] = [
      ['dual_image.img.patch_embed', swin.patchEmbed!],
      ['act.itc.vit.patch_embed', swin.patchEmbed!],
      ['dual_image.img.final_norm', swin.lastHiddenState!],
      ['act.itc.vit.norm', swin.lastHiddenState!],
      ['dual_text.txt.embeddings', text.embeddings!],
      ['act.itc.text.embeddings', text.embeddings!],
    ];
    swin.blocks!.forEach((bs, i) =>
      bs.forEach((b, j) =>
        acts.push([`dual_image.img.stage${i}.block${j}`, b], [`act.itc.vit.layers.${i}.blocks.${j}`, b]),
      ),
    );
    swin.stages.forEach((s, i) => {
      acts.push([`dual_image.img.stage${i}.out`, s]);
      if (i < swin.stages.length - 1)
        acts.push([`dual_image.img.stage${i}.downsample`, s], [`act.itc.vit.layers.${i}.downsample`, s]);
    });
    text.hiddenStates!.forEach((h, i) => acts.push([`dual_text.txt.layer${i}`, h], [`act.itc.text.layer.${i}`, h]));
    for (const [name, t] of acts) if (wanted.has(name)) out.set(name, tf.clone(t));
    disposeOutput([swin, text]);
  }
  if (model.crossModalAttLayers && any('caption.')) {
    const image = captionImageEmbeds(model, pixels);
    const c = captionForward(model, image, ids, mask);
    put('caption.image_embeds', image);
    put('caption.text_feats', c.textFeats);
    put('caption.logits', c.logits);
    if (wanted.has('caption.beam5_ids'))
      exact.set('caption.beam5_ids', await beamSearchCaptions(model, pixels, { beamSize: 5, maxLength: ids.shape[1] }));
  }
  return { tensors: out, exact };
}
