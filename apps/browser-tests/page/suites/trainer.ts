// @fiber-vl/trainer in the browser: the built-in world rendered and PNG-encoded by the package,
// decoded by Chromium's own decoder to the same pixels; AdamW against its closed form after one
// step; and a few training steps through tfjs gradients (registered by tensor-core's browser entry)
// on the backend given (wasm by default).
import { AdamW, createWorld, encodePng, renderScene } from '@fiber-vl/trainer';
import { browserImageDecoder } from '@fiber-vl/swin';
import { Generator, Linear, Parameter, tf, type BackendName } from '@fiber-vl/tensor-core';
import { compareNumbers } from '../check.js';
import { useBackend } from '../fixtures.js';
import type { Check, SuiteParams } from '../protocol.js';

async function worldChecks(): Promise<Check[]> {
  const world = createWorld({ seed: 0, preset: 'small' });
  const checks: Check[] = [];
  for (const i of [0, 1]) {
    const image = renderScene(world.sample('train', i).scene);
    const decoded = await browserImageDecoder.decode(encodePng(image));
    let differ = decoded.width === image.width && decoded.height === image.height ? 0 : Infinity;
    for (let p = 0; differ !== Infinity && p < image.width * image.height; p++) {
      for (let c = 0; c < 3; c++)
        if (decoded.data[p * decoded.channels + c] !== image.data[p * image.channels + c]) differ++;
    }
    checks.push({
      name: `world sample ${i}: renderScene -> encodePng -> Chromium's PNG decoder gives the same pixels`,
      maxAbsError: differ,
      tolerance: 0,
      ok: differ === 0,
      detail: `${image.width}x${image.height}`,
    });
  }
  return checks;
}

/** torch.optim.AdamW, one step from zero moments: p (1 - lr wd) - lr m̂ / (sqrt(v̂) + eps), m̂ = g, v̂ = g². */
async function adamwStepCheck(): Promise<Check> {
  const [lr, wd, eps] = [0.1, 0.01, 1e-8];
  const p0 = [1, -2, 0.5];
  const g = [0.5, -0.25, 2];
  const param = new Parameter(tf.tensor1d(p0));
  const opt = new AdamW([{ params: [['w', param]], lr, weightDecay: wd }], { variant: 'torch', eps });
  const grad = tf.tensor1d(g);
  opt.step(new Map([['w', grad]]));
  const got = Array.from(await param.value.data());
  const want = p0.map((p, i) => p * (1 - lr * wd) - (lr * g[i]) / (Math.abs(g[i]) + eps));
  opt.dispose();
  tf.dispose([grad, param.value]);
  return compareNumbers(
    'AdamW (torch variant), one step against its closed form',
    got.map((x, i): [number, number] => [x, want[i]]),
    1e-6,
  );
}

/** Fits y = x . [1, -2, 3, 0.5] + 1 with a Linear(4, 1): the loss must fall by 100x in 60 steps. */
async function trainingCheck(): Promise<Check> {
  const rng = new Generator(0);
  const model = new Linear(4, 1, { rng });
  const x = tf.tensor2d(
    Array.from({ length: 32 * 4 }, (_, i) => Math.sin(i * 1.3)),
    [32, 4],
  );
  const y = tf.tidy(() => tf.add(tf.matMul(x, tf.tensor2d([1, -2, 3, 0.5], [4, 1])), 1));
  const opt = new AdamW([{ params: model.namedParameters(), lr: 0.1, weightDecay: 0 }]);
  const losses: number[] = [];
  for (let step = 0; step < 60; step++) {
    const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(tf.sub(model.forward(x), y))).asScalar());
    const byName = new Map(model.namedParameters().map(([n, p]): [string, tf.Tensor] => [n, grads[p.value.name]]));
    opt.step(byName);
    losses.push((await value.data())[0]);
    tf.dispose([value, ...Object.values(grads)]);
  }
  opt.dispose();
  tf.dispose([x, y]);
  model.dispose();
  const ratio = losses[losses.length - 1] / losses[0];
  const ok = ratio < 0.01;
  return {
    name: `60 AdamW steps on ${tf.getBackend()}: loss falls 100x`,
    maxAbsError: ok ? 0 : Infinity,
    tolerance: 0,
    ok,
    detail: `loss ${losses[0].toFixed(4)} -> ${losses.at(-1)!.toExponential(2)} (x${ratio.toExponential(2)})`,
  };
}

/** params: backend (default wasm). */
export async function trainerSuite(params: SuiteParams): Promise<{ checks: Check[]; info: Record<string, unknown> }> {
  const backend = await useBackend((params.backend as BackendName | undefined) ?? 'wasm');
  const before = tf.memory().numTensors;
  const checks = [...(await worldChecks()), await adamwStepCheck(), await trainingCheck()];
  return { checks, info: { backend: backend.name, tensorsLeft: tf.memory().numTensors - before } };
}
