// The optimiser group of every FIBER-B parameter, printed and checked against the spec's rules
// (fiber-spec §4.1 coarse: substring no-decay rules, x5 heads, x5 cross-modal; §4.2 fine: language
// lr, bias lr x2 and no decay). Coarse names come from the real-size model (FiberCoarseModel with
// fiberConfig('base'), 'pretrain' heads) and from the official key table; fine names from the
// official full-size fine table and the tiny fine fixture's table.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Parameter, initBackend, tf } from '@fiber-vl/tensor-core';
import { fiberConfig } from '@fiber-vl/fusion';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { fiberCoarseGroupOf, fiberCoarseParamGroups, fiberFineGroupOf, fiberFineParamGroups } from './optim.js';

const keys = join(__dirname, '../../../fixtures/fiber/keys');
const rows = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('key\t'))
    .map((l) => l.split('\t'));

const LR = 1e-5;
const WD = 0.01;

/** The spec's rules written out name by name, independently of the implementation's substring lists. */
function expectedCoarse(name: string): { lr: number; weightDecay: number } {
  const noDecay = /bias|(LayerNorm|norm|norm1|norm2)\.weight/.test(name); // 'bias' covers every *.bias and *_bias_table
  const head = /vqa_classifier|nlvr2_classifier|mlm_score|itm_score|snli_classifier/.test(name);
  const cross = /cross_modal|i2t|t2i/.test(name);
  return { lr: head || cross ? 5 * LR : LR, weightDecay: noDecay ? 0 : WD };
}

describe('coarse FIBER-B groups (fiber_utils.set_schedule)', () => {
  let model: FiberCoarseModel;
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    model = new FiberCoarseModel(fiberConfig('base'), 'pretrain');
  }, 300_000);
  afterAll(() => model?.dispose());

  it('every parameter of the real-size model: printed, and as the spec says', () => {
    const named = model.namedParameters();
    const official = new Set(
      rows(join(keys, 'state_dict_keys_coarse_kinds.tsv'))
        .filter((r) => r[4] === 'param' && r[5].split(',').includes('pretrain'))
        .map((r) => r[0]),
    );
    expect(new Set(named.map(([n]) => n))).toEqual(official);
    const groups = fiberCoarseParamGroups(named, { lr: LR, weightDecay: WD, lrMultHead: 5, lrMultCrossModal: 5 });
    const table = named.map(([name]) => {
      const g = fiberCoarseGroupOf(name, { lr: LR, weightDecay: WD });
      return `${(g?.group ?? 'NO GROUP').padEnd(20)} lr ${g ? g.lr.toExponential(0) : '-'}  wd ${g?.weightDecay ?? '-'}  ${name}`;
    });
    console.log(`FIBER-B coarse parameter groups (${named.length} parameters):\n${table.join('\n')}`);
    let counted = 0;
    for (const [name] of named) {
      const g = groups.find((x) => x.params.some(([n]) => n === name));
      expect(g, name).toBeDefined();
      expect({ lr: g!.lr, weightDecay: g!.weightDecay }, name).toEqual(expectedCoarse(name));
      counted++;
    }
    expect(counted).toBe(official.size);
    // the official order of the six groups, each non-empty at FIBER-B
    expect(groups.map((g) => g.name)).toEqual([
      'base/decay',
      'base/no_decay',
      'head/decay',
      'head/no_decay',
      'cross_modal/decay',
      'cross_modal/no_decay',
    ]);
    const count = (n: string) => groups.find((g) => g.name === n)!.params.length;
    expect(groups.reduce((a, g) => a + g.params.length, 0)).toBe(named.length);
    console.log(groups.map((g) => `${g.name}: ${g.params.length}`).join(', '));
    const namesOf = (n: string) =>
      groups
        .find((g) => g.name === n)!
        .params.map(([k]) => k)
        .sort();
    expect(namesOf('head/decay')).toEqual([
      'itm_score.fc.weight',
      'mlm_score.decoder.weight',
      'mlm_score.transform.dense.weight',
    ]);
    expect(namesOf('head/no_decay')).toEqual([
      'itm_score.fc.bias',
      'mlm_score.bias',
      'mlm_score.transform.LayerNorm.bias',
      'mlm_score.transform.LayerNorm.weight',
      'mlm_score.transform.dense.bias',
    ]);
    expect(count('cross_modal/decay') + count('cross_modal/no_decay')).toBe(
      named.filter(([n]) => /cross_modal|i2t|t2i/.test(n)).length,
    );
  });

  it("the spec's named cases", () => {
    const g = (n: string) => fiberCoarseGroupOf(n, { lr: LR, weightDecay: WD })!;
    expect(g('vit_model.layers.2.blocks.3.attn.relative_position_bias_table')).toMatchObject({
      kind: 'base',
      decay: false,
    }); // via "bias"
    expect(g('vit_model.layers.2.blocks.14.attn.norm_i2t_i.weight')).toMatchObject({
      kind: 'cross_modal',
      decay: true,
    }); // not a norm.weight match
    expect(g('vit_model.layers.2.blocks.14.attn.alpha_i2t')).toMatchObject({ kind: 'cross_modal', decay: true });
    expect(g('text_transformer.encoder.layer.6.alpha_t2i')).toMatchObject({ kind: 'cross_modal', decay: true });
    expect(g('temp')).toMatchObject({ kind: 'base', decay: true, lr: LR, weightDecay: WD }); // temp is decayed
    expect(g('rank_output.weight')).toMatchObject({ kind: 'base', decay: true });
    expect(g('mlm_score.transform.LayerNorm.weight')).toMatchObject({ kind: 'head', decay: false });
    expect(g('cross_modal_text_pooler_itc.dense.weight')).toMatchObject({
      kind: 'cross_modal',
      decay: true,
      lr: 5 * LR,
    });
    // a name matching a head and a cross-modal substring is in none of the official groups
    expect(fiberCoarseGroupOf('itm_score_cross_modal.weight', { lr: LR })).toBeUndefined();
    const p = new Parameter(tf.zeros([1]));
    expect(fiberCoarseParamGroups([['itm_score_cross_modal.weight', p]], { lr: LR })).toEqual([]);
    p.value.dispose();
  });

  it('takes the cross-modal names from `crossModal` when given', () => {
    const crossModal = (n: string) => n.startsWith('fusion_layers.') || n.startsWith('itm_score.');
    const g = (n: string) => fiberCoarseGroupOf(n, { lr: LR, weightDecay: WD, crossModal });
    expect(g('fusion_layers.0.attention.self.query.weight')).toMatchObject({ kind: 'cross_modal', lr: 5 * LR });
    expect(g('fusion_layers.0.output.LayerNorm.weight')).toMatchObject({ kind: 'cross_modal', decay: false });
    // FIBER's own substrings no longer count, and a head that is also cross-modal is still left out
    expect(g('cross_modal_text_pooler.dense.weight')).toMatchObject({ kind: 'base', lr: LR });
    expect(g('itm_score.fc.weight')).toBeUndefined();
    expect(g('vqa_classifier.0.weight')).toMatchObject({ kind: 'head', lr: 5 * LR });
  });
});

