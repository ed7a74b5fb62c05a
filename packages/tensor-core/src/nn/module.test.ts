import { beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend } from '../backends/index.js';
import { tf } from '../tf.js';
import {
  Buffer,
  BufferList,
  Module,
  ModuleList,
  Parameter,
  Sequential,
  StateDictError,
  stateDictName,
} from './module.js';
import { LayerNorm, Linear } from './layers.js';

class Attention extends Module {
  query = new Linear(4, 4);
  relativePositionBiasTable = new Parameter(tf.zeros([9, 2]));
  relativePositionIndex = new Buffer(tf.tensor1d([0, 1, 2, 3], 'int32'));
  cachedMask = new Buffer(tf.zeros([2, 2]), false);
  LayerNorm = new LayerNorm(4);
  alphaI2t = new Parameter(tf.zeros([1]));
}
class Model extends Module {
  embed = new Linear(3, 4, { bias: false });
  blocks = new ModuleList([new Attention(), new Attention()]);
  norm = new LayerNorm(4);
}

const shapes = (m: Module) => [...m.stateDict()].map(([k, t]) => `${k} ${t.shape.join('x')}`);

describe('Module', () => {
  beforeAll(() => initBackend({ backend: 'cpu' }));

  it('derives PyTorch keys from property names by one rule', () => {
    expect(stateDictName('relativePositionBiasTable')).toBe('relative_position_bias_table');
    expect(stateDictName('alphaI2t')).toBe('alpha_i2t');
    expect(stateDictName('qkvTextI2t')).toBe('qkv_text_i2t');
    expect(stateDictName('normI2tI')).toBe('norm_i2t_i');
    expect(stateDictName('fc1')).toBe('fc1');
    expect(stateDictName('LayerNorm')).toBe('LayerNorm');
    expect(stateDictName('crossattentionT2i')).toBe('crossattention_t2i');
  });

  it('lists the state dict in PyTorch order: own params, own buffers, then children', () => {
    const m = new Model();
    expect(shapes(m)).toEqual([
      'embed.weight 4x3',
      'blocks.0.relative_position_bias_table 9x2',
      'blocks.0.alpha_i2t 1',
      'blocks.0.relative_position_index 4',
      'blocks.0.query.weight 4x4',
      'blocks.0.query.bias 4',
      'blocks.0.LayerNorm.weight 4',
      'blocks.0.LayerNorm.bias 4',
      'blocks.1.relative_position_bias_table 9x2',
      'blocks.1.alpha_i2t 1',
      'blocks.1.relative_position_index 4',
      'blocks.1.query.weight 4x4',
      'blocks.1.query.bias 4',
      'blocks.1.LayerNorm.weight 4',
      'blocks.1.LayerNorm.bias 4',
      'norm.weight 4',
      'norm.bias 4',
    ]);
    // non-persistent buffers are buffers but not state
    expect(m.namedBuffers().map(([k]) => k)).toContain('blocks.0.cached_mask');
    expect(m.namedParameters().map(([k]) => k)[0]).toBe('embed.weight');
    expect(m.numParameters()).toBe(12 + 2 * (18 + 1 + 20 + 8) + 8);
    m.dispose();
  });

  it('round-trips through stateDict / loadStateDict and keeps parameter identity', () => {
    const a = new Model();
    const b = new Model();
    const wBefore = b.embed.weight.value;
    b.loadStateDict(a.stateDict());
    expect(b.embed.weight.value).toBe(wBefore);
    for (const [k, t] of a.stateDict()) {
      expect(Array.from(b.stateDict().get(k)!.dataSync())).toEqual(Array.from(t.dataSync()));
    }
    a.dispose();
    b.dispose();
  });

  it('names missing and unexpected keys (strict), and reports them when not strict', () => {
    const m = new Model();
    const dict = new Map(m.stateDict());
    dict.delete('norm.bias');
    const extra = tf.zeros([1]);
    dict.set('head.weight', extra);
    expect(() => m.loadStateDict(dict)).toThrowError(
      /missing keys \(1\): norm\.bias; unexpected keys \(1\): head\.weight/,
    );
    const r = m.loadStateDict(dict, { strict: false });
    expect(r).toEqual({ missingKeys: ['norm.bias'], unexpectedKeys: ['head.weight'] });
    extra.dispose();
    m.dispose();
  });

  it('names the key and both shapes on a shape or dtype mismatch, even when not strict', () => {
    const m = new Model();
    const dict = new Map(m.stateDict());
    const wrong = tf.zeros([4, 5]);
    const floatIndex = tf.zeros([4]);
    dict.set('embed.weight', wrong);
    dict.set('blocks.1.relative_position_index', floatIndex);
    let err: StateDictError | undefined;
    try {
      m.loadStateDict(dict, { strict: false });
    } catch (e) {
      err = e as StateDictError;
    }
    expect(err).toBeInstanceOf(StateDictError);
    expect(err!.message).toContain('embed.weight: model has float32[4, 3], checkpoint has float32[4, 5]');
    expect(err!.message).toContain('blocks.1.relative_position_index: model has int32[4], checkpoint has float32[4]');
    wrong.dispose();
    floatIndex.dispose();
    m.dispose();
  });

  it('refuses values that are no live tensor, naming each, before copying anything', async () => {
    const m = new Model();
    const before = await Promise.all([...m.stateDict()].map(async ([k, t]) => [k, [...(await t.data())]] as const));
    const gone = tf.ones([4]);
    gone.dispose();
    const dict = new Map<string, unknown>([...m.stateDict()].map(([k]) => [k, null]));
    dict.set('embed.weight', tf.ones([4, 3])); // a good value, listed first: it must not be copied
    dict.set('norm.weight', gone);
    dict.set('norm.bias', new Float32Array(4));
    // null was skipped even by a strict load; a disposed tensor overflowed the stack after the
    // keys before it had been copied, and left its parameter unreadable
    // @ts-expect-error: values a JS caller or a broken reader can pass
    expect(() => m.loadStateDict(dict)).toThrow(StateDictError);
    let message = '';
    try {
      // @ts-expect-error: as above
      m.loadStateDict(dict, { strict: false });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain("that are not a tensor of the model's shape and dtype");
    expect(message).toContain('norm.weight: model has float32[4], checkpoint has a disposed tensor (float32[4])');
    expect(message).toContain('norm.bias: model has float32[4], checkpoint has a Float32Array, not a tensor');
    expect(message).toMatch(/blocks\.0\.\S+: model has \S+, checkpoint has null/);
    const after = await Promise.all([...m.stateDict()].map(async ([k, t]) => [k, [...(await t.data())]] as const));
    expect(after).toEqual(before);
    tf.dispose(dict.get('embed.weight') as tf.Tensor);
    m.dispose();
  });

  it('switches train/eval on the whole tree', () => {
    const m = new Model();
    m.eval();
    expect(m.namedModules().every(([, c]) => !c.training)).toBe(true);
    m.train();
    expect(m.blocks.at(1).LayerNorm.training).toBe(true);
    m.dispose();
  });

  it('freeze() stops gradients for a subtree and keeps it in eval mode while the rest trains', () => {
    const m = new Model();
    m.blocks.at(0).freeze();
    m.train();
    const frozen = (k: string) => k.startsWith('blocks.0.');
    for (const [k, p] of m.namedParameters()) expect(p.requiresGrad, k).toBe(!frozen(k));
    for (const [k, c] of m.namedModules()) expect(c.training, k || 'root').toBe(!frozen(`${k}.`));
    expect(m.blocks.at(0).query.frozen && !m.blocks.at(1).query.frozen).toBe(true);
    // tf.variableGrads over the trainable variables leaves the frozen ones out
    const x = tf.ones([1, 4]);
    const { value, grads } = tf.variableGrads(() =>
      tf.sum(m.blocks.at(1).query.forward(m.blocks.at(0).query.forward(x))),
    );
    const names = new Map(m.namedParameters().map(([k, p]) => [p.value.name, k]));
    expect(Object.keys(grads).map((n) => names.get(n))).toEqual(['blocks.1.query.weight', 'blocks.1.query.bias']);
    tf.dispose([x, value, ...Object.values(grads)]);
    m.eval();
    m.train();
    expect(m.blocks.at(0).LayerNorm.training).toBe(false);
    m.dispose();
  });

  it('dispose() frees every parameter and buffer', () => {
    const before = tf.memory().numTensors;
    const m = new Model();
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a Parameter made from another one copies it (the first one stays alive)', async () => {
    const p = new Parameter(tf.ones([2]));
    const q = new Parameter(p.value);
    expect(p.value.isDisposed).toBe(false);
    q.value.assign(tf.zeros([2]));
    expect(Array.from(await p.value.data())).toEqual([1, 1]);
    p.value.dispose();
    q.value.dispose();
  });

  it('tied weights (one Parameter under two names): listed once for optimizers, kept under both in the state dict', () => {
    class Tied extends Module {
      embed = new Linear(3, 3, { bias: false });
      head = new Linear(3, 3, { bias: false });
      constructor() {
        super();
        this.head.weight = this.embed.weight;
      }
    }
    const m = new Tied();
    expect(m.namedParameters().map(([n]) => n)).toEqual(['embed.weight']);
    expect(m.numParameters()).toBe(9);
    expect([...m.stateDict().keys()]).toEqual(['embed.weight', 'head.weight']);
    const dict = new Map([
      ['embed.weight', tf.fill([3, 3], 2)],
      ['head.weight', tf.fill([3, 3], 2)],
    ]);
    expect(m.loadStateDict(dict)).toEqual({ missingKeys: [], unexpectedKeys: [] }); // strict: both names expected
    tf.dispose([...dict.values()]);
    const before = tf.memory().numTensors;
    m.dispose();
    expect(tf.memory().numTensors).toBe(before - 1);
  });

  it('Sequential applies children in order with keys 0, 1, ...', () => {
    const s = new Sequential(new Linear(2, 3), new LayerNorm(3));
    expect([...s.stateDict().keys()]).toEqual(['0.weight', '0.bias', '1.weight', '1.bias']);
    const y = s.forward(tf.ones([5, 2]));
    expect(y.shape).toEqual([5, 3]);
    y.dispose();
    s.dispose();
    expect(() => new ModuleList([]).at(0)).toThrow(/out of range/);
  });

  it('lists a model of 300k modules (a deep config) without overflowing the call stack', () => {
    class Leaf extends Module {}
    class Encoder extends Module {
      layer = new ModuleList(Array.from({ length: 150_000 }, () => new ModuleList([new Leaf()])));
    }
    const encoder = new Encoder();
    const names = encoder.namedModules('encoder');
    expect(names.length).toBe(300_002);
    expect(names.slice(0, 4).map(([n]) => n)).toEqual([
      'encoder',
      'encoder.layer',
      'encoder.layer.0',
      'encoder.layer.0.0',
    ]);
    expect(names.at(-1)?.[0]).toBe('encoder.layer.149999.0');
    expect(encoder.namedParameters()).toEqual([]);
  });
});

describe('Module.register', () => {
  beforeAll(() => initBackend({ backend: 'cpu' }));
  it('registers children under computed keys in assignment order and refuses a taken key', () => {
    class Body extends Module {
      patchEmbed = new Linear(2, 2);
      constructor() {
        super();
        for (const i of [1, 2]) this.register(`norm${i}`, new LayerNorm(2));
        expect(() => this.register('patchEmbed', new LayerNorm(2))).toThrow(/"patchEmbed" is already a property/);
      }
    }
    const b = new Body();
    expect([...b.stateDict().keys()]).toEqual([
      'patch_embed.weight',
      'patch_embed.bias',
      'norm1.weight',
      'norm1.bias',
      'norm2.weight',
      'norm2.bias',
    ]);
    b.dispose();
  });
  it('BufferList names its buffers by index in the state dict', () => {
    class Gen extends Module {
      cellAnchors = new BufferList([tf.ones([1, 4]), tf.zeros([1, 4])]);
    }
    const g = new Gen();
    expect([...g.stateDict().keys()]).toEqual(['cell_anchors.0', 'cell_anchors.1']);
    expect(g.cellAnchors.at(-1).shape).toEqual([1, 4]);
    expect(() => g.cellAnchors.at(2)).toThrow(/out of range/);
    g.dispose();
  });
});

describe('two copies of the package in one app (its ESM and CJS builds, or two versions)', () => {
  beforeAll(() => initBackend({ backend: 'cpu' }));

  it('names a child, parameter or buffer of the other copy instead of leaving it out of the tree', async () => {
    vi.resetModules();
    const other = await import('./module.js');
    expect(other.Module).not.toBe(Module); // two copies
    class Holder extends Module {
      own = new Linear(2, 2);
      foreign: unknown;
      constructor(foreign: unknown) {
        super();
        this.foreign = foreign;
      }
    }
    class OtherChild extends other.Module {
      weight = new other.Parameter(tf.zeros([2]));
    }
    const cases: [unknown, string][] = [
      [new OtherChild(), 'module'],
      [new other.Parameter(tf.zeros([3])), 'parameter'],
      [new other.Buffer(tf.zeros([3])), 'buffer'],
    ];
    for (const [foreign, kind] of cases) {
      const holder = new Holder(foreign);
      expect(() => holder.stateDict()).toThrow(
        new RegExp(`^Holder\\.foreign: a ${kind} from another copy of @fiber-vl/tensor-core`),
      );
      holder.foreign = undefined;
      expect([...holder.stateDict().keys()]).toEqual(['own.weight', 'own.bias']);
      holder.dispose();
      if (foreign instanceof other.Module) foreign.dispose();
      else if (foreign instanceof other.Parameter) foreign.value.dispose();
      else if (foreign instanceof other.Buffer) foreign.dispose();
    }
  });
});
