// A torch.nn.Module for tfjs.
//
// A module's children, parameters and buffers are its own properties, found in assignment order
// (the order PyTorch registers them). A property's state-dict name is derived by one rule,
// `stateDictName`: camelCase becomes snake_case (`relativePositionBiasTable` ->
// `relative_position_bias_table`, `alphaI2t` -> `alpha_i2t`), a name that starts with a capital
// is kept as written (HF's `LayerNorm`), and ModuleList items are named by index. A model written
// as a tree of modules therefore produces the official checkpoint keys by construction.
import { tf } from '../tf.js';

// Brands on the prototypes: a Module, Parameter or Buffer of another copy of this package (an app
// that loads both the ESM and the CJS build, or two versions) fails `instanceof` here, and would be
// left out of the tree without a word; the brand lets Module name it instead.
const BRANDS = {
  module: Symbol.for('@fiber-vl/tensor-core/Module'),
  parameter: Symbol.for('@fiber-vl/tensor-core/Parameter'),
  buffer: Symbol.for('@fiber-vl/tensor-core/Buffer'),
} as const;

const BRAND_KINDS = Object.entries(BRANDS) as [keyof typeof BRANDS, symbol][];

/** Why two copies of this package break a model, and the remedy: the tail of every such error. */
export const TWO_COPIES_HINT =
  '(the app loads two: its ESM and CJS builds, or two versions); load one copy, e.g. by importing every ' +
  '@fiber-vl package the same way and deduplicating the install';

/** 'module' | 'parameter' | 'buffer' when `value` is one from another copy of this package. */
function foreignKind(value: unknown): keyof typeof BRANDS | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  return BRAND_KINDS.find(([, brand]) => brand in value)?.[0];
}

/** A trainable tensor, stored as a tf.Variable so that optimizers and loading keep its identity. */
export class Parameter {
  readonly value: tf.Variable;
  /**
   * Takes over `initial` (it is disposed). A tf.Variable, e.g. another Parameter's `value`, is
   * copied instead and stays its owner's: to tie weights, give both modules the same Parameter.
   */
  constructor(initial: tf.Tensor, requiresGrad = true) {
    const owned = initial instanceof tf.Variable ? tf.clone(initial) : initial;
    this.value = tf.variable(owned, requiresGrad);
    owned.dispose();
  }
  /** Whether gradients are taken and optimizers update it (torch's `requires_grad`; the variable's `trainable`). */
  get requiresGrad(): boolean {
    return this.value.trainable;
  }
  set requiresGrad(on: boolean) {
    this.value.trainable = on;
  }
  get shape(): number[] {
    return this.value.shape;
  }
  get dtype(): tf.DataType {
    return this.value.dtype;
  }
}

/** A non-trainable tensor owned by a module (running statistics, index tables, masks). */
export class Buffer {
  private tensor: tf.Tensor;
  constructor(
    initial: tf.Tensor,
    /** Persistent buffers are part of the state dict (PyTorch's `persistent=True`). */
    readonly persistent = true,
  ) {
    this.tensor = tf.keep(initial);
  }
  get value(): tf.Tensor {
    return this.tensor;
  }
  /** Replaces the tensor (the old one is disposed). */
  set(next: tf.Tensor): void {
    if (next === this.tensor) return;
    this.tensor.dispose();
    this.tensor = tf.keep(next);
  }
  get shape(): number[] {
    return this.tensor.shape;
  }
  dispose(): void {
    this.tensor.dispose();
  }
}

