// `fiber-bench parity <fixture-dir>`: a FIBER model against a fixture folder computed by the
// official code: architecture from config.json, weights from model.safetensors, inputs from
// inputs.safetensors; every pass the folder has outputs for runs, and every output / intermediate
// tensor it can compute is compared by name. Folder kinds (recognised from config.json): the coarse
// model (either public set), the fine-grained model (set A `tiny_fine`), the fine-grained head alone
// (set B `tiny_fine_head`).
// A train-step folder (config.json with a `train_step` section) runs the coarse pre-training
// steps instead (see runTrainStepParity).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadFiberCheckpoint } from '@fiber-vl/fusion';
import { FiberCoarseModel } from '@fiber-vl/heads-coarse';
import { fiberConfigFromFixture, runFixturePasses } from '@fiber-vl/heads-coarse/testing';
import { fineFixtureKind, runFineFixturePasses } from '@fiber-vl/heads-fine/testing';
import { SafetensorsFile, initBackend, loadSafetensors, tf, type BackendName } from '@fiber-vl/tensor-core';
import { compareTrainStepTensor, isTrainStepConfig, runCoarseTrainStepFixture } from '@fiber-vl/trainer/testing';

export interface ParityRow {
  tensor: string;
  maxAbsError: number;
  tolerance: number;
  ok: boolean;
  /** The tolerance when it is not one absolute number (train-step: '1e-5 abs or 0.0001 rel'). */
  toleranceText?: string;
  /** Remarks (train-step: elements within the AdamW-propagated gradient noise). */
  note?: string;
}

export interface ParityReport {
  backend: string;
  rows: ParityRow[];
  notChecked: string[];
  ok: boolean;
}

/** Max |ours - ref| (Infinity on a shape mismatch or NaN). */
async function maxError(ours: tf.Tensor | number[][], file: SafetensorsFile, name: string): Promise<number> {
  const raw = await file.readRaw(name);
  const ref = Array.from(raw.data as ArrayLike<number | bigint>, Number);
  const got = Array.isArray(ours) ? ours.flat() : Array.from((await ours.data()) as Float32Array);
  const shapeOk = Array.isArray(ours) ? got.length === ref.length : ours.shape.join() === raw.shape.join();
  let err = shapeOk && got.length === ref.length ? 0 : Infinity;
  for (let i = 0; err !== Infinity && i < ref.length; i++) {
    const d = Math.abs(got[i] - ref[i]);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
  }
  return err;
}

/** The tensors (and exact integer outputs) a folder's passes compute, by the folder's names. */
async function computeFolder(
  dir: string,
  config: unknown,
  names: Set<string>,
  log: (l: string) => void,
): Promise<{ tensors: Map<string, tf.Tensor>; exact: Map<string, number[][]> }> {
  const inputs = await loadSafetensors(join(dir, 'inputs.safetensors'), (k) => !k.startsWith('raw_image'));
  try {
    if (fineFixtureKind(config)) {
      log(`fine-grained folder (${fineFixtureKind(config)}): building the model from config.json ...`);
      const weights = await loadSafetensors(join(dir, 'model.safetensors'));
      try {
        const r = await runFineFixturePasses(config, weights, inputs, names);
        return { tensors: r.tensors, exact: new Map() };
      } finally {
        tf.dispose([...weights.values()]);
      }
    }
    const { config: cfg, heads } = fiberConfigFromFixture(config);
    log('coarse folder: building the model from config.json and loading model.safetensors ...');
    const model = new FiberCoarseModel(cfg, heads);
    try {
      await loadFiberCheckpoint(model, join(dir, 'model.safetensors'));
      model.eval();
      return await runFixturePasses(model, inputs, names);
    } finally {
      model.dispose();
    }
  } finally {
    tf.dispose([...inputs.values()]);
  }
}

export async function runParity(
  dir: string,
  { backends = ['cpu'] as BackendName[], tolerance = 1e-4, log = (l: string) => process.stderr.write(`${l}\n`) } = {},
): Promise<ParityReport[]> {
  for (const f of ['config.json', 'model.safetensors', 'inputs.safetensors']) {
    if (!existsSync(join(dir, f)))
      throw new Error(
        `${dir}: missing ${f} (a fixture folder has config.json, model.safetensors, inputs.safetensors and outputs)`,
      );
  }
  const config: unknown = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  if (isTrainStepConfig(config)) return runTrainStepParity(dir, config, { backends, log });
  const expectedFiles = ['outputs.safetensors', 'intermediates.safetensors'].filter((f) => existsSync(join(dir, f)));
  const reports: ParityReport[] = [];
  for (const backend of backends) {
    await initBackend({ backend, allowSoftwareWebGpu: true });
    const files = await Promise.all(expectedFiles.map((f) => SafetensorsFile.open(join(dir, f))));
    const names = new Set(files.flatMap((f) => f.keys()));
    log(`[${backend}] running the passes for ${names.size} expected tensors ...`);
    const result = await computeFolder(dir, config, names, (l) => log(`[${backend}] ${l}`));
    const rows: ParityRow[] = [];
    for (const name of [...names].sort()) {
      const file = files.find((f) => f.tensors.has(name))!;
      const ours = result.tensors.get(name) ?? result.exact.get(name);
      if (!ours) continue;
      const err = await maxError(ours, file, name);
      const tol = result.exact.has(name) ? 0 : tolerance;
      rows.push({ tensor: name, maxAbsError: err, tolerance: tol, ok: err <= tol });
    }
    const notChecked = [...names].filter((n) => !rows.some((r) => r.tensor === n)).sort();
    await Promise.all(files.map((f) => f.close()));
    tf.dispose([...result.tensors.values()]);
    reports.push({ backend, rows, notChecked, ok: rows.length > 0 && rows.every((r) => r.ok) });
  }
  return reports;
}