describe('fine-grained FIBER groups (maskrcnn_benchmark make_optimizer)', () => {
  const BUFFERS = /(relative_position_index|position_ids|cell_anchors\.\d+)$/;
  const cases = [
    ['official FIBER-B fine table (v2 + v3)', join(keys, 'state_dict_keys_fine.tsv')],
    ['tiny fine fixture', join(__dirname, '../../../fixtures/fiber/fine-a/state_dict_keys.tsv')],
  ] as const;

  it.each(cases)('every parameter of the %s: printed, and as the spec says', async (_, file) => {
    await initBackend({ backend: 'cpu' });
    const names = rows(file)
      .map((r) => r[0])
      .filter((n) => !BUFFERS.test(n));
    expect(names.length).toBeGreaterThan(700);
    const placeholder = new Parameter(tf.zeros([1]));
    const groups = fiberFineParamGroups(names.map((n) => [n, placeholder]));
    expect(groups).toHaveLength(names.length); // one group per tensor
    const lines: string[] = [];
    groups.forEach((g, i) => {
      const n = names[i];
      expect(g.params[0][0]).toBe(n);
      const lang = n.includes('language_backbone');
      const bias = n.includes('bias');
      const lr = (lang ? 1e-5 : 1e-4) * (bias ? 2 : 1);
      expect(g.lr, n).toBeCloseTo(lr, 15);
      expect(g.weightDecay, n).toBe(bias ? 0 : 0.01);
      lines.push(`lr ${g.lr.toExponential(0)}  wd ${g.weightDecay}  ${n}`);
    });
    console.log(`${_} (${names.length} parameters):\n${lines.join('\n')}`);
    // the language backbone (with its fused cross-attention layers) trains at LANG_LR
    expect(groups.filter((g) => g.lr === 1e-5 || g.lr === 2e-5).length).toBe(
      names.filter((n) => n.includes('language_backbone')).length,
    );
    placeholder.value.dispose();
  });

  it('the solver factors: backbone.body lr factor, norm weight-decay factor, frozen parameters left out', async () => {
    await initBackend({ backend: 'cpu' });
    expect(
      fiberFineGroupOf('fusion_backbone.backbone.body.layers.0.blocks.0.attn.qkv.weight', {
        backboneBodyLrFactor: 0.5,
      }),
    ).toEqual({ lr: 5e-5, weightDecay: 0.01 });
    expect(
      fiberFineGroupOf('fusion_backbone.language_backbone.body.model.encoder.layer.0.attention.self.query.weight', {
        backboneBodyLrFactor: 0.5,
      }),
    ).toEqual({ lr: 1e-5, weightDecay: 0.01 });
    expect(fiberFineGroupOf('rpn.head.dyhead_tower.0.norm.weight', { weightDecayNormFactor: 0 })).toEqual({
      lr: 1e-4,
      weightDecay: 0,
    });
    expect(fiberFineGroupOf('rpn.head.bias_lang')).toEqual({ lr: 2e-4, weightDecay: 0 });
    const frozen = new Parameter(tf.zeros([1]), false);
    const live = new Parameter(tf.zeros([1]));
    expect(
      fiberFineParamGroups([
        ['a.weight', frozen],
        ['b.weight', live],
      ]).map((g) => g.name),
    ).toEqual(['b.weight']);
    tf.dispose([frozen.value, live.value]);
  });
});