/** camelCase property -> PyTorch snake_case key (see the file comment). */
export function stateDictName(property: string): string {
  if (/^[A-Z0-9]/.test(property)) return property;
  return property.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

export interface LoadStateDictOptions {
  /** Throw on missing or unexpected keys (default true). Shape/dtype mismatches always throw. */
  strict?: boolean;
}
export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export class StateDictError extends Error {
  constructor(
    message: string,
    readonly missingKeys: string[] = [],
    readonly unexpectedKeys: string[] = [],
    readonly mismatches: { key: string; expected: string; got: string }[] = [],
  ) {
    super(message);
    this.name = 'StateDictError';
  }
}

const HIDDEN = new Set(['training', 'childNames']);

export abstract class Module {
  training = true;
  #frozen = false;
  /** Explicit names for properties whose key breaks the rule (rare; prefer renaming the property). */
  protected childNames?: Record<string, string>;

  /** Own [key, child] pairs: submodules, parameters and buffers, in assignment order. */
  private ownEntries(): [string, Module | Parameter | Buffer][] {
    const out: [string, Module | Parameter | Buffer][] = [];
    for (const [prop, value] of Object.entries(this)) {
      if (HIDDEN.has(prop)) continue;
      if (value instanceof Module || value instanceof Parameter || value instanceof Buffer) {
        out.push([this.childNames?.[prop] ?? stateDictName(prop), value]);
      } else {
        const kind = foreignKind(value);
        if (kind)
          throw new TypeError(
            `${this.constructor.name}.${prop}: a ${kind} from another copy of @fiber-vl/tensor-core ${TWO_COPIES_HINT}`,
          );
      }
    }
    return out;
  }

  /** Direct submodules with their keys. */
  namedChildren(): [string, Module][] {
    return this.ownEntries().filter((e): e is [string, Module] => e[1] instanceof Module);
  }

  /** This module and every descendant, pre-order, with dotted names ('' for this one). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [];
    // one list filled in place: spreading each child's list (push(...list)) overflowed the call
    // stack past ~100k modules and copied every list once per level
    const visit = (m: Module, path: string) => {
      out.push([path, m]);
      for (const [name, child] of m.namedChildren()) visit(child, path ? `${path}.${name}` : name);
    };
    visit(this, prefix);
    return out;
  }

  /**
   * Every parameter with its dotted PyTorch name, in PyTorch's order. A Parameter reachable under
   * several names (tied weights) is listed once, under the first, as torch's `named_parameters()`
   * does, so optimizers update it once; `stateDict` and `loadStateDict` keep every name.
   */
  namedParameters(): [string, Parameter][] {
    const seen = new Set<Parameter>();
    return this.allNamedParameters().filter(([, p]) => !seen.has(p) && seen.add(p));
  }

  /** namedParameters with a tied Parameter under each of its names. */
  private allNamedParameters(): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [path, m] of this.namedModules()) {
      for (const [name, v] of m.ownEntries()) {
        if (v instanceof Parameter) out.push([path ? `${path}.${name}` : name, v]);
      }
    }
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Every buffer (persistent or not) with its dotted name. */
  namedBuffers(): [string, Buffer][] {
    const out: [string, Buffer][] = [];
    for (const [path, m] of this.namedModules()) {
      for (const [name, v] of m.ownEntries()) {
        if (v instanceof Buffer) out.push([path ? `${path}.${name}` : name, v]);
      }
    }
    return out;
  }

  /**
   * Parameters and persistent buffers by dotted name, in PyTorch's state_dict order (each
   * module's own parameters, then its buffers, then its children). The tensors are the live ones:
   * do not dispose them.
   */
  stateDict(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    const visit = (m: Module, prefix: string) => {
      const entries = m.ownEntries();
      for (const [name, v] of entries) if (v instanceof Parameter) out.set(prefix + name, v.value);
      for (const [name, v] of entries) if (v instanceof Buffer && v.persistent) out.set(prefix + name, v.value);
      for (const [name, v] of entries) if (v instanceof Module) visit(v, `${prefix}${name}.`);
    };
    visit(this, '');
    return out;
  }

  /**
   * Copies tensors into the parameters and persistent buffers with the same names. Values are
   * cast to the target dtype when both are numeric of the same kind (float->float, int->int);
   * any shape mismatch, or a float given for an int buffer, throws a StateDictError that names
   * the key and both shapes. With `strict` (default) missing or unexpected keys throw too;
   * otherwise they are returned. The caller keeps ownership of the given tensors.
   */
  loadStateDict(
    dict: Map<string, tf.Tensor> | Record<string, tf.Tensor>,
    { strict = true }: LoadStateDictOptions = {},
  ): LoadStateDictResult {
    const given = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const targets = new Map<string, Parameter | Buffer>();
    for (const [name, p] of this.allNamedParameters()) targets.set(name, p);
    for (const [name, b] of this.namedBuffers()) if (b.persistent) targets.set(name, b);

    const missingKeys = [...targets.keys()].filter((k) => !given.has(k));
    const unexpectedKeys = [...given.keys()].filter((k) => !targets.has(k));
    const mismatches: { key: string; expected: string; got: string }[] = [];
    for (const [key, target] of targets) {
      if (!given.has(key)) continue;
      const t = given.get(key);
      const targetDtype = target instanceof Parameter ? target.dtype : target.value.dtype;
      const notTensor = notALiveTensor(t);
      if (notTensor || !t) {
        // checked before anything is copied: a bad value must not leave the model half loaded
        mismatches.push({ key, expected: `${targetDtype}[${target.shape.join(', ')}]`, got: notTensor ?? 'nothing' });
        continue;
      }
      const sameShape = t.shape.length === target.shape.length && t.shape.every((d, i) => d === target.shape[i]);
      const kind = (d: tf.DataType) => (d === 'float32' || d === 'complex64' ? 'float' : d === 'int32' ? 'int' : d);
      if (!sameShape || kind(t.dtype) !== kind(targetDtype)) {
        mismatches.push({
          key,
          expected: `${targetDtype}[${target.shape.join(', ')}]`,
          got: `${t.dtype}[${t.shape.join(', ')}]`,
        });
      }
    }
    if (mismatches.length) {
      const lines = mismatches.map((m) => `  ${m.key}: model has ${m.expected}, checkpoint has ${m.got}`);
      throw new StateDictError(
        `loadStateDict: ${mismatches.length} value(s) that are not a tensor of the model's shape and dtype:\n${lines.join('\n')}`,
        missingKeys,
        unexpectedKeys,
        mismatches,
      );
    }
    if (strict && (missingKeys.length || unexpectedKeys.length)) {
      const parts: string[] = [];
      if (missingKeys.length) parts.push(`missing keys (${missingKeys.length}): ${listKeys(missingKeys)}`);
      if (unexpectedKeys.length) parts.push(`unexpected keys (${unexpectedKeys.length}): ${listKeys(unexpectedKeys)}`);
      throw new StateDictError(`loadStateDict (strict): ${parts.join('; ')}`, missingKeys, unexpectedKeys);
    }
    for (const [key, target] of targets) {
      const t = given.get(key);
      if (!t || t.dataId === target.value.dataId) continue; // absent, or this module's own tensor
      if (target instanceof Parameter) {
        tf.tidy(() => target.value.assign(t.dtype === target.dtype ? t : tf.cast(t, target.dtype)));
      } else {
        target.set(tf.tidy(() => (t.dtype === target.value.dtype ? tf.clone(t) : tf.cast(t, target.value.dtype))));
      }
    }
    return { missingKeys, unexpectedKeys };
  }

  /**
   * PyTorch's `add_module` / `register_buffer` / `register_parameter`: registers a child under a
   * key that is not a property name rule (Swin's `norm1`..`norm3` created in a loop, the items of a
   * ModuleList or BufferList). It takes its place in the key order at the time of the call, like an
   * assignment, except that JavaScript lists integer-like keys ("0", "1", ...) before the others and
   * in numeric order, where PyTorch keeps the order of the calls: a module that mixes the two lists
   * its keys in another order than PyTorch (the names are the same).
   */
  protected register<T extends Module | Parameter | Buffer>(key: string, value: T): T {
    if (Object.hasOwn(this, key))
      throw new Error(`register: "${key}" is already a property of ${this.constructor.name}`);
    Object.defineProperty(this, key, { value, enumerable: true, configurable: false, writable: false });
    return value;
  }

  /**
   * Sets training mode on this module and every descendant (dropout, drop-path). Frozen modules
   * (`freeze`) stay in eval mode.
   */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode && !m.#frozen;
    return this;
  }

  /**
   * Freezes this module and its descendants, as the official Swin's `_freeze_stages` does to its
   * early stages: their parameters stop requiring gradients (trainers and optimizers skip them)
   * and they stay in eval mode when the model trains. There is no unfreeze, as there is none there.
   * Freeze before building a Trainer or optimizer groups (they read `requiresGrad` when built);
   * modules added to the subtree afterwards are not frozen.
   */
  freeze(): this {
    for (const [, m] of this.namedModules()) {
      m.#frozen = true;
      m.training = false;
    }
    for (const p of this.parameters()) p.requiresGrad = false;
    return this;
  }

  /** Frozen by `freeze` (its own or an ancestor's). */
  get frozen(): boolean {
    return this.#frozen;
  }

  eval(): this {
    return this.train(false);
  }

  /** Number of parameter elements (optionally only the trainable ones). */
  numParameters({ trainableOnly = false } = {}): number {
    return this.parameters()
      .filter((p) => !trainableOnly || p.requiresGrad)
      .reduce((n, p) => n + p.value.size, 0);
  }

  /** Frees every parameter and buffer of the tree. The module is unusable afterwards. */
  dispose(): void {
    for (const p of this.parameters()) p.value.dispose();
    for (const [, b] of this.namedBuffers()) b.dispose();
  }
}