/**
 * A train-step folder (../shared/fixtures/fiber/train-step): every step it holds, replayed with the
 * trainer's coarse pre-training step from config.json and inputs.safetensors, and every tensor of
 * outputs.safetensors compared with the fixture README's tolerances (compareTrainStepTensor).
 */
async function runTrainStepParity(
  dir: string,
  config: unknown,
  { backends, log }: { backends: BackendName[]; log: (l: string) => void },
): Promise<ParityReport[]> {
  const reports: ParityReport[] = [];
  const expected = await SafetensorsFile.open(join(dir, 'outputs.safetensors'));
  try {
    const refGrads = new Map<string, ArrayLike<number>>();
    for (const k of expected.keys())
      if (k.startsWith('grad.')) refGrads.set(k.slice(5), (await expected.readRaw(k)).data as Float32Array);
    for (const backend of backends) {
      await initBackend({ backend, allowSoftwareWebGpu: true });
      log(`[${backend}] replaying the train steps of ${dir} ...`);
      const model = await loadSafetensors(join(dir, 'model.safetensors'));
      const inputs = await loadSafetensors(join(dir, 'inputs.safetensors'));
      const run = await runCoarseTrainStepFixture(config, model, inputs, new Set(expected.keys()));
      const rows: ParityRow[] = [];
      for (const name of expected.keys().sort()) {
        const ours = run.tensors.get(name);
        if (!ours) continue;
        const raw = await expected.readRaw(name);
        const ref = Array.from(raw.data as ArrayLike<number | bigint>, Number);
        const shapeOk = ours.shape.join() === raw.shape.join();
        const r = compareTrainStepTensor(name, await ours.data(), ref, run, (k) => refGrads.get(k));
        const ok = shapeOk && r.ok;
        rows.push({
          tensor: name,
          maxAbsError: shapeOk ? r.maxAbsError : Infinity,
          tolerance: trainStepAbs(r.tolerance),
          toleranceText: r.tolerance,
          ok,
          ...(r.noiseExplained ? { note: `${r.noiseExplained} element(s) within float32 noise` } : {}),
        });
      }
      const notChecked = expected
        .keys()
        .filter((n) => !run.tensors.has(n))
        .sort();
      tf.dispose([...run.tensors.values(), ...model.values(), ...inputs.values()]);
      reports.push({
        backend,
        rows,
        notChecked,
        ok: rows.length > 0 && notChecked.length === 0 && rows.every((r) => r.ok),
      });
    }
  } finally {
    await expected.close();
  }
  return reports;
}

function trainStepAbs(text: string): number {
  return Number(text.split(' ')[0]);
}

export function parityMarkdown(dir: string, reports: ParityReport[]): string {
  const lines: string[] = [];
  for (const r of reports) {
    lines.push(
      `\n## parity: ${dir} on ${r.backend}\n`,
      '| tensor | max abs error | tolerance | ok |',
      '|---|---|---|---|',
    );
    for (const row of r.rows) {
      const err = Number.isFinite(row.maxAbsError) ? row.maxAbsError.toExponential(2) : 'shape mismatch';
      lines.push(
        `| ${row.tensor} | ${err} | ${row.toleranceText ?? row.tolerance} | ${row.ok ? 'ok' : 'FAIL'}${row.note ? ` (${row.note})` : ''} |`,
      );
    }
    const failed = r.rows.filter((x) => !x.ok).length;
    lines.push('', `${r.rows.length - failed} of ${r.rows.length} tensors within tolerance on ${r.backend}.`);
    const noisy = r.rows.filter((x) => x.note).length;
    if (noisy) {
      lines.push(
        `${noisy} tensor(s) pass with elements at float32 noise level: gradients within 1e-5 of their tensor's largest |gradient|, and updated parameters where AdamW's 1/(sqrt(v) + eps) turns gradient noise into updates beyond the tolerance, within what the measured gradient difference explains through the official update rule (compareTrainStepTensor in @fiber-vl/trainer/testing).`,
      );
    }
    if (r.notChecked.length) {
      const groups = [...new Set(r.notChecked.map((n) => n.split('.').slice(0, 2).join('.')))];
      lines.push(
        `Not compared (${r.notChecked.length} activations the harness does not compute): ${groups.join(', ')}`,
      );
    }
  }
  return lines.join('\n');
}
