// A pickle machine for the opcodes torch.save writes (protocol 2, plus the protocol 3-5 opcodes a
// newer pickler may use for the same data). It never imports or calls anything: GLOBAL and REDUCE
// go through hooks that build inert values. Each opcode is one small handler in a table.
//
// Bounds: every length is checked against the bytes left before it is used; each opcode consumes
// at least one byte and allocates at most what it consumed plus a constant, so time and memory are
// linear in the pickle's size; the stack, the memo and the MARK nesting also have fixed limits.

/** Opcode bytes, by their name in CPython's pickle.py. */
export const OP = {
  MARK: 0x28, // (
  STOP: 0x2e, // .
  POP: 0x30, // 0
  POP_MARK: 0x31, // 1
  DUP: 0x32, // 2
  BINFLOAT: 0x47, // G
  BININT: 0x4a, // J
  BININT1: 0x4b, // K
  BININT2: 0x4d, // M
  NONE: 0x4e, // N
  BINPERSID: 0x51, // Q
  REDUCE: 0x52, // R
  BINSTRING: 0x54, // T
  SHORT_BINSTRING: 0x55, // U
  BINUNICODE: 0x58, // X
  APPEND: 0x61, // a
  BUILD: 0x62, // b
  GLOBAL: 0x63, // c
  DICT: 0x64, // d
  APPENDS: 0x65, // e
  BINGET: 0x68, // h
  LONG_BINGET: 0x6a, // j
  LIST: 0x6c, // l
  BINPUT: 0x71, // q
  LONG_BINPUT: 0x72, // r
  SETITEM: 0x73, // s
  TUPLE: 0x74, // t
  SETITEMS: 0x75, // u
  EMPTY_DICT: 0x7d, // }
  EMPTY_LIST: 0x5d, // ]
  EMPTY_TUPLE: 0x29, // )
  PROTO: 0x80,
  NEWOBJ: 0x81,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  LONG1: 0x8a,
  BINBYTES: 0x42, // B
  SHORT_BINBYTES: 0x43, // C
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  BINBYTES8: 0x8e,
  STACK_GLOBAL: 0x93,
  MEMOIZE: 0x94,
  FRAME: 0x95,
} as const;

