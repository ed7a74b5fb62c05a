import { afterAll, describe, expect, it } from 'vitest';
import { tf } from '../tf.js';
import { BackendUnavailableError, availableBackends, initBackend, readEnvThreads } from './index.js';
import { testBackends } from '../testing.js';

const { names, skipped } = await testBackends();

describe('initBackend', () => {
  afterAll(() => {
    delete process.env.FIBER_BACKEND;
  });

  it('starts cpu and wasm here, and reports what it got', async () => {
    expect(names).toContain('cpu');
    expect(names).toContain('wasm');
    const wasm = await initBackend({ backend: 'wasm' });
    expect(tf.getBackend()).toBe('wasm');
    expect(wasm.simd).toBe(true);
    expect(wasm.threads).toBeGreaterThanOrEqual(1);
    const cpu = await initBackend({ backend: 'cpu' });
    expect(cpu.name).toBe('cpu');
  });

  it('honours FIBER_BACKEND and rejects an unknown value', async () => {
    process.env.FIBER_BACKEND = 'cpu';
    expect((await initBackend()).name).toBe('cpu');
    process.env.FIBER_BACKEND = 'tpu';
    await expect(initBackend()).rejects.toThrow('fiber-vl: FIBER_BACKEND="tpu" is not one of webgpu, wasm, cpu, auto');
    delete process.env.FIBER_BACKEND;
  });

  it('refuses a backend name or a thread count it cannot use before starting anything', async () => {
    await initBackend({ backend: 'wasm' });
    // @ts-expect-error: not a backend name
    await expect(initBackend({ backend: 'gpu' })).rejects.toThrow(
      'initBackend: backend "gpu" is not one of webgpu, wasm, cpu, auto',
    );
    expect(tf.getBackend()).toBe('wasm'); // an unknown name used to switch to cpu before failing
    for (const [bad, shown] of [
      [0, '0'],
      [-3, '-3'],
      [2.5, '2.5'],
      [Number.NaN, 'NaN'],
      ['2', '"2"'],
    ] as const) {
      // @ts-expect-error: a string is no thread count
      const options: { backend: 'wasm'; threads: number } = { backend: 'wasm', threads: bad };
      await expect(initBackend(options)).rejects.toThrow(
        `initBackend: threads must be a positive integer, got ${shown}`,
      );
    }
  });

  it('reads FIBER_WASM_THREADS as the default wasm pool size and rejects what is not a count', async () => {
    const saved = process.env.FIBER_WASM_THREADS;
    try {
      delete process.env.FIBER_WASM_THREADS;
      expect(readEnvThreads()).toBeUndefined();
      process.env.FIBER_WASM_THREADS = '';
      expect(readEnvThreads()).toBeUndefined();
      for (const n of ['1', '3', '16']) {
        process.env.FIBER_WASM_THREADS = n;
        expect(readEnvThreads()).toBe(Number(n));
      }
      for (const bad of ['0', '-2', '1.5', 'two', ' ', 'Infinity']) {
        process.env.FIBER_WASM_THREADS = bad;
        expect(() => readEnvThreads()).toThrow(`fiber-vl: FIBER_WASM_THREADS="${bad}" is not a positive integer`);
      }
      // a bad value is an error where wasm may start, not a reason for auto mode to skip wasm
      process.env.FIBER_WASM_THREADS = 'two';
      await expect(initBackend()).rejects.toThrow('FIBER_WASM_THREADS="two"');
      await expect(initBackend({ backend: 'wasm' })).rejects.toThrow('FIBER_WASM_THREADS="two"');
      await expect(availableBackends()).rejects.toThrow('FIBER_WASM_THREADS="two"');
      expect((await initBackend({ backend: 'wasm', threads: 1 })).name).toBe('wasm'); // given: not read
      expect((await initBackend({ backend: 'cpu' })).name).toBe('cpu');
    } finally {
      if (saved === undefined) delete process.env.FIBER_WASM_THREADS;
      else process.env.FIBER_WASM_THREADS = saved;
    }
  });

  it('auto picks wasm over a software WebGPU adapter and says why', async () => {
    const info = await initBackend();
    if (names.includes('webgpu')) {
      // On this machine kind the only adapter is SwiftShader.
      expect(['webgpu', 'wasm']).toContain(info.name);
      if (info.name === 'wasm') expect(info.skipped[0].reason).toMatch(/software adapter/);
    } else {
      expect(info.name).toBe('wasm');
      expect(info.skipped[0].backend).toBe('webgpu');
    }
  });

  it('a missing backend fails with a reason', () => {
    const e = new BackendUnavailableError('webgpu', 'navigator.gpu is missing');
    expect(e.message).toBe('fiber-vl: backend "webgpu" is not available: navigator.gpu is missing');
    for (const s of skipped) expect(s.reason.length).toBeGreaterThan(10);
  });

  it.runIf(names.includes('webgpu'))('webgpu reports its adapter and features', async () => {
    const info = await initBackend({ backend: 'webgpu' });
    expect(info.adapter?.description ?? info.adapter?.vendor).toBeTruthy();
    expect(Array.isArray(info.features)).toBe(true);
    const y = tf.matMul(tf.ones([2, 2]), tf.ones([2, 2]));
    expect(Array.from(await y.data())).toEqual([2, 2, 2, 2]);
  });

  it('wasm runs the kernels tfjs-backend-wasm lacks through the cpu fallback', async () => {
    await initBackend({ backend: 'wasm' });
    // UnsortedSegmentSum (gather gradient) and Conv2DBackpropFilter (conv weight gradient)
    const table = tf.variable(tf.ones([4, 2]));
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.gather(t, tf.tensor1d([0, 0, 3], 'int32'))))(table);
    expect(Array.from(await g.data())).toEqual([2, 2, 0, 0, 0, 0, 1, 1]);
    const x = tf.ones([1, 3, 3, 1]) as tf.Tensor4D;
    const wg = tf.grad((w: tf.Tensor) => tf.sum(tf.conv2d(x, w as tf.Tensor4D, 1, 'valid')))(tf.ones([2, 2, 1, 1]));
    expect(Array.from(await wg.data())).toEqual([4, 4, 4, 4]);
    expect(tf.getBackend()).toBe('wasm');
    table.dispose();
  });
});