Object.defineProperty(Module.prototype, BRANDS.module, { value: true });
Object.defineProperty(Parameter.prototype, BRANDS.parameter, { value: true });
Object.defineProperty(Buffer.prototype, BRANDS.buffer, { value: true });

function listKeys(keys: string[]): string {
  const shown = keys.slice(0, 20).join(', ');
  return keys.length > 20 ? `${shown}, ... (${keys.length - 20} more)` : shown;
}

/** Children named "0", "1", ... like torch.nn.ModuleList. */
export class ModuleList<M extends Module = Module> extends Module implements Iterable<M> {
  private readonly items: M[];
  constructor(items: M[] = []) {
    super();
    this.items = [];
    for (const m of items) this.push(m);
  }
  push(m: M): this {
    this.register(String(this.items.length), m);
    this.items.push(m);
    return this;
  }
  get length(): number {
    return this.items.length;
  }
  at(i: number): M {
    const m = this.items[i < 0 ? this.items.length + i : i];
    if (!m) throw new RangeError(`ModuleList index ${i} out of range (length ${this.items.length})`);
    return m;
  }
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

/** Buffers "0", "1", ... (maskrcnn_benchmark's BufferList, e.g. the anchor generator's cell_anchors). */
export class BufferList extends Module {
  private readonly items: Buffer[] = [];
  constructor(tensors: tf.Tensor[] = [], { persistent = true }: { persistent?: boolean } = {}) {
    super();
    for (const t of tensors) this.items.push(this.register(String(this.items.length), new Buffer(t, persistent)));
  }
  get length(): number {
    return this.items.length;
  }
  at(i: number): Buffer {
    const b = this.items[i < 0 ? this.items.length + i : i];
    if (!b) throw new RangeError(`BufferList index ${i} out of range (length ${this.items.length})`);
    return b;
  }
}

/** A module with a forward pass from one tensor to one tensor. */
export interface UnaryModule {
  forward(x: tf.Tensor): tf.Tensor;
}

/** torch.nn.Sequential: children "0", "1", ... applied in order. */
export class Sequential extends ModuleList<Module & UnaryModule> implements UnaryModule {
  constructor(...layers: (Module & UnaryModule)[]) {
    super(layers);
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let h = x;
      for (const layer of this) h = layer.forward(h);
      return h;
    });
  }
}

/** Why a state-dict value cannot be loaded (not a tensor, or a disposed one), or undefined. */
function notALiveTensor(v: unknown): string | undefined {
  if (v === null || v === undefined) return String(v);
  if (typeof v !== 'object') return `a ${typeof v}`;
  // duck-typed: a tensor of another copy of tfjs-core fails instanceof
  if (!('dataId' in v && 'shape' in v && 'isDisposed' in v && typeof v.isDisposed === 'boolean'))
    return `a ${v.constructor?.name ?? 'object'}, not a tensor`;
  const t = v as tf.Tensor;
  if (t.isDisposed) return `a disposed tensor (${t.dtype}[${t.shape.join(', ')}])`;
  return undefined;
}