/** Opcodes of the pickle protocols that this machine does not run (named in its error). */
const UNSUPPORTED: Record<number, string> = {
  0x46: 'FLOAT',
  0x49: 'INT',
  0x4c: 'LONG',
  0x50: 'PERSID',
  0x53: 'STRING',
  0x56: 'UNICODE',
  0x67: 'GET',
  0x69: 'INST',
  0x6f: 'OBJ',
  0x70: 'PUT',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x8b: 'LONG4',
  0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x92: 'NEWOBJ_EX',
  0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

export const PICKLE_LIMITS = {
  /** Values on the stack at once (torch's pickles batch 1000 items per APPENDS / SETITEMS). */
  maxStack: 1 << 20,
  /** Memo entries. */
  maxMemo: 1 << 20,
  /**
   * Containers and objects built (dicts, lists, tuples, hook results): one opcode byte can build a
   * dict of ~100 bytes, so this, not the pickle's size, bounds the memory a pickle can take.
   * torch.save of a 10,000-tensor state dict builds ~100,000.
   */
  maxObjects: 1 << 20,
  /** Open MARKs at once (nesting of tuples, lists and dicts built from marks). */
  maxMarks: 1 << 12,
} as const;

/** What the pickle may do to the outside world, each an inert stand-in chosen by the caller. */
export interface PickleHooks {
  /** GLOBAL / STACK_GLOBAL `module.name`: a value standing for it, or a thrown refusal. */
  global(module: string, name: string): unknown;
  /** REDUCE / NEWOBJ: `callable(*args)` for a value `global` returned. */
  call(callable: unknown, args: unknown[]): unknown;
  /** BUILD: `obj.__setstate__(state)`. */
  build(obj: unknown, state: unknown): void;
  /** BINPERSID: the object a persistent id stands for (torch: a storage). */
  persistentLoad(pid: unknown[]): unknown;
}

class Unpickler {
  pos = 0;
  readonly stack: unknown[] = [];
  /** Stack lengths at each open MARK (CPython's metastack). */
  readonly marks: number[] = [];
  readonly memo = new Map<number, unknown>();
  private objects = 0;
  private readonly view: DataView;
  private readonly text = new TextDecoder();

  constructor(
    readonly bytes: Uint8Array,
    readonly hooks: PickleHooks,
    private readonly onError: (message: string) => never,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(message: string): never {
    return this.onError(message);
  }

  /** Moves past `n` bytes, after checking that they exist; returns where they start. */
  skip(n: number, what: string): number {
    if (!Number.isSafeInteger(n) || n < 0) this.fail(`${what} has an invalid length ${n} at byte ${this.pos}`);
    if (n > this.bytes.length - this.pos)
      this.fail(`${what} of ${n} bytes runs past the end of the pickle (truncated at byte ${this.pos})`);
    const at = this.pos;
    this.pos += n;
    return at;
  }
  u8(what = 'argument'): number {
    return this.bytes[this.skip(1, what)];
  }
  u16(what = 'argument'): number {
    return this.view.getUint16(this.skip(2, what), true);
  }
  i32(what = 'argument'): number {
    return this.view.getInt32(this.skip(4, what), true);
  }
  u32(what = 'argument'): number {
    return this.view.getUint32(this.skip(4, what), true);
  }
  /** A u64 length; past 2^53 it is reported as the invalid length it is by skip(). */
  u64(what = 'argument'): number {
    const at = this.skip(8, what);
    const hi = this.view.getUint32(at + 4, true);
    return hi >= 2 ** 21 ? Infinity : this.view.getUint32(at, true) + hi * 2 ** 32;
  }
  f64be(): number {
    return this.view.getFloat64(this.skip(8, 'BINFLOAT'), false);
  }
  raw(n: number, what: string): Uint8Array {
    const at = this.skip(n, what);
    return this.bytes.subarray(at, at + n);
  }
  string(n: number, what: string): string {
    return this.text.decode(this.raw(n, what));
  }
  line(what: string): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) this.fail(`${what}: unterminated line at byte ${this.pos} (truncated)`);
    const s = this.string(end - this.pos, what);
    this.pos++;
    return s;
  }

  /** Pushes a value the opcode just built (counted against maxObjects). */
  pushNew(v: unknown): void {
    if (++this.objects > PICKLE_LIMITS.maxObjects) this.fail(`builds more than ${PICKLE_LIMITS.maxObjects} objects`);
    this.push(v);
  }
  push(v: unknown): void {
    if (this.stack.length >= PICKLE_LIMITS.maxStack)
      this.fail(`more than ${PICKLE_LIMITS.maxStack} values on the stack`);
    this.stack.push(v);
  }
  /** The top value above the innermost MARK. */
  pop(): unknown {
    if (this.stack.length <= (this.marks.at(-1) ?? 0)) this.fail(`stack underflow at byte ${this.pos - 1}`);
    return this.stack.pop();
  }
  top(): unknown {
    if (this.stack.length <= (this.marks.at(-1) ?? 0)) this.fail(`stack underflow at byte ${this.pos - 1}`);
    return this.stack[this.stack.length - 1];
  }
  mark(): void {
    if (this.marks.length >= PICKLE_LIMITS.maxMarks) this.fail(`more than ${PICKLE_LIMITS.maxMarks} nested MARKs`);
    this.marks.push(this.stack.length);
  }
  /** The values above the innermost MARK, removing them and the MARK. */
  popMark(what: string): unknown[] {
    const at = this.marks.pop();
    if (at === undefined) this.fail(`${what} without a MARK at byte ${this.pos - 1}`);
    return this.stack.splice(at);
  }
  memoPut(key: number): void {
    if (!this.memo.has(key) && this.memo.size >= PICKLE_LIMITS.maxMemo)
      this.fail(`more than ${PICKLE_LIMITS.maxMemo} memo entries`);
    this.memo.set(key, this.top());
  }
  memoGet(key: number): void {
    if (!this.memo.has(key)) this.fail(`get of unknown memo entry ${key} at byte ${this.pos}`);
    this.push(this.memo.get(key));
  }
}

type Handler = (u: Unpickler) => void;

function proto(u: Unpickler) {
  const version = u.u8('PROTO');
  if (version > 5) u.fail(`pickle protocol ${version} is not one of 0-5`);
}
function frame(u: Unpickler) {
  const n = u.u64('FRAME');
  if (n > u.bytes.length - u.pos)
    u.fail(`FRAME of ${n} bytes runs past the end of the pickle (truncated at byte ${u.pos})`);
}
const tupleN =
  (n: number): Handler =>
  (u) => {
    const items = new Array<unknown>(n);
    for (let i = n - 1; i >= 0; i--) items[i] = u.pop();
    u.pushNew(items);
  };
function dictFromItems(u: Unpickler, items: unknown[], what: string): Map<unknown, unknown> {
  if (items.length % 2) u.fail(`${what} with an odd number (${items.length}) of keys and values`);
  const d = new Map<unknown, unknown>();
  for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
  return d;
}
function setItems(u: Unpickler, items: unknown[], what: string) {
  const d = u.top();
  if (!(d instanceof Map)) return u.fail(`${what} on a ${describe(d)}, not a dict`);
  for (const [k, v] of dictFromItems(u, items, what)) d.set(k, v);
}
function appendItems(u: Unpickler, items: unknown[], what: string) {
  const list = u.top();
  if (!Array.isArray(list)) return u.fail(`${what} on a ${describe(list)}, not a list`);
  for (const item of items) list.push(item); // no push(...items): a long spread overflows the call stack
}
function long1(u: Unpickler) {
  const bytes = u.raw(u.u8('LONG1'), 'LONG1');
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  if (bytes.length && bytes[bytes.length - 1] & 0x80) v -= 1n << BigInt(8 * bytes.length);
  u.push(Number.isSafeInteger(Number(v)) ? Number(v) : v);
}
function binstring(u: Unpickler) {
  const n = u.i32('BINSTRING');
  if (n < 0) u.fail(`BINSTRING has a negative length ${n} at byte ${u.pos - 4}`);
  u.push(u.string(n, 'BINSTRING'));
}
function stackGlobal(u: Unpickler) {
  const name = u.pop();
  const module = u.pop();
  if (typeof module !== 'string' || typeof name !== 'string') u.fail('STACK_GLOBAL needs a module and a name string');
  u.pushNew(u.hooks.global(module, name));
}
function reduce(what: string): Handler {
  return (u) => {
    const args = u.pop();
    const callable = u.pop();
    if (!Array.isArray(args)) return u.fail(`${what} with ${describe(args)} arguments, not a tuple`);
    u.pushNew(u.hooks.call(callable, args));
  };
}

const HANDLERS = new Map<number, Handler>([
  [OP.PROTO, proto],
  [OP.FRAME, frame],
  [OP.MARK, (u) => u.mark()],
  [OP.POP, (u) => void u.pop()],
  [OP.POP_MARK, (u) => void u.popMark('POP_MARK')],
  [OP.DUP, (u) => u.push(u.top())],
  [OP.NONE, (u) => u.push(null)],
  [OP.NEWTRUE, (u) => u.push(true)],
  [OP.NEWFALSE, (u) => u.push(false)],
  [OP.BININT, (u) => u.push(u.i32('BININT'))],
  [OP.BININT1, (u) => u.push(u.u8('BININT1'))],
  [OP.BININT2, (u) => u.push(u.u16('BININT2'))],
  [OP.LONG1, long1],
  [OP.BINFLOAT, (u) => u.push(u.f64be())],
  [OP.BINSTRING, binstring],
  [OP.SHORT_BINSTRING, (u) => u.push(u.string(u.u8('SHORT_BINSTRING'), 'SHORT_BINSTRING'))],
  [OP.BINUNICODE, (u) => u.push(u.string(u.u32('BINUNICODE'), 'BINUNICODE'))],
  [OP.SHORT_BINUNICODE, (u) => u.push(u.string(u.u8('SHORT_BINUNICODE'), 'SHORT_BINUNICODE'))],
  [OP.BINUNICODE8, (u) => u.push(u.string(u.u64('BINUNICODE8'), 'BINUNICODE8'))],
  [OP.SHORT_BINBYTES, (u) => u.pushNew(u.raw(u.u8('SHORT_BINBYTES'), 'SHORT_BINBYTES').slice())],
  [OP.BINBYTES, (u) => u.pushNew(u.raw(u.u32('BINBYTES'), 'BINBYTES').slice())],
  [OP.BINBYTES8, (u) => u.pushNew(u.raw(u.u64('BINBYTES8'), 'BINBYTES8').slice())],
  [OP.EMPTY_DICT, (u) => u.pushNew(new Map())], // a Map: keys keep their order and need not be strings
  [OP.EMPTY_LIST, (u) => u.pushNew([])],
  [OP.EMPTY_TUPLE, (u) => u.pushNew([])],
  [OP.TUPLE, (u) => u.pushNew(u.popMark('TUPLE'))],
  [OP.TUPLE1, tupleN(1)],
  [OP.TUPLE2, tupleN(2)],
  [OP.TUPLE3, tupleN(3)],
  [OP.LIST, (u) => u.pushNew(u.popMark('LIST'))],
  [OP.DICT, (u) => u.pushNew(dictFromItems(u, u.popMark('DICT'), 'DICT'))],
  [
    OP.SETITEM,
    (u) => {
      const v = u.pop();
      const k = u.pop();
      setItems(u, [k, v], 'SETITEM');
    },
  ],
  [OP.SETITEMS, (u) => setItems(u, u.popMark('SETITEMS'), 'SETITEMS')],
  [OP.APPEND, (u) => appendItems(u, [u.pop()], 'APPEND')],
  [OP.APPENDS, (u) => appendItems(u, u.popMark('APPENDS'), 'APPENDS')],
  [OP.BINPUT, (u) => u.memoPut(u.u8('BINPUT'))],
  [OP.LONG_BINPUT, (u) => u.memoPut(u.u32('LONG_BINPUT'))],
  [OP.MEMOIZE, (u) => u.memoPut(u.memo.size)],
  [OP.BINGET, (u) => u.memoGet(u.u8('BINGET'))],
  [OP.LONG_BINGET, (u) => u.memoGet(u.u32('LONG_BINGET'))],
  [
    OP.GLOBAL,
    (u) => {
      const module = u.line('GLOBAL');
      u.pushNew(u.hooks.global(module, u.line('GLOBAL')));
    },
  ],
  [OP.STACK_GLOBAL, stackGlobal],
  [
    OP.BINPERSID,
    (u) => {
      const pid = u.pop();
      if (!Array.isArray(pid)) return u.fail(`BINPERSID with a ${describe(pid)} id, not a tuple`);
      u.pushNew(u.hooks.persistentLoad(pid));
    },
  ],
  [OP.REDUCE, reduce('REDUCE')],
  [OP.NEWOBJ, reduce('NEWOBJ')],
  [
    OP.BUILD,
    (u) => {
      const state = u.pop();
      u.hooks.build(u.top(), state);
    },
  ],
]);

/** A short description of a value for messages. */
export function describe(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'tuple/list';
  if (v instanceof Map) return 'dict';
  if (typeof v === 'object') return v.constructor?.name ?? 'object';
  return typeof v;
}

/** Runs a pickle to its STOP and returns the value it built. Errors go through `fail`. */
export function unpickle(bytes: Uint8Array, hooks: PickleHooks, fail: (message: string) => never): unknown {
  const u: Unpickler = new Unpickler(bytes, hooks, fail);
  for (;;) {
    if (u.pos >= bytes.length) u.fail(`no STOP opcode: truncated at byte ${u.pos}`);
    const at = u.pos;
    const op = u.u8();
    if (op === OP.STOP) {
      if (u.marks.length || u.stack.length !== 1)
        u.fail(`STOP with ${u.stack.length} values and ${u.marks.length} open MARKs on the stack`);
      return u.stack[0];
    }
    const handler = HANDLERS.get(op);
    if (!handler) {
      const name = UNSUPPORTED[op];
      return u.fail(
        name
          ? `unsupported pickle opcode ${name} (0x${op.toString(16)}) at byte ${at}`
          : `unsupported or invalid pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${at}`,
      );
    }
    handler(u);
  }
}
